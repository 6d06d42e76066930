"""`flexledger demo` runs end to end on its own throwaway chain."""

from __future__ import annotations

from pathlib import Path

from flexledger.chain.node import free_port
from flexledger.config import load_settings
from flexledger.demo import run_demo


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    summary = run_demo(load_settings(data_dir=tmp_path, node_port=free_port()), quiet=True, asset_count=60)
    assert set(summary["contracts"]) >= {"RoleRegistry", "DIDRegistry"}
    ident = summary["identity"]
    assert ident["roles"]["TSO"] == 1 and ident["roles"]["DSO"] == 2 and ident["roles"]["AGGREGATOR"] == 3
    assert ident["roles"]["METER"] == ident["meters"] > 0
    assert ident["verified"] == ident["dids"]
    grid = summary["grid"]
    assert (grid["zones"], grid["substations"], grid["feeders"]) == (39, 6, 30)
    assert grid["yellow"] > 0 and grid["red"] > 0
    assert summary["assets"]["assets"] == summary["assets"]["mapped"] == 60
    orders = summary["orders"]
    assert orders["offers_signed"] == 60 + 3 + 2 and orders["skipped"] == 2  # 3 newer offers, 2 bad ones
    assert orders["accepted"] == 63 and orders["replaced"] == 3 and orders["offers_in_force"] == 60
    assert orders["requests"] == 5 and orders["escrow"] > 0
    cleared = summary["clearing"]
    assert cleared["requests"] == 5 and cleared["offers"] == 60 and cleared["feasible"]
    assert cleared["status"] in ("optimal", "empty") and cleared["gap"] == 0
    assert cleared["result_id"] == 1 and cleared["audit"] == "MATCH"  # committed, final, matched by the auditor
    assert cleared["chain_welfare"] in (cleared["welfare"], cleared["welfare"] - 1)  # each stage rounds down on chain
    metered = summary["metering"]
    assert metered["readings"] == metered["stored"] == 60 * 4 and metered["roots"] == 4 and metered["proof_verified"]
    # a few meters are SDM630s on Modbus TCP, read by the edge agent itself: their readings arrive like the others
    assert metered["modbus_meters"] == 3 and metered["modbus_readings"] == metered["modbus_stored"] == 3 * 4
    assert not (tmp_path / "demo").exists()  # nothing kept unless --keep
