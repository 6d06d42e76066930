"""Simulated flexible devices that execute activations: a home battery and a heat pump.

Directions follow the market's vocabulary: ``UP`` = more injection or less consumption,
``DOWN`` = less injection or more consumption. A device reports its power as *net
consumption* in W (positive consumes, negative injects), the sign the meter sees.

- Battery: idle (0 W) when left alone; ``UP`` discharges (injects) and ``DOWN`` charges,
  each up to ``max_power_w`` and within the state of charge (SoC) between empty and
  ``capacity_wh``.
- Heat pump: consumes ``baseline_w`` on average when left alone; ``UP`` switches it off or
  turns it down (at most ``baseline_w`` less), ``DOWN`` boosts it (at most
  ``rated_power_w - baseline_w`` more).

A device plans an activation when an order is accepted (:meth:`schedule`) and acts ISP by
ISP when the agent calls :meth:`begin_isp` at each ISP boundary. When the owner's override
is on at that moment, it does not act, even for an order it had accepted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from .config import BatteryConfig, DeviceConfig, HeatPumpConfig

log = logging.getLogger(__name__)

_HISTORY_ISPS = 96 * 7


class Direction(StrEnum):
    UP = "UP"
    DOWN = "DOWN"


@dataclass(frozen=True)
class Activation:
    """An accepted activation order: ``power_w`` in ``direction`` for ``isps`` ISPs from ``isp_start``."""

    order_id: str
    asset: int
    isp_start: int
    isps: int
    direction: Direction
    power_w: int

    def end(self, isp_seconds: int) -> int:
        return self.isp_start + self.isps * isp_seconds

    def covers(self, isp_start: int, isp_seconds: int) -> bool:
        return self.isp_start <= isp_start < self.end(isp_seconds)

    def energy_wh(self, isp_seconds: int) -> float:
        return self.power_w * self.isps * isp_seconds / 3600.0


class FlexDevice(Protocol):
    """What the order handler and the agent need of a device."""

    kind: str

    def max_power_w(self, direction: Direction) -> int:
        """The most the device can shift in a direction, in W."""
        ...

    def check(self, activation: Activation, isp_seconds: int) -> str | None:
        """Why the device cannot execute an activation, or None when it can."""
        ...

    def schedule(self, activation: Activation) -> None:
        """Plan an activation that :meth:`check` allowed."""
        ...

    def begin_isp(self, isp_start: int, isp_seconds: int, *, override: bool) -> float:
        """Act for the ISP that starts now; the net consumption (W) it will have during it."""
        ...

    def power_during(self, isp_start: int) -> float:
        """The net consumption (W) the device had during an ISP it has begun (0 if unknown)."""
        ...


class _Scheduled:
    """Activation planning shared by the simulated devices."""

    kind = "device"

    def __init__(self) -> None:
        self.activations: list[Activation] = []
        self._history: dict[int, float] = {}

    def overlapping(self, activation: Activation, isp_seconds: int) -> Activation | None:
        for other in self.activations:
            if other.isp_start < activation.end(isp_seconds) and activation.isp_start < other.end(isp_seconds):
                return other
        return None

    def schedule(self, activation: Activation) -> None:
        self.activations.append(activation)
        self.activations.sort(key=lambda a: a.isp_start)

    def active(self, isp_start: int, isp_seconds: int) -> Activation | None:
        self.activations = [a for a in self.activations if a.end(isp_seconds) > isp_start]
        for activation in self.activations:
            if activation.covers(isp_start, isp_seconds):
                return activation
        return None

    def power_during(self, isp_start: int) -> float:
        return self._history.get(isp_start, 0.0)

    def _record(self, isp_start: int, power_w: float) -> float:
        self._history[isp_start] = power_w
        if len(self._history) > _HISTORY_ISPS:
            del self._history[min(self._history)]
        return power_w


class SimulatedBattery(_Scheduled):
    """A battery with a state of charge, a capacity and a power limit."""

    kind = "battery"

    def __init__(self, capacity_wh: int, max_power_w: int, initial_soc: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= initial_soc <= 1.0:
            raise ValueError("initial_soc must be between 0 and 1")
        self.capacity_wh = capacity_wh
        self.max_power = max_power_w
        self.soc_wh = capacity_wh * initial_soc

    @property
    def soc(self) -> float:
        """State of charge, 0..1."""
        return self.soc_wh / self.capacity_wh

    def max_power_w(self, direction: Direction) -> int:
        return self.max_power

    def check(self, activation: Activation, isp_seconds: int) -> str | None:
        other = self.overlapping(activation, isp_seconds)
        if other is not None:
            return f"overlaps accepted order {other.order_id}"
        same = [a for a in self.activations if a.direction == activation.direction]
        committed = sum(a.energy_wh(isp_seconds) for a in same)
        needed = activation.energy_wh(isp_seconds)
        # Conservative: energy planned in the other direction is not counted as help.
        if activation.direction == Direction.UP:
            available = self.soc_wh - committed
            if needed > available + 1e-9:
                return f"not enough stored energy: needs {needed:.0f} Wh, {max(available, 0):.0f} Wh available"
        else:
            room = self.capacity_wh - self.soc_wh - committed
            if needed > room + 1e-9:
                return f"not enough room to charge: needs {needed:.0f} Wh, {max(room, 0):.0f} Wh free"
        return None

    def begin_isp(self, isp_start: int, isp_seconds: int, *, override: bool) -> float:
        activation = self.active(isp_start, isp_seconds)
        if activation is None:
            return self._record(isp_start, 0.0)
        if override:
            log.warning("owner override: battery does not execute order %s in ISP %d", activation.order_id, isp_start)
            return self._record(isp_start, 0.0)
        hours = isp_seconds / 3600.0
        if activation.direction == Direction.UP:
            power = min(float(activation.power_w), self.soc_wh / hours)
            self.soc_wh -= power * hours
            consumption = -power
        else:
            power = min(float(activation.power_w), (self.capacity_wh - self.soc_wh) / hours)
            self.soc_wh += power * hours
            consumption = power
        if power < activation.power_w:
            log.warning("battery delivers %.0f W of order %s's %d W in ISP %d (SoC limit)", power, activation.order_id, activation.power_w, isp_start)
        self.soc_wh = min(max(self.soc_wh, 0.0), float(self.capacity_wh))
        return self._record(isp_start, consumption)


class SimulatedHeatPump(_Scheduled):
    """A heat pump that can be turned down (UP) or boosted (DOWN) around its baseline."""

    kind = "heat_pump"

    def __init__(self, rated_power_w: int, baseline_w: int) -> None:
        super().__init__()
        if not 0 <= baseline_w <= rated_power_w:
            raise ValueError("baseline_w must be between 0 and rated_power_w")
        self.rated_power_w = rated_power_w
        self.baseline_w = baseline_w

    def max_power_w(self, direction: Direction) -> int:
        return self.baseline_w if direction == Direction.UP else self.rated_power_w - self.baseline_w

    def check(self, activation: Activation, isp_seconds: int) -> str | None:
        other = self.overlapping(activation, isp_seconds)
        if other is not None:
            return f"overlaps accepted order {other.order_id}"
        return None

    def begin_isp(self, isp_start: int, isp_seconds: int, *, override: bool) -> float:
        activation = self.active(isp_start, isp_seconds)
        consumption = float(self.baseline_w)
        if activation is not None:
            if override:
                log.warning("owner override: heat pump does not execute order %s in ISP %d", activation.order_id, isp_start)
            elif activation.direction == Direction.UP:
                consumption = float(max(self.baseline_w - activation.power_w, 0))
            else:
                consumption = float(min(self.baseline_w + activation.power_w, self.rated_power_w))
        return self._record(isp_start, consumption)


def build_device(config: DeviceConfig) -> FlexDevice:
    """The simulated device a configuration describes."""
    if isinstance(config, BatteryConfig):
        return SimulatedBattery(config.capacity_wh, config.max_power_w, config.initial_soc)
    if isinstance(config, HeatPumpConfig):
        return SimulatedHeatPump(config.rated_power_w, config.baseline_w)
    raise TypeError(f"unknown device configuration {config!r}")
