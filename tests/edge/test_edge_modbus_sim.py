"""The simulated SDM630 (pymodbus servers) read by the agent's own Modbus driver: registers advance
with the profile, ISP energies match the simulated meter's, and the servers stop cleanly."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from flexledger_edge.agent import EdgeAgent
from flexledger_edge.config import load_config
from flexledger_edge.drivers import DriverError
from flexledger_edge.drivers.modbus import ModbusMeter
from flexledger_edge.drivers.modbus_sim import Sdm630Model, SimulatedSdm630s
from flexledger_edge.drivers.simulated import LoadProfile, SimulatedMeter
from flexledger_edge.metering import IspEnergyTracker
from flexledger_edge.reading import OracleDomain, SignedReading, verify

ISP = 900
START = 1_796_169_600 + 17 * 3600  # a 17:00 UTC boundary: PV still producing, evening load rising
PROFILES = [LoadProfile(400, 3000, seed=1), LoadProfile(600, 0, seed=2)]


class ManualClock:
    """Time that moves only when the test says so (and that the agent can wait on)."""

    def __init__(self, t: float) -> None:
        self.t = t

    def now(self) -> float:
        return self.t

    def wait_until(self, at: float, stop: threading.Event) -> bool:
        if stop.is_set():
            return False
        self.t = max(self.t, at)
        return True


@pytest.fixture(autouse=True)
def _quiet_pymodbus() -> None:
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)


def test_the_model_integrates_the_profile_isp_by_isp() -> None:
    model = Sdm630Model(PROFILES[0], ISP, start=START, import_kwh=1000.0, export_kwh=5.0)
    expected = SimulatedMeter(PROFILES[0], ISP)
    previous = model.at(START)
    assert (previous.import_kwh, previous.export_kwh) == (1000.0, 5.0)
    for q in range(8):
        half = model.at(START + q * ISP + ISP / 2)  # mid-ISP reads do not change what the ISP adds up to
        now = model.at(START + (q + 1) * ISP)
        imported, exported = expected.isp_energy_wh(START + q * ISP)
        assert (now.import_kwh - previous.import_kwh) * 1000 == pytest.approx(imported, abs=1e-6)
        assert (now.export_kwh - previous.export_kwh) * 1000 == pytest.approx(exported, abs=1e-6)
        assert previous.import_kwh <= half.import_kwh <= now.import_kwh
        previous = now
    with pytest.raises(DriverError, match="before"):
        model.at(START)


def test_the_driver_reads_each_simulated_meter_over_tcp() -> None:
    clock = ManualClock(START)
    models = [Sdm630Model(p, ISP, start=START, import_kwh=4321.0) for p in PROFILES]
    with SimulatedSdm630s(models, clock.now) as servers:
        assert len({m.port for m in servers.meters}) == 2
        drivers = [ModbusMeter(m.host, m.port, m.unit_id, timeout_s=2) for m in servers.meters]
        trackers = [IspEnergyTracker(ISP) for _ in drivers]
        try:
            for q in range(5):
                clock.t = START + q * ISP
                for n, (driver, tracker) in enumerate(zip(drivers, trackers, strict=True)):
                    energy = tracker.at_boundary(int(clock.t), driver.read(int(clock.t)))
                    if q == 0:
                        assert energy is None  # the first boundary sets the baseline
                        continue
                    assert energy is not None and energy.isp_start == clock.t - ISP
                    imported, exported = SimulatedMeter(PROFILES[n], ISP).isp_energy_wh(energy.isp_start)
                    # float32 registers near 4,321 kWh resolve about half a Wh; each register is floored
                    assert abs(energy.import_wh - imported) <= 1.5 and abs(energy.export_wh - exported) <= 1.5
            assert servers.reads == 5 * 2 * 2  # two requests per read: the energy pair, then the power
            drivers.append(ModbusMeter(servers.meters[0].host, servers.meters[0].port, unit_id=9, timeout_s=1))
            with pytest.raises(DriverError):  # an SDM630 answers its own unit id only
                drivers[-1].read(0)
        finally:
            for driver in drivers:
                driver.close()
        port = servers.meters[0].port
    with socket.socket() as probe:  # stopped means the port no longer listens
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_the_agent_reads_a_simulated_sdm630_through_its_modbus_configuration(
    write_config: Callable[..., Path], fake_broker: Any, domain: OracleDomain
) -> None:
    clock = ManualClock(START)
    with SimulatedSdm630s([Sdm630Model(PROFILES[1], ISP, start=START, import_kwh=250.0)], clock.now) as servers:
        where = servers.meters[0]
        config = load_config(write_config(driver={"kind": "modbus", "host": where.host, "port": where.port,
                                                  "unit_id": where.unit_id, "timeout_s": 2.0}))
        agent = EdgeAgent(config, clock, session_factory=fake_broker.connect)
        assert agent.run(isps=3, drain_s=5) == 3
    readings = [SignedReading.from_json(p) for t, p in fake_broker.received if t.startswith("flexledger/v1/readings/")]
    assert [r.reading.isp_start for r in readings] == [START, START + ISP, START + 2 * ISP]
    assert all(verify(r, domain) for r in readings)
    for r in readings:
        imported, _ = SimulatedMeter(PROFILES[1], ISP).isp_energy_wh(r.reading.isp_start)
        assert abs(r.reading.import_wh - imported) <= 1.5 and r.reading.export_wh == 0
