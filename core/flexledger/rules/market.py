"""A market's parameters as MarketRegistry holds them, and the time rules that follow from them.

They are read from the chain (never from a config file), so every party uses the same ones.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
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

    @classmethod
    def from_fields(cls, source: object) -> MarketParams:
        """The parameters held by any object with these field names: MarketRegistry's
        ``MarketParams`` struct, as the chain's bindings return it (the rules import no chain code)."""
        values: dict[str, Any] = {f.name: int(getattr(source, f.name)) for f in fields(cls)}
        return cls(**{**values, "pricing_rule": PricingRule(values["pricing_rule"])})

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
