"""The simulated meter is deterministic and follows its daily profile."""

from __future__ import annotations

from flexledger_edge.drivers.simulated import LoadProfile, SimulatedMeter
from flexledger_edge.metering import IspEnergyTracker

DAY = 1_700_006_400 - 1_700_006_400 % 86_400  # a UTC midnight
ISP = 900


def _day_of_energies(meter: SimulatedMeter, start: int = DAY) -> list[tuple[int, int]]:
    tracker = IspEnergyTracker(ISP)
    out = []
    for t in range(start, start + 86_400 + ISP, ISP):
        energy = tracker.at_boundary(t, meter.read(t))
        if energy is not None:
            out.append((energy.import_wh, energy.export_wh))
    return out


def test_same_seed_same_readings_different_seed_different() -> None:
    profile = LoadProfile(base_load_w=500, pv_peak_w=4000, seed=11)
    a = _day_of_energies(SimulatedMeter(profile, ISP))
    b = _day_of_energies(SimulatedMeter(profile, ISP))
    c = _day_of_energies(SimulatedMeter(LoadProfile(500, 4000, seed=12), ISP))
    assert len(a) == 96
    assert a == b
    assert a != c


def test_energy_depends_on_the_isp_not_on_the_order_asked() -> None:
    profile = LoadProfile(500, 4000, 3)
    meter = SimulatedMeter(profile, ISP)
    forwards = [meter.isp_energy_wh(DAY + i * ISP) for i in range(96)]
    backwards = [meter.isp_energy_wh(DAY + i * ISP) for i in reversed(range(96))][::-1]
    assert forwards == backwards


def test_daily_shape_night_import_noon_export() -> None:
    energies = _day_of_energies(SimulatedMeter(LoadProfile(base_load_w=400, pv_peak_w=5000, seed=1), ISP))
    night = energies[2 * 4]  # 02:00
    noon = energies[12 * 4]  # 12:00
    assert night[0] > 0 and night[1] == 0
    assert noon[1] > 0 and noon[0] == 0
    assert sum(imp for imp, _ in energies) > 400 * 24 * 0.5  # roughly the base load over a day


def test_registers_only_grow_and_device_power_counts() -> None:
    profile = LoadProfile(400, 0, 5)
    plain = SimulatedMeter(profile, ISP)
    with_device = SimulatedMeter(profile, ISP, extra_power_w=lambda isp: 2000.0 if isp == DAY + ISP else 0.0)
    last = plain.read(DAY)
    with_device.read(DAY)
    for t in range(DAY + ISP, DAY + 8 * ISP, ISP):
        snap = plain.read(t)
        assert snap.import_wh >= last.import_wh and snap.export_wh >= last.export_wh
        last = snap
    end = DAY + 8 * ISP
    assert with_device.read(end).import_wh - plain.read(end).import_wh in (499, 500, 501)  # 2 kW for 15 min
