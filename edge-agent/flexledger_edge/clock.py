"""The agent's time: real UTC time, simulated time running faster for demos, or simulated time that
jumps from one moment to the next (a backfill of past ISPs)."""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """UTC Unix seconds (possibly simulated)."""
        ...

    def wait_until(self, at: float, stop: threading.Event) -> bool:
        """Sleep until ``at`` (this clock's time); False when ``stop`` was set first."""
        ...


class RealClock:
    """Wall-clock UTC time."""

    def now(self) -> float:
        return time.time()

    def wait_until(self, at: float, stop: threading.Event) -> bool:
        while not stop.is_set():
            remaining = at - time.time()
            if remaining <= 0:
                return True
            stop.wait(min(remaining, 1.0))
        return False


class AcceleratedClock:
    """Simulated time that starts at ``start`` and runs ``isp_seconds / seconds_per_isp`` times
    faster than real time: one ISP passes every ``seconds_per_isp`` real seconds."""

    def __init__(self, start: float, isp_seconds: int, seconds_per_isp: float) -> None:
        if seconds_per_isp <= 0:
            raise ValueError("seconds_per_isp must be positive")
        self.start = start
        self.speed = isp_seconds / seconds_per_isp
        self._origin = time.monotonic()

    def restart(self) -> None:
        """Run from ``start`` again as of now (what a set-up took is not counted as simulated time)."""
        self._origin = time.monotonic()

    def now(self) -> float:
        return self.start + (time.monotonic() - self._origin) * self.speed

    def wait_until(self, at: float, stop: threading.Event) -> bool:
        while not stop.is_set():
            remaining = (at - self.now()) / self.speed
            if remaining <= 0:
                return True
            stop.wait(min(remaining, 1.0))
        return False


class SteppedClock:
    """Simulated time that jumps to whatever moment is waited for: the agent meters ISP after ISP
    as fast as it can sign them (a backfill of a past day by a simulated meter)."""

    def __init__(self, start: float) -> None:
        self.start = start
        self._now = start

    def now(self) -> float:
        return self._now

    def wait_until(self, at: float, stop: threading.Event) -> bool:
        if stop.is_set():
            return False
        self._now = max(self._now, at)
        return True
