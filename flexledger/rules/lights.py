"""Traffic lights (DESIGN.md rule 1), as GridRegistry enforces them.

A light is a colour and, for YELLOW only, a capability in W: GREEN puts no limit on the TSO,
YELLOW lets the TSO use flexibility in the zone up to the capability (summed over its awards in
that zone, ISP and direction), RED lets it use none. The DSO's own requests are not limited by
its lights. On chain a light is packed in 32 bits: the colour in the top two bits (0 = unset),
the capability in the low thirty.

- A dynamic light may only be tighter than (or equal to) the zone's static light when published.
- The light in force is the tighter of the dynamic light (if any) and the static one; no light
  at all means GREEN.
- The TSO's headroom for an asset is taken over every zone from the asset's zone to the root:
  any RED forbids, else the smallest YELLOW capability bounds, else there is no bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from flexledger.errors import FlexledgerError

CAPABILITY_BITS = 30
MAX_CAPABILITY_W = (1 << CAPABILITY_BITS) - 1
WORD_ISPS = 8  # ISPs per 32-byte storage word


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


def _capacity_key(light: Light) -> float:
    cap = light.capacity
    return float("inf") if cap is None else cap


def no_looser(light: Light, bound: Light | None) -> bool:
    """Whether ``light`` is at most as permissive as ``bound`` (no bound: anything goes)."""
    if bound is None or bound.colour is Colour.UNSET:
        return True
    return _capacity_key(light) <= _capacity_key(bound)


def effective(static: Light | None, dynamic: Light | None) -> Light:
    """The light in force: the tighter of the dynamic and the static light; GREEN if neither."""
    base = static if static is not None and static.colour is not Colour.UNSET else GREEN
    if dynamic is not None and dynamic.colour is not Colour.UNSET and _capacity_key(dynamic) < _capacity_key(base):
        return dynamic
    return base


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


def pack_word(lights: list[Light | None]) -> int:
    """Eight ISPs' lights in one storage word, the first ISP in the lowest 32 bits."""
    if len(lights) != WORD_ISPS:
        raise LightError(f"a word holds {WORD_ISPS} ISPs, not {len(lights)}")
    word = 0
    for j, light in enumerate(lights):
        if light is not None:
            word |= light.pack() << (32 * j)
    return word


def unpack_word(word: int) -> list[Light | None]:
    out: list[Light | None] = []
    for j in range(WORD_ISPS):
        value = (word >> (32 * j)) & 0xFFFFFFFF
        out.append(None if value >> CAPABILITY_BITS == 0 else Light.unpack(value))
    return out
