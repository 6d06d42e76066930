"""Cumulative registers become per-ISP energies; a counter going backwards gives no reading."""

from __future__ import annotations

import logging

import pytest

from flexledger_edge.drivers import RegisterSnapshot
from flexledger_edge.metering import IspEnergy, IspEnergyTracker


def test_differences_at_boundaries() -> None:
    tracker = IspEnergyTracker(900)
    assert tracker.at_boundary(900, RegisterSnapshot(1000, 50)) is None  # baseline
    assert tracker.at_boundary(1800, RegisterSnapshot(1250, 50)) == IspEnergy(900, 250, 0)
    assert tracker.at_boundary(2700, RegisterSnapshot(1250, 80)) == IspEnergy(1800, 0, 30)


def test_counter_backwards_is_logged_and_yields_nothing(caplog: pytest.LogCaptureFixture) -> None:
    tracker = IspEnergyTracker(900)
    tracker.at_boundary(900, RegisterSnapshot(1000, 50))
    with caplog.at_level(logging.ERROR, logger="flexledger_edge.metering"):
        assert tracker.at_boundary(1800, RegisterSnapshot(999, 60)) is None
    assert "went backwards" in caplog.text
    # The new value is the baseline: the next ISP is measured from it.
    assert tracker.at_boundary(2700, RegisterSnapshot(1010, 60)) == IspEnergy(1800, 11, 0)


def test_missed_boundary_yields_nothing(caplog: pytest.LogCaptureFixture) -> None:
    tracker = IspEnergyTracker(900)
    tracker.at_boundary(900, RegisterSnapshot(0, 0))
    with caplog.at_level(logging.WARNING):
        assert tracker.at_boundary(2700, RegisterSnapshot(500, 0)) is None
    assert "missed 1" in caplog.text
    assert tracker.at_boundary(3600, RegisterSnapshot(600, 0)) == IspEnergy(2700, 100, 0)


def test_boundaries_must_be_aligned() -> None:
    with pytest.raises(ValueError):
        IspEnergyTracker(900).at_boundary(901, RegisterSnapshot(0, 0))
