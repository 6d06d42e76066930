"""The metering oracle as a service (what `flexledger oracle run` runs): readings from the broker
verified and kept; each ISP's root anchored once it has ended and its grace period has passed;
each market day's standard baselines anchored shortly before its gate closure; omission claims
and baseline challenges answered with proofs from the store. And the baseline policy that
`flexledger oracle baselines` applies on demand.

Oracles may share one store (consumers scaled out through a shared subscription, or a standby):
every one ingests, and the one holding the market's anchoring lease (``oracle.lease``) anchors and
answers; another takes over once the lease has expired.

The service says what it did through ``report`` (an :class:`OracleEvent` each time): the CLI
prints them, an API would publish them.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flexledger.chain.errors import ChainError
from flexledger.config import Settings
from flexledger.delivery.broker import mqtt_tls, oracle_broker
from flexledger.errors import ConfigurationError
from flexledger.redaction import redact_url
from flexledger.times import iso

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from flexledger.deployment import Deployment
    from flexledger.oracle.consumer import OracleConsumer
    from flexledger.oracle.store import StoredBaselineAnchor

BASELINE_LEAD = 900  # seconds before a day's gate closure its standard baselines are anchored


@dataclass(frozen=True)
class OracleEvent:
    """Something the service did (``kind``: baselines, anchored, claim, challenge) or could not do
    this round (``warning``: the next round tries again)."""

    kind: str
    message: str


@dataclass
class OracleRun:
    """What a run did: the consumer's outcomes by kind, the ISPs anchored, broker sessions lost."""


    outcomes: dict[str, int] = field(default_factory=dict)
    anchored: list[int] = field(default_factory=list)
    sessions_lost: int = 0


@dataclass(frozen=True)
class OraclePolicy:
    """How the service anchors: ``grace`` seconds after an ISP ends, every ``interval`` seconds,
    an anchor counting ``confirmations`` blocks deep (None: once finalized); ``baselines``:
    anchor the next open day's standard baselines before its gate closure; ``lease``: seconds the
    anchoring lease lasts unless renewed (by every round of its holder): how long the market waits
    for another oracle of the store to take over when the anchoring one stops."""

    grace: int = 60
    interval: float = 30.0
    confirmations: int | None = 0
    baselines: bool = True
    lease: int = 120

    def __post_init__(self) -> None:
        if self.lease <= self.interval:
            raise ConfigurationError(f"an anchoring lease of {self.lease} s lapses between rounds {self.interval} s "
                                     "apart", hint="make the lease several intervals long (the default: 120 s)")


class OracleService:
    """One oracle (the deployment's signer, holding the ORACLE role) serving one market."""

    def __init__(self, deployment: Deployment, settings: Settings, market: int, policy: OraclePolicy,
                 report: Callable[[OracleEvent], None]) -> None:
        from flexledger.identity.roles import Role
        from flexledger.oracle.store import open_store

        signer = deployment.signer
        if signer is None or not deployment.roles.has_market_role(signer.address, Role.ORACLE.id):
            who = signer.address if signer is not None else "an unsigned deployment"
            raise ConfigurationError(f"{who} holds no valid ORACLE credential",
                                     hint=f"an issuer runs `flexledger role grant {who} ORACLE`")
        self.deployment, self.settings, self.market, self.policy, self.report = (
            deployment, settings, market, policy, report)
        self.address = signer.address
        self.params = deployment.params(market)
        self.engine: Engine = open_store(settings.effective_database_url)
        self.url, self.client_id = oracle_broker(settings)
        self.consumer = self._consumer()
        self._baseline_days: set[int] = set()
        # unique per run: two oracles of one store, even under one client id, never share the lease
        self.holder = f"{self.client_id}/{secrets.token_hex(4)}"
        self.clock: Callable[[], float] = time.time
        self.leading: bool | None = None  # None: not asked yet

    def _consumer(self) -> OracleConsumer:
        from flexledger.identity.eip712 import read_domain
        from flexledger.oracle.consumer import OracleConsumer
        from flexledger.oracle.receipts import ReceiptSigner
        from flexledger.oracle.verify import ChainMeters, Verifier

        d, settings, market = self.deployment, self.settings, self.market
        assert d.signer is not None  # checked by the constructor
        meters = ChainMeters(d.roles, d.assets)
        separator = read_domain(d.conn, d.oracle.address).separator()
        verifier = Verifier(separator, meters.problem, isp_seconds=self.params.isp_seconds, prefetch=meters.prefetch)
        # The later of the wall clock and the chain's: a quiet development chain's last block can lag
        # real time by hours (fresh readings would look like the future), and a chain moved ahead by
        # time travel is ahead of the wall clock.
        conn = d.conn
        try:
            consumer = OracleConsumer(self.url, self.engine, verifier, market, client_id=self.client_id,
                                      expect_session=self._session_marker.exists(),
                                      share_group=shared_subscription(settings),
                                      clock=lambda: max(int(time.time()), conn.latest_timestamp()),
                                      **mqtt_tls(settings))
        except ValueError as exc:
            raise ConfigurationError(f"the oracle's broker settings: {exc}",
                                     hint="set FLEXLEDGER_MQTT_CA_FILE, _CERT_FILE and _KEY_FILE with an "
                                     "mqtts:// URL") from None
        # gateways keep a reading until its receipt: the broker's ACL must let the oracle publish
        # flexledger/v1/receipts/+ (the embedded broker's oracle user may)
        consumer.receipts = True
        # each receipt signed with the anchoring key: "accepted" is a promise a gateway can hold it to
        consumer.receipt_signer = ReceiptSigner(bytes(d.signer.account.key), separator, market)
        consumer.anchor_grace, consumer.isp_seconds = self.policy.grace, self.params.isp_seconds
        return consumer

    @property
    def _session_marker(self) -> Path:
        return self.settings.data_dir / f"oracle-session-{self.client_id}"

    def start(self) -> None:
        """Subscribe to the readings (ConfigurationError when the broker refuses the oracle)."""
        self.consumer.start()
        if not self.consumer.wait_subscribed():
            self.consumer.stop()
            raise ConfigurationError(f"the oracle could not subscribe at {redact_url(self.url)} as {self.client_id}",
                                     hint="check the broker's user, password, ACL and client id (`flexledger config "
                                     "--check`; `flexledger broker status` for the embedded one)")
        self._session_marker.touch()  # from now on a broker without this session has lost it: the consumer raises the alarm

    def run(self, seconds: float | None = None) -> OracleRun:
        """Serve until ``seconds`` have passed (None: until interrupted), a round every interval;
        then stop the consumer and anchor what is due once more."""
        anchored: list[int] = []
        started, last = time.monotonic(), float("-inf")
        try:
            while seconds is None or time.monotonic() - started < seconds:
                if time.monotonic() - last >= self.policy.interval:
                    last = time.monotonic()
                    anchored += self.round()
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
        finally:
            self.consumer.stop()
        if self._lead():
            anchored += self._anchor_due()
            self._step_down()
        return OracleRun(dict(self.consumer.outcomes), anchored, self.consumer.sessions_lost)

    def round(self) -> list[int]:
        """One round: the baselines due, the roots due, the claims and challenges open; the ISPs
        anchored. Only by the oracle holding the market's anchoring lease (taken or renewed here)."""
        if not self._lead():
            return []
        if self.policy.baselines:
            self._anchor_baselines_due()
        done = self._anchor_due()
        for isp in done:
            self.report(OracleEvent("anchored", f"anchored the root of {iso(isp)}"))
        self._answer_claims()
        self._answer_challenges()
        return done

    def _lead(self) -> bool:
        """Whether this oracle anchors now: it holds the market's anchoring lease (renewed, or taken
        over from an oracle whose lease expired)."""
        from flexledger.oracle.lease import lease_holder, take_lease

        now = int(self.clock())
        held = take_lease(self.engine, self.market, self.holder, now, self.policy.lease)
        if held != self.leading and (self.leading is not None or not held):  # a lone oracle's first take is no news
            self.report(OracleEvent("lease", f"took anchoring of market {self.market} over ({self.holder})") if held else
                        OracleEvent("warning", f"another oracle anchors market {self.market} now "
                                               f"({lease_holder(self.engine, self.market, now)})"))
        self.leading = held
        return held

    def _step_down(self) -> None:
        from flexledger.oracle.lease import release_lease

        release_lease(self.engine, self.market, self.holder)
        self.leading = False

    def _anchor_due(self) -> list[int]:
        from flexledger.oracle.anchoring import anchor_due

        d = self.deployment
        return anchor_due(self.engine, d.oracle, self.market, d.conn.latest_timestamp(),
                          isp_seconds=self.params.isp_seconds, grace=self.policy.grace,
                          confirmations=self.policy.confirmations).anchored

    def _anchor_baselines_due(self) -> None:
        """Day-ahead, in the last minutes before the next open day's gate closure (the contract's
        window is the day before it): sellers know their baseline when they offer, and it reads
        the readings anchored by then."""
        from flexledger.oracle.baselines import anchor_day_baselines

        d = self.deployment
        now = d.conn.latest_timestamp()
        ahead = d.next_open_day(self.market, now)
        if now < d.gate_closure(self.market, ahead) - BASELINE_LEAD or ahead in self._baseline_days:
            return
        done_isps, failed = anchor_day_baselines(self.engine, d.oracle, self.market, ahead, self.params.isp_seconds)
        if not failed:
            self._baseline_days.add(ahead)
        if done_isps:
            self.report(OracleEvent("baselines", f"anchored the standard baselines of {len(done_isps)} ISPs of "
                                                 f"{iso(ahead)[:10]}"))

    def _answer_claims(self) -> None:
        """A claim that a receipted reading is missing: prove it is not."""
        from flexledger.delivery.omissions import answer_claims

        d = self.deployment
        if d.has("OmissionClaims"):
            self._answer("claim", "omission claims", lambda: answer_claims(self.engine, d.omission_claims, self.market),
                         lambda a: f"answered the omission claim on {a['meter']} at {iso(a['ispStart'])} with its proof")

    def _answer_challenges(self) -> None:
        """A challenge that a baseline's input day was invented: prove it was not."""
        from flexledger.baselines.challenges import answer_challenges

        d = self.deployment
        if d.has("BaselineDisputes"):
            self._answer("challenge", "baseline challenges",
                         lambda: answer_challenges(self.engine, d.baseline_disputes, d.oracle, self.market),
                         lambda a: f"answered the challenge of {a['meter']}'s baseline at {iso(a['ispStart'])} "
                                   f"({a['daysBack']} days back) with the day's anchored reading")

    def _answer(self, kind: str, what: str, answer: Callable[[], list[dict[str, Any]]],
                describe: Callable[[dict[str, Any]], str]) -> None:
        try:
            answered_now = answer()
        except ChainError as exc:  # the node is out of reach: the next round asks again
            self.report(OracleEvent("warning", f"{what} not checked this round: {exc}"))
            return
        for answered in answered_now:
            self.report(OracleEvent(kind, describe(answered)))


def shared_subscription(settings: Settings) -> str | None:
    """The share group the oracle's consumer joins; ConfigurationError on the embedded broker, which
    has no shared subscriptions (aedes 1.x): each consumer would receive nothing."""
    if settings.mqtt_share_group and not settings.mqtt_url:
        raise ConfigurationError("the embedded broker has no shared subscriptions (mqtt_share_group is set)",
                                 hint="unset FLEXLEDGER_MQTT_SHARE_GROUP, or set FLEXLEDGER_MQTT_URL to a Mosquitto "
                                      "or EMQX broker that the consumers share")
    return settings.mqtt_share_group


@contextmanager
def baseline_window(market: int) -> Iterator[None]:
    """A baseline anchored outside its window: say when the window is, and that retrying won't help."""
    from flexledger.chain.revert_errors import MeterOracleBaselineWindow

    try:
        yield
    except MeterOracleBaselineWindow as exc:
        raise ChainError(f"the standard baselines of the ISP starting at {iso(exc.isp_start)} in market {market} "
                         f"are anchored from {iso(exc.opens)} to {iso(exc.closes)} (its gate closure) only",
                         hint="anchor a market day's baselines in the day before its gate closure") from None


def anchor_standard_baselines(deployment: Deployment, engine: Engine, market: int, day_start: int,
                              isp: int | None = None) -> list[StoredBaselineAnchor]:
    """The standard baselines of every ISP of the market day (or of the one ISP ``isp``) computed
    from the store and anchored; an ISP already anchored is left as is. ChainError when outside
    the anchoring window, or when some ISPs' transactions failed (the others are anchored)."""
    from flexledger.oracle.baselines import anchor_baselines, anchor_day_baselines

    with baseline_window(market):
        if isp is not None:
            one = anchor_baselines(engine, deployment.oracle, market, isp)
            return [one] if one is not None else []
        done, failed = anchor_day_baselines(engine, deployment.oracle, market, day_start,
                                            deployment.params(market).isp_seconds)
    if failed:
        raise ChainError(f"anchoring the standard baselines of {len(failed)} ISPs failed, the first "
                         f"{iso(failed[0])}; the others are anchored", hint="run the command again")
    return done
