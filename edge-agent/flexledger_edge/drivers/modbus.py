"""A Modbus TCP driver for an Eastron SDM630-like three-phase meter (pymodbus client).

Register map (Modbus *input* registers, function code 0x04; each value is an IEEE-754
float32 in two registers, big-endian: high word first, each word big-endian)::

    address  registers  quantity                              unit
    0x0034   2          total system power                    W    (positive = import)
    0x0048   2          total import active energy            kWh  (cumulative)
    0x004A   2          total export active energy            kWh  (cumulative)

Addresses are zero-based protocol addresses (the SDM630 manual's 30053 / 30073 / 30075).
The unit id (Modbus slave address) comes from the configuration.

The driver reports the cumulative registers converted to whole Wh, rounded down (the float32
value is taken exactly, multiplied by 1000 and floored); :mod:`flexledger_edge.metering`
turns the registers at two ISP boundaries into that ISP's energy. A float32 holds 24 bits of
mantissa, so above about 16,777 kWh its resolution is coarser than 1 Wh; flooring each
register (rather than each difference) keeps the sum of the ISPs equal to the register's
own increase, so nothing is lost or counted twice over time.
"""

from __future__ import annotations

import logging
import math
import struct
from fractions import Fraction

from pymodbus.client import ModbusTcpClient
from pymodbus.exceptions import ModbusException

from . import DriverError, RegisterSnapshot

log = logging.getLogger(__name__)

REG_TOTAL_POWER_W = 0x0034
REG_IMPORT_KWH = 0x0048
REG_EXPORT_KWH = 0x004A


def float32_from_registers(high: int, low: int) -> float:
    """Decode two big-endian 16-bit registers (high word first) into a float32."""
    value: float = struct.unpack(">f", struct.pack(">HH", high, low))[0]
    return value


def float32_to_registers(value: float) -> list[int]:
    """Encode a float32 into two big-endian registers (high word first); for simulators and tests."""
    high, low = struct.unpack(">HH", struct.pack(">f", value))
    return [high, low]


def kwh_to_wh_floor(kwh: float) -> int:
    """Whole Wh in a kWh register value, rounded down, computed exactly (no float error)."""
    if not math.isfinite(kwh) or kwh < 0:
        raise DriverError(f"energy register holds an impossible value: {kwh!r} kWh")
    return math.floor(Fraction(kwh) * 1000)


class ModbusMeter:
    """An SDM630-like meter on Modbus TCP; reconnects on the next read after a failure."""

    def __init__(self, host: str, port: int = 502, unit_id: int = 1, timeout_s: float = 3.0) -> None:
        self.host = host
        self.port = port
        self.unit_id = unit_id
        self._client = ModbusTcpClient(host, port=port, timeout=timeout_s, retries=1)

    def _read_floats(self, address: int, count: int) -> list[float]:
        try:
            response = self._client.read_input_registers(address, count=2 * count, device_id=self.unit_id)
        except ModbusException as exc:
            self._client.close()  # type: ignore[no-untyped-call]
            raise DriverError(f"Modbus read of {address:#06x} from {self.host}:{self.port} failed: {exc}") from exc
        if response.isError():
            raise DriverError(
                f"meter {self.host}:{self.port} unit {self.unit_id} refused reading {address:#06x}: {response}"
            )
        registers = list(response.registers)
        if len(registers) != 2 * count:
            raise DriverError(f"meter returned {len(registers)} registers at {address:#06x}, expected {2 * count}")
        return [float32_from_registers(registers[i], registers[i + 1]) for i in range(0, len(registers), 2)]

    def read(self, at: int) -> RegisterSnapshot:
        if not self._client.connected and not self._client.connect():  # type: ignore[no-untyped-call]
            raise DriverError(f"cannot connect to the Modbus meter at {self.host}:{self.port}")
        imported_kwh, exported_kwh = self._read_floats(REG_IMPORT_KWH, 2)
        (power_w,) = self._read_floats(REG_TOTAL_POWER_W, 1)
        snapshot = RegisterSnapshot(
            import_wh=kwh_to_wh_floor(imported_kwh),
            export_wh=kwh_to_wh_floor(exported_kwh),
            power_w=power_w if math.isfinite(power_w) else None,
        )
        log.debug("meter %s:%s at %d: %s", self.host, self.port, at, snapshot)
        return snapshot

    def close(self) -> None:
        self._client.close()  # type: ignore[no-untyped-call]
