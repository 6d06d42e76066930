"""What the clearing answers."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, order=True)
class Award:
    """``power_w`` of offer ``offer_key`` to request ``request_id`` in the ISP starting at ``isp_start``,
    paid ``price`` (token base units per MWh)."""

    request_id: int
    isp_start: int
    offer_key: str
    power_w: int
    price: int


@dataclass
class SolverStats:
    components: int = 0  # independent components solved, over both stages
    variables: int = 0
    binaries: int = 0
    constraints: int = 0
    build_seconds: float = 0.0
    solve_seconds: float = 0.0
    gap: float = 0.0  # the largest relative MIP gap of any component (0: proven optimum everywhere)
    optimal: bool = True
    status: str = "optimal"

    def add(self, other: SolverStats) -> None:
        """Count in another part of the same clearing (solved apart, in another process)."""
        self.components += other.components
        self.variables += other.variables
        self.binaries += other.binaries
        self.constraints += other.constraints
        self.build_seconds += other.build_seconds
        self.solve_seconds += other.solve_seconds
        self.gap = max(self.gap, other.gap)
        if not other.optimal:
            self.optimal, self.status = False, other.status


@dataclass
class ClearingResult:
    awards: list[Award] = field(default_factory=list)
    welfare: int = 0  # token base units: buyers' value at their maximum price minus sellers' cost at theirs
    stats: SolverStats = field(default_factory=SolverStats)

    @property
    def empty(self) -> bool:
        return not self.awards
