"""The grid's zone tree and its lights, as GridZones holds them: the path rule of DESIGN.md
rule 1 ("a constraint holds in every zone on the path from the asset's zone to the root")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from flexledger.errors import FlexledgerError
from flexledger.rules.lights import Direction, Light, effective, no_looser, tso_headroom

MAX_DEPTH = 7  # zones below a root, as GridZones.MAX_DEPTH
MAX_ZONES = (1 << 24) - 1  # zone ids are 24-bit in GridZones' ancestor lists


def path_to_root(parent: Mapping[int, int], zone: int) -> list[int]:
    """``zone`` and its ancestors up to its root, from a map of every zone to its parent (0: none)."""
    path = [zone]
    while parent.get(path[-1], 0):
        path.append(parent[path[-1]])
        if len(path) > MAX_DEPTH + 1:
            raise ZoneError(f"zone {zone} is deeper than {MAX_DEPTH} levels, or its parents form a cycle")
    return path


class ZoneError(FlexledgerError):
    """An unknown zone, or a tree that breaks the depth bound."""


@dataclass
class Zone:
    zone_id: int
    parent: int
    operator: str
    depth: int
    static: dict[Direction, Light] = field(default_factory=dict)


@dataclass
class GridModel:
    """Zones, static lights and dynamic lights (per ISP start) of one market."""

    zones: dict[int, Zone] = field(default_factory=dict)
    dynamic: dict[tuple[int, Direction, int], Light] = field(default_factory=dict)

    def add_zone(self, zone_id: int, parent: int, operator: str) -> Zone:
        if parent and parent not in self.zones:
            raise ZoneError(f"unknown parent zone {parent}")
        depth = self.zones[parent].depth + 1 if parent else 0
        if depth > MAX_DEPTH:
            raise ZoneError(f"zone {zone_id} would be at depth {depth}; the bound is {MAX_DEPTH}")
        zone = Zone(zone_id, parent, operator, depth)
        self.zones[zone_id] = zone
        return zone

    def path_to_root(self, zone_id: int) -> list[int]:
        if zone_id not in self.zones:
            raise ZoneError(f"unknown zone {zone_id}")
        path = [zone_id]
        while self.zones[path[-1]].parent:
            path.append(self.zones[path[-1]].parent)
        return path

    def is_in_subtree(self, zone_id: int, ancestor: int) -> bool:
        return ancestor in self.path_to_root(zone_id)

    def _light_zone(self, zone_id: int) -> Zone:
        if zone_id not in self.zones:
            raise ZoneError(f"unknown zone {zone_id}")
        zone = self.zones[zone_id]
        if zone.depth == 0:
            raise ZoneError(f"zone {zone_id} is a root (a TSO area): roots carry no lights")
        return zone

    def set_static(self, zone_id: int, direction: Direction, light: Light) -> None:
        self._light_zone(zone_id).static[direction] = light

    def set_dynamic(self, zone_id: int, direction: Direction, isp_start: int, light: Light) -> None:
        static = self._light_zone(zone_id).static.get(direction)
        if not no_looser(light, static):
            raise ZoneError(f"{light} in zone {zone_id} is looser than its static {static}")
        self.dynamic[(zone_id, direction, isp_start)] = light

    def effective(self, zone_id: int, direction: Direction, isp_start: int) -> Light:
        zone = self.zones[zone_id]
        return effective(zone.static.get(direction), self.dynamic.get((zone_id, direction, isp_start)))

    def tso_headroom(self, zone_id: int, direction: Direction, isp_start: int) -> tuple[bool, int | None]:
        return tso_headroom([self.effective(z, direction, isp_start) for z in self.path_to_root(zone_id)])
