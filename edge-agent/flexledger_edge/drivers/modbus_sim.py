"""Simulated SDM630 meters on Modbus TCP (pymodbus servers), for demos and tests.

A real gateway reads a real meter; a demo has none, so this module serves the register map
that :mod:`flexledger_edge.drivers.modbus` reads (input registers, float32, high word first)
from a pymodbus server whose energy registers advance with a household profile
(:class:`~flexledger_edge.drivers.simulated.LoadProfile`) as a clock runs. The edge agent then
reads it through its ordinary Modbus driver, over TCP, exactly as it would read a meter.

The registers are a function of the clock's time, computed when a request arrives: the
profile's average net power in each ISP, integrated from the meter's initial register values.
The clock may be simulated (an accelerated demo clock); it must not go backwards.

Each meter is its own server on its own port of the loopback interface (one meter per
gateway, as at a prosumer's home); all of them are served by one event loop in one
background thread.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from . import DriverError
from .modbus import REG_EXPORT_KWH, REG_IMPORT_KWH, REG_TOTAL_POWER_W, float32_to_registers
from .simulated import LoadProfile

log = logging.getLogger(__name__)

READ_INPUT_REGISTERS = 0x04
_REGISTER_COUNT = 0x60  # covers every address the driver reads (the highest is 0x004B)


@dataclass(frozen=True)
class SimulatedRegisters:
    """What one simulated SDM630 shows at a moment."""

    import_kwh: float
    export_kwh: float
    power_w: float


class Sdm630Model:
    """One meter's cumulative import and export registers as a function of time.

    The net power (load minus PV, positive = import) is the profile's average for each ISP,
    held constant within it; energy accumulates from ``start``, when the registers held
    ``import_kwh`` and ``export_kwh`` (a meter in service for years does not start at zero, and
    float32 registers lose resolution as they grow, which the driver has to cope with).
    """

    def __init__(
        self, profile: LoadProfile, isp_seconds: int, *, start: float, import_kwh: float = 0.0, export_kwh: float = 0.0,
    ) -> None:
        if import_kwh < 0 or export_kwh < 0:
            raise ValueError("energy registers cannot start below zero")
        self.profile = profile
        self.isp_seconds = isp_seconds
        self._at = start
        self._import_wh = import_kwh * 1000.0
        self._export_wh = export_kwh * 1000.0

    def net_power_w(self, at: float) -> float:
        isp_start = int(at) - int(at) % self.isp_seconds
        return self.profile.load_w(isp_start) - self.profile.pv_w(isp_start)

    def at(self, t: float) -> SimulatedRegisters:
        """The registers at time ``t``; raises :class:`DriverError` if ``t`` is before the last one asked."""
        if t < self._at:
            # a meter's counters never run backwards; a clock that does is a bug in the caller
            raise DriverError(f"simulated meter asked for {t}, before {self._at}")
        while self._at < t:
            boundary = (math.floor(self._at / self.isp_seconds) + 1) * self.isp_seconds
            until = min(t, boundary)
            net_w = self.net_power_w(self._at)
            energy_wh = net_w * (until - self._at) / 3600.0
            if energy_wh >= 0:
                self._import_wh += energy_wh
            else:
                self._export_wh -= energy_wh
            self._at = until
        return SimulatedRegisters(self._import_wh / 1000.0, self._export_wh / 1000.0, self.net_power_w(t))


@dataclass(frozen=True)
class ServedMeter:
    """Where the edge agent finds one simulated meter."""

    host: str
    port: int
    unit_id: int


class SimulatedSdm630s:
    """Serves simulated SDM630 meters, each on its own TCP port, from one background thread.

    Use as a context manager, or call :meth:`start` and :meth:`stop`::

        with SimulatedSdm630s([model], clock.now) as servers:
            meter = ModbusMeter(servers.meters[0].host, servers.meters[0].port, servers.meters[0].unit_id)
    """

    def __init__(
        self, models: list[Sdm630Model], clock: Callable[[], float], *, host: str = "127.0.0.1", unit_id: int = 1,
    ) -> None:
        self.models = models
        self.clock = clock
        self.host = host
        self.unit_id = unit_id
        self.meters: list[ServedMeter] = []
        self.reads = 0  # requests answered, all meters together
        self._loop = asyncio.new_event_loop()
        self._servers: list[ModbusTcpServer] = []
        self._thread: threading.Thread | None = None

    def __enter__(self) -> SimulatedSdm630s:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self, timeout_s: float = 10.0) -> list[ServedMeter]:
        """Start every meter's server; their addresses, in the order of the models."""
        if self._thread is not None:
            raise RuntimeError("the simulated meters are already running")
        self._thread = threading.Thread(target=self._loop.run_forever, name="sdm630-simulator", daemon=True)
        self._thread.start()
        try:
            self.meters = asyncio.run_coroutine_threadsafe(self._start_all(), self._loop).result(timeout_s)
        except BaseException:
            self.stop()
            raise
        return self.meters

    def stop(self, timeout_s: float = 10.0) -> None:
        """Close every server and end the thread; safe to call twice."""
        if self._thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._stop_all(), self._loop).result(timeout_s)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout_s)
            self._thread = None
            self._loop.close()

    async def _start_all(self) -> list[ServedMeter]:
        served = []
        for model in self.models:
            server = ModbusTcpServer(self._device(model), address=(self.host, 0))  # the OS picks a free port
            self._servers.append(server)
            await server.serve_forever(background=True)
            listener = server.transport
            if not isinstance(listener, asyncio.Server) or not listener.sockets:
                raise DriverError("the simulated meter's server is not listening")
            port = int(listener.sockets[0].getsockname()[1])
            served.append(ServedMeter(self.host, port, self.unit_id))
            log.debug("simulated SDM630 on %s:%d unit %d", self.host, port, self.unit_id)
        return served

    async def _stop_all(self) -> None:
        for server in self._servers:
            await server.shutdown()  # type: ignore[no-untyped-call]
        self._servers.clear()

    def _device(self, model: Sdm630Model) -> SimDevice:
        async def answer(function_code: int, start_address: int, address: int, count: int, registers: list[int],
                         set_values: list[int] | list[bool] | None) -> ExcCodes | None:
            if function_code != READ_INPUT_REGISTERS:
                return None
            self.reads += 1
            now = model.at(self.clock())
            for reg, value in ((REG_TOTAL_POWER_W, now.power_w), (REG_IMPORT_KWH, now.import_kwh),
                               (REG_EXPORT_KWH, now.export_kwh)):
                offset = reg - start_address
                registers[offset:offset + 2] = float32_to_registers(value)
            return None

        def block() -> list[SimData]:
            return [SimData(0, count=_REGISTER_COUNT, values=0, datatype=DataType.REGISTERS)]

        bits = [SimData(0, values=False, datatype=DataType.BITS)]
        # (coils, discrete inputs, holding registers, input registers): the meter's values are input registers
        return SimDevice(id=self.unit_id, simdata=(bits, bits, block(), block()), action=answer)
