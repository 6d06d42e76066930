"""The agent's time: real UTC time, or simulated time running faster for demos."""

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
