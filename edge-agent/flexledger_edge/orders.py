"""Activation orders: who may give them, what they may ask, execution and acknowledgement.

An order arrives on ``flexledger/v1/orders/<asset id>`` as the JSON of a dispatcher-signed
:class:`~flexledger_edge.activation.ActivationOrder` (see that module) and is answered on
``flexledger/v1/acks/<asset id>`` (QoS 1) with::

    {"orderId": str, "asset": int, "status": "accepted"|"overridden"|"rejected", "reason": str|null, "at": int}

``at`` is the agent's clock (UTC seconds) when it decided.

Only the market may order the asset. Before anything else the agent checks that the order is
signed, in the MarketRegistry's EIP-712 domain, by the dispatcher the registry names for the
market, and that it is for this agent's asset. Then, by what the agent can see:

- **with a chain endpoint** (``[orders] rpc_url``): the order must carry out an award of a
  *final* clearing result: the offer it carries hashes (on chain) to the order's
  ``offerDigest``, is for this asset (or a portfolio holding it at gate closure) in the order's
  market and direction; the result is of that market and final; and every ISP of the order has
  a proven award (``ClearingCommitment.isAwarded``) of at least the order's power. The order
  cannot book the asset beyond the awarded ISPs.
- **without one**: the order is bounded instead: its power within the asset's prequalified
  power (configured), its window at most ``max_isps`` ISPs and starting within ``horizon_s`` of
  now. A leaked or misused dispatcher key can then dispatch the asset inside those bounds only.

Everywhere: the window is ISP-aligned and not over, the order has not expired, the device can do
it (power, state of charge, no overlap with an accepted order), and the owner's override wins.

An order answered once gets the same answer again (an MQTT redelivery, a replay) and is never
executed twice, across restarts too: answers and accepted activations are kept in
``<state dir>/orders.sqlite3``. Only answers decided by what the dispatcher really signed are
kept; not those decided by the (unsigned) award evidence or by a chain that did not answer: a
forged payload, or a real order with its evidence stripped, cannot pre-empt the real order.

An acknowledgement is not delivery: only the signed readings (and the settlement computed from
them) say what the meter measured.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .activation import (
    ActivationOrder,
    OrderError,
    RegistryDomain,
    SignedOrder,
    order_id_of,
    parse_signed_order,
)
from .chainview import ChainUnavailableError, ChainView
from .devices import Activation, Direction, FlexDevice

log = logging.getLogger(__name__)

Status = Literal["accepted", "overridden", "rejected"]

__all__ = ["Ack", "OrderError", "OrderHandler", "OrderLog", "OrderPolicy"]


@dataclass(frozen=True)
class Ack:
    """The agent's answer to an order. Not a proof of delivery (see the module docstring)."""

    order_id: str
    asset: int
    status: Status
    reason: str | None
    at: int

    def to_payload(self) -> dict[str, Any]:
        return {"orderId": self.order_id, "asset": self.asset, "status": self.status, "reason": self.reason, "at": self.at}

    def to_json(self) -> bytes:
        return json.dumps(self.to_payload(), separators=(",", ":")).encode("utf-8")


@dataclass(frozen=True)
class OrderPolicy:
    """Who may order this asset, and the bounds that hold when no chain endpoint can be asked."""

    market: int
    domain: RegistryDomain | None  # None: read from the registry (ERC-5267) through the chain view
    dispatcher: str | None  # None: read from the registry through the chain view
    chain: ChainView | None
    prequalified_up_w: int
    prequalified_down_w: int
    horizon_s: int = 2 * 86_400
    max_isps: int = 96

    def prequalified_w(self, direction: str) -> int:
        return self.prequalified_up_w if direction == "UP" else self.prequalified_down_w


class _RefusalError(Exception):
    """An order refused; ``remember`` says whether the answer is final (the dispatcher signed it)."""

    def __init__(self, reason: str, *, remember: bool) -> None:
        super().__init__(reason)
        self.remember = remember


class OrderLog:
    """Answered orders and accepted activations, kept across restarts (SQLite)."""

    _SCHEMA = """
    CREATE TABLE IF NOT EXISTS answered (
        order_id TEXT PRIMARY KEY,
        ack TEXT NOT NULL,
        activation TEXT
    );
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(self._SCHEMA)

    def answer_of(self, order_id: str) -> Ack | None:
        with self._lock:
            row = self._db.execute("SELECT ack FROM answered WHERE order_id = ?", (order_id,)).fetchone()
        if row is None:
            return None
        data = json.loads(row[0])
        return Ack(data["orderId"], data["asset"], data["status"], data["reason"], data["at"])

    def record(self, ack: Ack, activation: Activation | None) -> None:
        planned = None
        if activation is not None:
            planned = json.dumps({"asset": activation.asset, "ispStart": activation.isp_start, "isps": activation.isps,
                                  "direction": str(activation.direction), "powerW": activation.power_w})
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO answered (order_id, ack, activation) VALUES (?, ?, ?)",
                             (ack.order_id, ack.to_json().decode(), planned))

    def accepted(self, *, ending_after: int, isp_seconds: int) -> list[Activation]:
        """The accepted activations whose window has not ended (to plan again after a restart)."""
        with self._lock:
            rows = self._db.execute("SELECT order_id, activation FROM answered WHERE activation IS NOT NULL").fetchall()
        out = []
        for order_id, text in rows:
            a = json.loads(text)
            activation = Activation(order_id, a["asset"], a["ispStart"], a["isps"], Direction(a["direction"]), a["powerW"])
            if activation.end(isp_seconds) > ending_after:
                out.append(activation)
        return sorted(out, key=lambda x: x.isp_start)

    def close(self) -> None:
        with self._lock:
            self._db.close()


class OrderHandler:
    """Decides on each order for one asset and plans the accepted ones on its device."""

    def __init__(
        self,
        asset_id: int,
        device: FlexDevice,
        isp_seconds: int,
        *,
        clock: Callable[[], float],
        override_active: Callable[[], str | None],
        policy: OrderPolicy | None,
        log_path: Path,
    ) -> None:
        """``override_active()`` returns why the owner's override is on, or None when it is off.
        ``policy`` None: no dispatcher is configured, so every order is refused."""
        self.asset_id = asset_id
        self.device = device
        self.isp_seconds = isp_seconds
        self.policy = policy
        self._clock = clock
        self._override_active = override_active
        self.log = OrderLog(log_path)
        for activation in self.log.accepted(ending_after=int(clock()), isp_seconds=isp_seconds):
            device.schedule(activation)

    def handle(self, payload: bytes | str) -> Ack:
        """Answer one order payload (executing it when accepted)."""
        now = int(self._clock())
        try:
            signed = parse_signed_order(payload)
        except OrderError as exc:
            return self._answer(order_id_of(payload), "rejected", str(exc), now)
        order = signed.order
        previous = self.log.answer_of(order.order_id_hex)
        if previous is not None:
            log.info("order %s received again; repeating its answer (%s)", order.order_id_hex, previous.status)
            return previous
        try:
            self._authenticate(signed)
        except _RefusalError as exc:
            return self._answer(order.order_id_hex, "rejected", str(exc), now)
        except ChainUnavailableError as exc:
            return self._answer(order.order_id_hex, "rejected", f"cannot check the order now: {exc}", now)
        # From here the dispatcher signed this order: its answer is final and kept.
        override = self._override_active()
        if override is not None:
            return self._answer(order.order_id_hex, "overridden", override, now, remember=True)
        activation = Activation(order.order_id_hex, order.asset, order.isp_start, order.isps,
                                Direction(order.direction), order.power_w)
        try:
            self._check_window(order, now)
            self._check_award(signed, now)
        except _RefusalError as exc:
            return self._answer(order.order_id_hex, "rejected", str(exc), now, remember=exc.remember)
        except ChainUnavailableError as exc:
            return self._answer(order.order_id_hex, "rejected", f"cannot check the order now: {exc}", now)
        reason = self._device_refuses(activation)
        if reason is not None:
            return self._answer(order.order_id_hex, "rejected", reason, now, remember=True)
        self.device.schedule(activation)
        log.info("order %s accepted: %s %d W for %d ISP(s) from %d",
                 order.order_id_hex, order.direction, order.power_w, order.isps, order.isp_start)
        return self._answer(order.order_id_hex, "accepted", None, now, remember=True, activation=activation)

    def close(self) -> None:
        self.log.close()

    # -- checks ------------------------------------------------------------------------

    def _authenticate(self, signed: SignedOrder) -> None:
        """The dispatcher of the order's market signed it, for this asset; else refused, not kept."""
        policy = self.policy
        if policy is None:
            raise _RefusalError("no dispatcher configured: this agent takes no orders ([orders] is missing)", remember=False)
        order = signed.order
        if order.market != policy.market:
            raise _RefusalError(f"wrong market: the order is for market {order.market}, this agent serves {policy.market}",
                           remember=False)
        domain = policy.domain if policy.domain is not None else policy.chain.registry_domain()  # type: ignore[union-attr]
        dispatcher = policy.chain.dispatcher(order.market) if policy.chain is not None else policy.dispatcher
        signer = signed.signer(domain)
        if signer is None or dispatcher is None or int(dispatcher, 16) == 0 or signer != dispatcher:
            raise _RefusalError(f"not signed by market {policy.market}'s dispatcher {dispatcher}", remember=False)
        if order.asset != self.asset_id:
            raise _RefusalError(f"wrong asset: the order is for asset {order.asset}, this agent runs asset {self.asset_id}",
                           remember=False)

    def _check_window(self, order: ActivationOrder, now: int) -> None:
        # Refusals that depend on the gateway's clock are not kept: a clock pushed ahead for a while
        # must not turn the market's real orders into final refusals.
        if order.expires_at < now:
            raise _RefusalError(f"expired at {order.expires_at}, now is {now}", remember=False)
        if order.isp_start % self.isp_seconds:
            raise _RefusalError(f"ispStart {order.isp_start} is not an ISP boundary (ISP = {self.isp_seconds} s)", remember=True)
        if order.end(self.isp_seconds) <= now:
            raise _RefusalError(f"too late: the window ended at {order.end(self.isp_seconds)}, now is {now}", remember=False)
        ability = self.device.max_power_w(Direction(order.direction))
        if order.power_w > ability:
            raise _RefusalError(f"power above the device's ability: {order.power_w} W {order.direction} asked, "
                           f"the {self.device.kind} can do at most {ability} W", remember=True)
        assert self.policy is not None
        prequalified = self.policy.prequalified_w(order.direction)
        if order.power_w > prequalified:
            raise _RefusalError(f"power above the asset's prequalified {prequalified} W {order.direction}", remember=True)

    def _check_award(self, signed: SignedOrder, now: int) -> None:
        policy = self.policy
        assert policy is not None
        order = signed.order
        if policy.chain is None:
            if order.isps > policy.max_isps:
                raise _RefusalError(f"window too long without a chain to check the award: {order.isps} ISPs, "
                               f"at most {policy.max_isps}", remember=True)
            if order.isp_start > now + policy.horizon_s:
                raise _RefusalError(f"starts too far ahead without a chain to check the award: {order.isp_start}, "
                               f"at most {policy.horizon_s} s after now ({now})", remember=False)
            return
        # The award evidence is not signed: anyone can strip or spoil a real order's evidence and send
        # it first. Its refusals are therefore never kept, so the real order is judged when it comes.
        chain = policy.chain
        award = signed.award
        if award is None:
            raise _RefusalError("the order carries no award proof; this agent checks every order on chain", remember=False)
        offer = award.offer
        if chain.offer_digest(award.offer_tuple()) != order.offer_digest:
            raise _RefusalError("the offer carried does not hash to the order's offerDigest", remember=False)
        if offer["market"] != order.market or offer["direction"] != ("UP", "DOWN").index(order.direction):
            raise _RefusalError("the awarded offer is of another market or direction", remember=False)
        if offer["asset"] != self.asset_id:
            members = chain.portfolio_members(order.market, int(offer["portfolio"]), int(offer["start"])) \
                if offer["asset"] == 0 and offer["portfolio"] != 0 else []
            if self.asset_id not in members:
                raise _RefusalError(f"the awarded offer is not for asset {self.asset_id} (nor a portfolio holding it at "
                               "gate closure)", remember=False)
        market, _day, final = chain.result_day(order.result_id)
        if market != order.market:
            raise _RefusalError(f"result {order.result_id} is not of market {order.market}", remember=False)
        if not final:
            raise _RefusalError(f"result {order.result_id} is not final", remember=False)
        by_isp = {p.isp_start: p for p in award.proofs}
        for k in range(order.isps):
            t = order.isp_start + k * self.isp_seconds
            proof = by_isp.get(t)
            if proof is None or not chain.is_awarded(order.result_id, order.offer_digest, proof):
                raise _RefusalError(f"no proven award of the offer in result {order.result_id} for ISP {t}: the order "
                               "cannot book the asset beyond its award", remember=False)
            if order.power_w > proof.level_w:
                raise _RefusalError(f"power above the award: {order.power_w} W asked in ISP {t}, {proof.level_w} W awarded",
                               remember=False)

    def _device_refuses(self, activation: Activation) -> str | None:
        return self.device.check(activation, self.isp_seconds)

    def _answer(self, order_id: str, status: Status, reason: str | None, at: int, *, remember: bool = False,
                activation: Activation | None = None) -> Ack:
        ack = Ack(order_id, self.asset_id, status, reason, at)
        if status == "accepted":
            log.info("ack %s: accepted", order_id)
        else:
            log.warning("ack %s: %s (%s)", order_id or "<no id>", status, reason)
        if remember:
            self.log.record(ack, activation)
        return ack
