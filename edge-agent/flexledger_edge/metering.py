"""From cumulative meter registers to the energy of each ISP.

At every ISP boundary the agent reads the meter's cumulative import and export registers
(whole Wh). The energy of the ISP ``[t0, t1)`` is the difference of the registers read at
``t0`` and at ``t1``. Rules:

- the first boundary after a (re)start only sets the baseline: no reading;
- a missed boundary (the agent or the meter was away for longer than an ISP) yields no
  reading for the ISPs in between: their energy cannot be split honestly between them;
- a register that went backwards (meter replaced, reset, or a bad read) is an error: it is
  logged, yields no reading, and the new value becomes the baseline.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from .drivers import RegisterSnapshot

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IspEnergy:
    """Energy measured during one ISP, in whole Wh."""

    isp_start: int
    import_wh: int
    export_wh: int


class IspEnergyTracker:
    """Keeps the previous boundary's registers and turns each new boundary into an ISP's energy."""

    def __init__(self, isp_seconds: int) -> None:
        self.isp_seconds = isp_seconds
        self._previous: tuple[int, RegisterSnapshot] | None = None

    def reset(self) -> None:
        """Forget the baseline (e.g. after the meter could not be read at a boundary)."""
        self._previous = None

    def at_boundary(self, boundary: int, snapshot: RegisterSnapshot) -> IspEnergy | None:
        """Record the registers read at ``boundary``; the energy of the ISP that just ended, if known."""
        if boundary % self.isp_seconds:
            raise ValueError(f"{boundary} is not an ISP boundary (ISP = {self.isp_seconds} s)")
        previous, self._previous = self._previous, (boundary, snapshot)
        if previous is None:
            log.info("baseline registers at %d: import %d Wh, export %d Wh", boundary, snapshot.import_wh, snapshot.export_wh)
            return None
        last_boundary, last = previous
        if boundary <= last_boundary:
            log.error("ISP boundary %d is not after the previous one (%d); no reading", boundary, last_boundary)
            return None
        if boundary - last_boundary != self.isp_seconds:
            log.warning(
                "missed %d ISP boundary(ies) between %d and %d; no reading for that time",
                (boundary - last_boundary) // self.isp_seconds - 1, last_boundary, boundary,
            )
            return None
        import_wh = snapshot.import_wh - last.import_wh
        export_wh = snapshot.export_wh - last.export_wh
        if import_wh < 0 or export_wh < 0:
            log.error(
                "meter counter went backwards during ISP %d (import %d -> %d Wh, export %d -> %d Wh); "
                "no reading, new baseline",
                last_boundary, last.import_wh, snapshot.import_wh, last.export_wh, snapshot.export_wh,
            )
            return None
        return IspEnergy(last_boundary, import_wh, export_wh)
