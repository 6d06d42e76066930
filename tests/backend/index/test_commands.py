"""`flexledger index run | status | rebuild` as a user runs them, on a settled day's chain."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from settlement_cli_helpers import cli, point_cli_at
from settlement_world import SettlementWorld

pytestmark = pytest.mark.slow


def test_run_status_and_rebuild(day: SettlementWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    point_cli_at(day, tmp_path, monkeypatch)
    monkeypatch.setenv("FLEXLEDGER_DATABASE_URL", f"sqlite:///{tmp_path / 'index.db'}")
    head = day.conn.w3.eth.block_number

    before = cli("index", "status", "--json")
    assert before.exit_code == 0, before.output
    assert json.loads(before.output)["indexed"] is None

    ran = cli("index", "run", "--once", "--span", "10")
    assert ran.exit_code == 0, ran.output
    assert f"indexed block {head}, lag 0 blocks" in ran.output

    status = json.loads(cli("index", "status", "--json").output)
    assert status["indexed"] == status["head"] == head and status["lag"] == 0
    assert status["rows"]["offers"] == 2 and status["rows"]["events"] > 30

    rebuilt = json.loads(cli("index", "rebuild", "--json").output)
    assert rebuilt["rows"] == status["rows"]


def test_a_bad_confirmation_depth_is_refused(day: SettlementWorld, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    point_cli_at(day, tmp_path, monkeypatch)
    result = cli("index", "status", "--confirmations", "soon")
    assert result.exit_code != 0
    assert "finalized" in result.output
