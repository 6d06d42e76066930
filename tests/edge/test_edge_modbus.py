"""The Modbus driver against a real pymodbus TCP server holding SDM630-like float32 registers."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from flexledger_edge.drivers import DriverError
from flexledger_edge.drivers.modbus import (
    REG_EXPORT_KWH,
    REG_IMPORT_KWH,
    REG_TOTAL_POWER_W,
    ModbusMeter,
    float32_to_registers,
    kwh_to_wh_floor,
)
from flexledger_edge.metering import IspEnergy, IspEnergyTracker

UNIT = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class FakeSdm630:
    """A pymodbus TCP server on a free port; ``values`` (register address -> float32) may change."""

    port: int
    values: dict[int, float] = field(default_factory=dict)
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    server: ModbusTcpServer | None = None

    async def _action(self, fc: int, start: int, address: int, count: int, current: list[int], set_values: object) -> None:
        for reg, value in self.values.items():
            offset = reg - start
            if 0 <= offset <= len(current) - 2:
                current[offset:offset + 2] = float32_to_registers(value)

    async def _serve(self, ready: threading.Event) -> None:
        registers = [SimData(0, count=0x60, values=0, datatype=DataType.REGISTERS)]
        bits = [SimData(0, values=False, datatype=DataType.BITS)]
        device = SimDevice(id=UNIT, simdata=(bits, bits, registers, registers), action=self._action)
        self.server = ModbusTcpServer(device, address=("127.0.0.1", self.port))
        await self.server.serve_forever(background=True)
        ready.set()
        await self.server.serving

    def start(self) -> threading.Thread:
        ready = threading.Event()
        thread = threading.Thread(target=self.loop.run_until_complete, args=(self._serve(ready),), daemon=True)
        thread.start()
        assert ready.wait(10), "the Modbus test server did not start"
        return thread

    def stop(self, thread: threading.Thread) -> None:
        assert self.server is not None
        asyncio.run_coroutine_threadsafe(self.server.shutdown(), self.loop).result(10)  # type: ignore[no-untyped-call]
        thread.join(10)


@pytest.fixture
def sdm630() -> Iterator[FakeSdm630]:
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    server = FakeSdm630(_free_port(), {REG_IMPORT_KWH: 1234.5, REG_EXPORT_KWH: 10.25, REG_TOTAL_POWER_W: 1500.0})
    thread = server.start()
    yield server
    server.stop(thread)


def test_reads_the_registers_as_whole_wh(sdm630: FakeSdm630) -> None:
    meter = ModbusMeter("127.0.0.1", sdm630.port, unit_id=UNIT, timeout_s=2)
    try:
        snap = meter.read(0)
        assert (snap.import_wh, snap.export_wh, snap.power_w) == (1_234_500, 10_250, 1500.0)
        sdm630.values[REG_IMPORT_KWH] = 1234.75
        assert meter.read(900).import_wh == 1_234_750
    finally:
        meter.close()


def test_per_isp_energy_and_a_counter_going_backwards(sdm630: FakeSdm630, caplog: pytest.LogCaptureFixture) -> None:
    meter = ModbusMeter("127.0.0.1", sdm630.port, unit_id=UNIT, timeout_s=2)
    tracker = IspEnergyTracker(900)
    try:
        assert tracker.at_boundary(900, meter.read(900)) is None
        sdm630.values[REG_IMPORT_KWH] = 1234.75
        sdm630.values[REG_EXPORT_KWH] = 10.5
        assert tracker.at_boundary(1800, meter.read(1800)) == IspEnergy(900, 250, 250)
        sdm630.values[REG_IMPORT_KWH] = 1200.0  # the meter's counter went backwards
        with caplog.at_level(logging.ERROR, logger="flexledger_edge.metering"):
            assert tracker.at_boundary(2700, meter.read(2700)) is None
        assert "went backwards" in caplog.text
        sdm630.values[REG_IMPORT_KWH] = 1200.125
        assert tracker.at_boundary(3600, meter.read(3600)) == IspEnergy(2700, 125, 0)
    finally:
        meter.close()


def test_impossible_values_and_wrong_unit_are_driver_errors(sdm630: FakeSdm630) -> None:
    meter = ModbusMeter("127.0.0.1", sdm630.port, unit_id=UNIT, timeout_s=2)
    try:
        sdm630.values[REG_EXPORT_KWH] = float("nan")
        with pytest.raises(DriverError, match="impossible"):
            meter.read(0)
        sdm630.values[REG_EXPORT_KWH] = -1.0
        with pytest.raises(DriverError, match="impossible"):
            meter.read(0)
    finally:
        meter.close()
    wrong_unit = ModbusMeter("127.0.0.1", sdm630.port, unit_id=UNIT + 1, timeout_s=1)
    try:
        with pytest.raises(DriverError):
            wrong_unit.read(0)
    finally:
        wrong_unit.close()


def test_unreachable_meter_is_a_driver_error() -> None:
    meter = ModbusMeter("127.0.0.1", _free_port(), timeout_s=0.5)
    with pytest.raises(DriverError, match="cannot connect"):
        meter.read(0)
    meter.close()


def test_kwh_to_wh_is_exact_and_rounds_down() -> None:
    assert kwh_to_wh_floor(0.0) == 0
    assert kwh_to_wh_floor(12.5) == 12_500
    assert kwh_to_wh_floor(1.0009765625) == 1000  # 1000.9765625 Wh
