"""What the clearing reads: the market day's offers in force, its open requests, the grid's
zone tree and the lights in force, and the market's ISP length and pricing rule."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from flexledger.rules.lights import Direction, Light
from flexledger.rules.market import PricingRule
from flexledger.rules.orders import Mode


class BuyerKind(IntEnum):
    """Rule 2: DSO requests clear first; TSO requests clear on what is left, inside the lights."""

    DSO = 0
    TSO = 1


@dataclass(frozen=True)
class OfferIn:
    """An offer in force. ``key`` orders offers for tie-breaking (the offer's EIP-712 digest, hex)."""

    key: str
    zone: int
    start: int  # first ISP's start (Unix seconds)
    isps: int  # more than one: a block, awarded the same power in each of its ISPs or not at all
    direction: Direction
    power_w: int
    price: int  # token base units per MWh
    mode: Mode = Mode.DIVISIBLE
    min_power_w: int = 0
    # the assets whose meters deliver it (an asset offer: its asset; a portfolio offer: its members):
    # two offers sharing one are never both awarded in an ISP, whatever their directions
    assets: tuple[int, ...] = ()


@dataclass(frozen=True)
class RequestIn:
    request_id: int
    kind: BuyerKind
    zone: int
    start: int
    isps: int
    direction: Direction
    power_w: int
    max_price: int  # token base units per MWh


@dataclass
class ClearingInput:
    """``parent`` maps every zone to its parent (0 for a root); ``lights`` holds the lights in
    force that are not GREEN, by (zone, ISP start, direction)."""

    offers: list[OfferIn]
    requests: list[RequestIn]
    parent: dict[int, int]
    lights: dict[tuple[int, int, Direction], Light] = field(default_factory=dict)
    isp_seconds: int = 900
    pricing: PricingRule = PricingRule.PAY_AS_BID
    time_limit: float = 60.0  # seconds, for the whole clearing
