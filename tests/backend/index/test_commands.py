"""`flexledger index run | status | rebuild` as a user runs them, on a settled day's chain."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from index_tables import dump, rebuilt
from settlement_cli_helpers import cli, point_cli_at
from settlement_world import SettlementWorld

from flexledger.database.engine import make_engine, migrate
from flexledger.index.indexer import Indexer

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


def test_a_run_killed_by_sigkill_resumes_at_its_checkpoint(
    day: SettlementWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The process killed outright at some point of a run of one-block spans (in a transaction or
    between two): the next run resumes at the checkpoint and the tables equal a rebuild."""
    point_cli_at(day, tmp_path, monkeypatch)
    url = f"sqlite:///{tmp_path / 'index.db'}"
    monkeypatch.setenv("FLEXLEDGER_DATABASE_URL", url)
    for _ in range(300):  # blocks enough that the run is still going when it is killed
        day.conn.mine()
    head = day.conn.w3.eth.block_number
    engine = make_engine(url)
    migrate(engine)
    command = [str(Path(sys.executable).parent / "flexledger"), "index", "run", "--once", "--span", "1"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    indexer = Indexer(engine, day.conn, day.manifest)
    deadline = time.monotonic() + 60
    while (indexer.checkpoint() or (0, ""))[0] < head - 280:  # well into the run
        assert process.poll() is None and time.monotonic() < deadline, process.stderr and process.stderr.read()
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = indexer.checkpoint()
    assert killed_at is not None and killed_at[0] < head
    Indexer(engine, day.conn, day.manifest).run()
    assert indexer.checkpoint() == (head, day.conn.w3.eth.get_block(head)["hash"].to_0x_hex())
    fresh = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    migrate(fresh)
    assert dump(engine) == rebuilt(fresh, day.conn, day.manifest)
