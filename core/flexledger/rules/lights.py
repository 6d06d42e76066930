"""Traffic lights (DESIGN.md rule 1), as GridZones enforces them.

A light is a colour and, for YELLOW only, a capability in W: GREEN puts no limit on the TSO,
YELLOW lets the TSO use flexibility in the zone up to the capability (summed over its awards in
that zone, ISP and direction), RED lets it use none. The DSO's own requests are not limited by
its lights. On chain a light is packed in 32 bits: the colour in the top two bits (0 = unset),
the capability in the low thirty.

- Lights are the DSO's instrument: a root zone (a TSO area) carries none, it is always GREEN.
- A dynamic light may only be tighter than (or equal to) the zone's static light when published,
  and cannot change after its ISP's gate closure.
- The light in force is the dynamic light if one is set for that ISP, else the static light,
  else GREEN. A static light tightened after publication binds where no dynamic light is set;
  the DSO republishes the open ISPs it wants it to bind in too (GridZones keeps one storage slot
  per level for the TSO-headroom view, which every TSO award check pays for).
- The TSO's headroom for an asset is taken over every zone from the asset's zone to the root:
  any RED forbids, else the smallest YELLOW capability bounds, else there is no bound.

Dynamic lights follow 15-minute ISPs (``LIGHT_ISP_SECONDS``) and are stored one 32-byte word per
market, zone and UTC hour: lane ``4 * direction + (isp_start % 3600) // 900``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from flexledger.errors import FlexledgerError

CAPABILITY_BITS = 30
MAX_CAPABILITY_W = (1 << CAPABILITY_BITS) - 1
LIGHT_ISP_SECONDS = 900  # GridZones.LIGHT_ISP_SECONDS
HOUR = 3600
HOUR_ISPS = HOUR // LIGHT_ISP_SECONDS  # ISPs per direction in one storage word


class LightError(FlexledgerError):
    """A light that breaks rule 1 (a capability where none belongs, too large, looser than static)."""


class Colour(IntEnum):
    UNSET = 0
    GREEN = 1
    YELLOW = 2
    RED = 3


class Direction(IntEnum):
    UP = 0
    DOWN = 1


@dataclass(frozen=True, order=True)
class Light:
    colour: Colour
    capability_w: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.capability_w <= MAX_CAPABILITY_W:
            raise LightError(f"a capability must be 0..{MAX_CAPABILITY_W} W, not {self.capability_w}")
        if self.capability_w and self.colour is not Colour.YELLOW:
            raise LightError(f"only a YELLOW light carries a capability ({self.colour.name} has {self.capability_w} W)")

    @property
    def capacity(self) -> int | None:
        """What the TSO may use under this light alone: None for no limit."""
        if self.colour is Colour.RED:
            return 0
        if self.colour is Colour.YELLOW:
            return self.capability_w
        return None

    def pack(self) -> int:
        return (int(self.colour) << CAPABILITY_BITS) | self.capability_w

    @classmethod
    def unpack(cls, value: int) -> Light:
        return cls(Colour(value >> CAPABILITY_BITS), value & MAX_CAPABILITY_W)

    def __str__(self) -> str:
        return f"YELLOW {self.capability_w} W" if self.colour is Colour.YELLOW else self.colour.name


GREEN = Light(Colour.GREEN)
RED = Light(Colour.RED)


def parse_direction(text: str) -> Direction:
    """UP or DOWN, in any letter case (LightError names the choices otherwise)."""
    try:
        return Direction[str(text).strip().upper()]
    except KeyError:
        raise LightError(f"{text!r} is not a direction", hint="use UP or DOWN") from None


def parse_light(colour: str, capability_w: int | None) -> Light:
    """A light as a DSO writes it: GREEN, YELLOW with its capability in W, or RED.

    A YELLOW light needs its capability said, 0 included: a forgotten one would otherwise let the
    TSO use nothing in the zone without anyone having meant it."""
    try:
        parsed = Colour[str(colour).strip().upper()]
    except KeyError:
        parsed = Colour.UNSET
    if parsed is Colour.UNSET:
        raise LightError(f"{colour!r} is not a light's colour", hint="use GREEN, YELLOW or RED")
    if parsed is Colour.YELLOW and capability_w is None:
        raise LightError("a YELLOW light needs its capability in W",
                         hint="give the watts the TSO may use in the zone (0 lets it use none: or say RED)")
    return Light(parsed, capability_w or 0)


def _looseness(light: Light) -> float:
    """The order of tightness: RED < YELLOW (by capability; YELLOW 0 W is looser than RED) < GREEN."""
    if light.colour is Colour.RED:
        return 0
    if light.colour is Colour.YELLOW:
        return 1 + light.capability_w
    return float("inf")


def no_looser(light: Light, bound: Light | None) -> bool:
    """Whether ``light`` is at most as permissive as ``bound`` (no bound: anything goes)."""
    if bound is None or bound.colour is Colour.UNSET:
        return True
    return _looseness(light) <= _looseness(bound)


def effective(static: Light | None, dynamic: Light | None) -> Light:
    """The light in force: the dynamic light if set, else the static one, else GREEN."""
    if dynamic is not None and dynamic.colour is not Colour.UNSET:
        return dynamic
    if static is not None and static.colour is not Colour.UNSET:
        return static
    return GREEN


def tso_headroom(path: list[Light]) -> tuple[bool, int | None]:
    """(allowed, capability) over the effective lights of a zone's path to the root."""
    bound: int | None = None
    for light in path:
        cap = light.capacity
        if cap == 0 and light.colour is Colour.RED:
            return False, 0
        if cap is not None and (bound is None or cap < bound):
            bound = cap
    return True, bound


def lane(isp_start: int, direction: Direction) -> int:
    """The 32-bit lane of an ISP and direction in its hour's word."""
    return 4 * int(direction) + (isp_start % HOUR) // LIGHT_ISP_SECONDS


def pack_hour(lights: dict[Direction, list[Light | None]]) -> int:
    """An hour's four ISPs, both directions, in one storage word (None: no dynamic light)."""
    word = 0
    for direction, row in lights.items():
        if len(row) != HOUR_ISPS:
            raise LightError(f"an hour holds {HOUR_ISPS} ISPs per direction, not {len(row)}")
        for k, light in enumerate(row):
            if light is not None:
                word |= light.pack() << (32 * (4 * int(direction) + k))
    return word


def unpack_hour(word: int) -> dict[Direction, list[Light | None]]:
    out: dict[Direction, list[Light | None]] = {}
    for direction in Direction:
        row: list[Light | None] = []
        for k in range(HOUR_ISPS):
            value = (word >> (32 * (4 * int(direction) + k))) & 0xFFFFFFFF
            row.append(None if value >> CAPABILITY_BITS == 0 else Light.unpack(value))
        out[direction] = row
    return out


def pack_day(day: dict[Direction, list[Light | None]]) -> list[int]:
    """A market day of 15-minute ISPs (96 per direction) as the 24 hour words ``publishDay`` takes."""
    isps = {len(row) for row in day.values()}
    if isps != {24 * HOUR_ISPS} or set(day) != set(Direction):
        raise LightError(f"a day holds {24 * HOUR_ISPS} ISPs in each direction")
    return [
        pack_hour({d: day[d][h * HOUR_ISPS:(h + 1) * HOUR_ISPS] for d in Direction}) for h in range(24)
    ]
