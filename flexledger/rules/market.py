"""A market's parameters as MarketRegistry holds them, and the time rules that follow from them.

They are read from the chain (never from a config file), so every party uses the same ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

DAY = 86_400


class PricingRule(IntEnum):
    PAY_AS_BID = 0
    PAY_AS_CLEARED = 1


@dataclass(frozen=True)
class MarketParams:
    isp_seconds: int = 900
    gate_closure_seconds: int = 3600
    day_offset_seconds: int = 0
    tolerance_bps: int = 500
    penalty_factor_bps: int = 15_000
    pricing_rule: PricingRule = PricingRule.PAY_AS_BID
    challenge_window_seconds: int = 3600
    dispute_window_seconds: int = 2 * DAY

    def as_tuple(self) -> tuple[int, int, int, int, int, int, int, int]:
        """In MarketRegistry.MarketParams field order, for createMarket."""
        return (
            self.isp_seconds, self.gate_closure_seconds, self.day_offset_seconds, self.tolerance_bps,
            self.penalty_factor_bps, int(self.pricing_rule), self.challenge_window_seconds, self.dispute_window_seconds,
        )

    @classmethod
    def from_tuple(cls, raw: tuple[Any, ...]) -> MarketParams:
        return cls(
            isp_seconds=raw[0], gate_closure_seconds=raw[1], day_offset_seconds=raw[2], tolerance_bps=raw[3],
            penalty_factor_bps=raw[4], pricing_rule=PricingRule(raw[5]), challenge_window_seconds=raw[6],
            dispute_window_seconds=raw[7],
        )

    @property
    def isps_per_day(self) -> int:
        return DAY // self.isp_seconds

    def is_aligned(self, t: int) -> bool:
        return t % self.isp_seconds == 0

    def gate_closure(self, isp_start: int) -> int:
        """The last second at which anything about the ISP may change: its market day's gate
        closure (a day-ahead market: every ISP of a day closes at once)."""
        return max(self.day_start(isp_start) - self.gate_closure_seconds, 0)

    def settlement_closes(self, day_start: int, final_at: int) -> int:
        """The end of a market day's settlement window: a dispute window after the later of the
        day's end and the moment its result could be made final (``DayState.challengeEnds``).
        DESIGN: a window that costs a party money starts when that party could act (RT-9)."""
        return max(day_start + DAY, final_at) + self.dispute_window_seconds

    @property
    def settlement_horizon(self) -> int:
        """Seconds from a day's start to the last second any settlement of it may be made or
        disputed (MarketRegistry.settlementHorizon): its first result is in force before the day
        (or the day is void) and final a challenge window later; the settlement window, the
        default settlement's and its dispute window follow."""
        return max(DAY, self.challenge_window_seconds) + 3 * self.dispute_window_seconds

    def day_start(self, t: int) -> int:
        """The first second of the market day that holds ``t``."""
        if t < self.day_offset_seconds:
            return 0
        return t - (t - self.day_offset_seconds) % DAY
