"""Meter drivers: each reads a meter's cumulative energy registers.

A driver only reports what the meter's registers say at a moment; turning two register
snapshots at ISP boundaries into one ISP's energy is :mod:`flexledger_edge.metering`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class DriverError(Exception):
    """The meter could not be read (connection, protocol or value error); no reading is made."""


@dataclass(frozen=True)
class RegisterSnapshot:
    """A meter's cumulative registers at one moment, in whole Wh (rounded down).

    ``power_w`` is the instantaneous total system power when the meter reports it (positive
    = import), for logs and dashboards only: readings never use it.
    """

    import_wh: int
    export_wh: int
    power_w: float | None = None


class MeterDriver(Protocol):
    """What the agent needs of a meter."""

    def read(self, at: int) -> RegisterSnapshot:
        """The registers now; ``at`` is the agent's time (UTC seconds) of the ISP boundary.

        Raises :class:`DriverError` when the meter cannot be read.
        """
        ...

    def close(self) -> None:
        """Release the connection, if any."""
        ...
