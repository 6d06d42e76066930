"""A deterministic simulated meter: a household's daily load and rooftop PV, plus noise.

Each ISP's energy is a pure function of the ISP's start time and the seed, so two meters
with the same parameters produce the same readings whatever order they are asked in:

- load (W) = ``base_load_w`` x a daily shape (night trough, morning and evening peaks)
  x a seeded noise factor in [0.85, 1.15];
- PV (W) = ``pv_peak_w`` x sin(pi (h - 6) / 12) between 06:00 and 18:00 UTC (else 0)
  x a seeded cloudiness factor in [0.6, 1.0];
- plus an optional extra power per ISP (a simulated flexible device: positive consumes,
  negative injects);
- the net power over the ISP is imported when positive and exported when negative.

The meter keeps cumulative import/export registers (in Wh, as floats, like a real meter's
kWh registers) that advance ISP by ISP up to the time it is read; registers start at zero
when the driver is created, so the agent's first boundary only sets the baseline.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from . import DriverError, RegisterSnapshot

DAY_SECONDS = 86_400


@dataclass(frozen=True)
class LoadProfile:
    """The parameters of a simulated household."""

    base_load_w: float = 400.0
    pv_peak_w: float = 0.0
    seed: int = 0

    def load_w(self, isp_start: int) -> float:
        """Average household consumption (W) during the ISP that starts at ``isp_start``."""
        hour = (isp_start % DAY_SECONDS) / 3600.0
        shape = (
            0.7
            + 0.8 * math.exp(-(((hour - 7.5) / 1.5) ** 2))
            + 1.3 * math.exp(-(((hour - 19.0) / 2.0) ** 2))
        )
        return self.base_load_w * shape * self._rng(isp_start, "load").uniform(0.85, 1.15)

    def pv_w(self, isp_start: int) -> float:
        """Average PV production (W) during the ISP that starts at ``isp_start``."""
        if self.pv_peak_w <= 0:
            return 0.0
        hour = (isp_start % DAY_SECONDS) / 3600.0
        sun = math.sin(math.pi * (hour - 6.0) / 12.0) if 6.0 <= hour <= 18.0 else 0.0
        return self.pv_peak_w * max(sun, 0.0) * self._rng(isp_start, "pv").uniform(0.6, 1.0)

    def _rng(self, isp_start: int, stream: str) -> random.Random:
        # A string seed is hashed (SHA-512) by random.Random: deterministic across runs and
        # platforms, independent of the order ISPs are asked for.
        return random.Random(f"flexledger-sim:{self.seed}:{stream}:{isp_start}")


class SimulatedMeter:
    """A meter whose registers advance with simulated time, one whole ISP at a time."""

    def __init__(
        self,
        profile: LoadProfile,
        isp_seconds: int,
        *,
        extra_power_w: Callable[[int], float] | None = None,
    ) -> None:
        self.profile = profile
        self.isp_seconds = isp_seconds
        self._extra_power_w = extra_power_w
        self._import_wh = 0.0
        self._export_wh = 0.0
        self._advanced_to: int | None = None
        self._last_net_w: float | None = None

    def isp_energy_wh(self, isp_start: int) -> tuple[float, float]:
        """(import, export) energy in Wh during one ISP, device included."""
        net_w = self.profile.load_w(isp_start) - self.profile.pv_w(isp_start)
        if self._extra_power_w is not None:
            net_w += self._extra_power_w(isp_start)
        self._last_net_w = net_w
        hours = self.isp_seconds / 3600.0
        return max(net_w, 0.0) * hours, max(-net_w, 0.0) * hours

    def read(self, at: int) -> RegisterSnapshot:
        boundary = at - at % self.isp_seconds
        if self._advanced_to is None:
            self._advanced_to = boundary
        if boundary < self._advanced_to:
            raise DriverError(f"simulated time went backwards: {at} < {self._advanced_to}")
        while self._advanced_to < boundary:
            imported, exported = self.isp_energy_wh(self._advanced_to)
            self._import_wh += imported
            self._export_wh += exported
            self._advanced_to += self.isp_seconds
        return RegisterSnapshot(
            import_wh=math.floor(self._import_wh),
            export_wh=math.floor(self._export_wh),
            power_w=self._last_net_w,
        )

    def close(self) -> None:
        return None
