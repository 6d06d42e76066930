"""Activation orders: validation, the owner's override, execution and acknowledgement.

An order arrives on ``flexledger/v1/orders/<asset id>`` as JSON::

    {"orderId": str, "asset": int, "ispStart": int, "isps": int, "direction": "UP"|"DOWN", "powerW": int}

and is answered on ``flexledger/v1/acks/<asset id>`` (QoS 1) with::

    {"orderId": str, "asset": int, "status": "accepted"|"overridden"|"rejected", "reason": str|null, "at": int}

``at`` is the agent's clock (UTC seconds) when it decided.

An acknowledgement is not delivery. ``accepted`` only says that the agent took the order
and planned it on the device; whether the energy was delivered is measured by the meter,
and only the signed readings (and the settlement computed from them) say so.
``overridden`` says the owner's switch is on (the config flag ``override = true`` or the
file ``<state dir>/override``): the agent does not act. ``rejected`` comes with a reason:
the payload is malformed, the order is for another asset, the window is not ISP-aligned or
already over, the power is above what the device can do, or the device cannot (state of
charge, overlap with an accepted order).

The same ``orderId`` received again (an MQTT QoS 1 redelivery) gets the first answer again
and is not executed twice.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from .devices import Activation, Direction, FlexDevice

log = logging.getLogger(__name__)

Status = Literal["accepted", "overridden", "rejected"]
MAX_ORDER_ID_LENGTH = 128
MAX_ISPS = 96 * 7
_REMEMBERED_ORDERS = 1000


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


class OrderError(ValueError):
    """An order payload that cannot be read; the message is the rejection reason."""


def parse_order(payload: bytes | str) -> Activation:
    """Read an order's JSON into an :class:`Activation`, or raise :class:`OrderError`."""
    try:
        data = json.loads(payload)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise OrderError(f"malformed order: not JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise OrderError("malformed order: not a JSON object")

    def integer(key: str, minimum: int) -> int:
        value = data.get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise OrderError(f"malformed order: {key} must be an integer")
        if value < minimum:
            raise OrderError(f"malformed order: {key} must be at least {minimum}")
        return value

    order_id = data.get("orderId")
    if not isinstance(order_id, str) or not order_id or len(order_id) > MAX_ORDER_ID_LENGTH:
        raise OrderError(f"malformed order: orderId must be a string of 1 to {MAX_ORDER_ID_LENGTH} characters")
    direction = data.get("direction")
    if direction not in ("UP", "DOWN"):
        raise OrderError('malformed order: direction must be "UP" or "DOWN"')
    isps = integer("isps", 1)
    if isps > MAX_ISPS:
        raise OrderError(f"malformed order: isps must be at most {MAX_ISPS}")
    return Activation(
        order_id=order_id,
        asset=integer("asset", 0),
        isp_start=integer("ispStart", 0),
        isps=isps,
        direction=Direction(direction),
        power_w=integer("powerW", 1),
    )


def _order_id_of(payload: bytes | str) -> str:
    """The orderId of a payload that failed validation, when it can be read at all."""
    try:
        data = json.loads(payload)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return ""
    order_id = data.get("orderId") if isinstance(data, dict) else None
    return order_id if isinstance(order_id, str) and len(order_id) <= MAX_ORDER_ID_LENGTH else ""


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
    ) -> None:
        """``override_active()`` returns why the owner's override is on, or None when it is off."""
        self.asset_id = asset_id
        self.device = device
        self.isp_seconds = isp_seconds
        self._clock = clock
        self._override_active = override_active
        self._answered: OrderedDict[str, Ack] = OrderedDict()

    def handle(self, payload: bytes | str) -> Ack:
        """Answer one order payload (executing it when accepted)."""
        now = int(self._clock())
        try:
            activation = parse_order(payload)
        except OrderError as exc:
            return self._answer(_order_id_of(payload), "rejected", str(exc), now, remember=False)
        if activation.asset != self.asset_id:
            return self._answer(
                activation.order_id, "rejected",
                f"wrong asset: the order is for asset {activation.asset}, this agent runs asset {self.asset_id}",
                now, remember=False,
            )
        previous = self._answered.get(activation.order_id)
        if previous is not None:
            log.info("order %s received again; repeating its answer (%s)", activation.order_id, previous.status)
            return previous
        override = self._override_active()
        if override is not None:
            return self._answer(activation.order_id, "overridden", override, now)
        reason = self._why_not(activation, now)
        if reason is not None:
            return self._answer(activation.order_id, "rejected", reason, now)
        self.device.schedule(activation)
        log.info(
            "order %s accepted: %s %d W for %d ISP(s) from %d",
            activation.order_id, activation.direction, activation.power_w, activation.isps, activation.isp_start,
        )
        return self._answer(activation.order_id, "accepted", None, now)

    def _why_not(self, activation: Activation, now: int) -> str | None:
        if activation.isp_start % self.isp_seconds:
            return f"ispStart {activation.isp_start} is not an ISP boundary (ISP = {self.isp_seconds} s)"
        if activation.end(self.isp_seconds) <= now:
            return f"too late: the window ended at {activation.end(self.isp_seconds)}, now is {now}"
        ability = self.device.max_power_w(activation.direction)
        if activation.power_w > ability:
            return (
                f"power above the device's ability: {activation.power_w} W {activation.direction} asked, "
                f"the {self.device.kind} can do at most {ability} W"
            )
        return self.device.check(activation, self.isp_seconds)

    def _answer(self, order_id: str, status: Status, reason: str | None, at: int, *, remember: bool = True) -> Ack:
        ack = Ack(order_id, self.asset_id, status, reason, at)
        if status == "accepted":
            log.info("ack %s: accepted", order_id)
        else:
            log.warning("ack %s: %s (%s)", order_id or "<no id>", status, reason)
        if remember:
            self._answered[order_id] = ack
            while len(self._answered) > _REMEMBERED_ORDERS:
                self._answered.popitem(last=False)
        return ack
