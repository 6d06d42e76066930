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
    # every ISP with an award is metered: 17:00-19:00, eight ISPs
    assert metered["readings"] == metered["stored"] == 60 * 8 and metered["roots"] == 8 and metered["proof_verified"]
    # a few meters are SDM630s on Modbus TCP, read by the edge agent itself: their readings arrive like the others
    assert metered["modbus_meters"] == 3 and metered["modbus_readings"] == metered["modbus_stored"] == 3 * 8
    assert metered["fault_injected"]  # one stored reading corrupted before anchoring, for the dispute
    settled = summary["settlement"]
    assert settled["offers"] > 0 and settled["lines"] == cleared["awards"]  # every awarded offer, every award-ISP
    # everyone delivered as planned: most in full, a few short (penalised), one over (paid for its award only)
    assert settled["full"] + settled["short"] + settled["over"] == settled["offers"]
    assert settled["short"] >= 2 and settled["over"] == 1 and settled["full"] > settled["short"]
    dispute = settled["dispute"]
    assert dispute["upheld"] and dispute["faults"] == 1
    assert dispute["penalty_before"] > dispute["penalty_after"] == 0 and dispute["paid_after"] > dispute["paid_before"]
    # the demo's own check (each line against the rules, each balance change against the records) and the auditor
    assert settled["checked"] and not settled["problems"]
    assert settled["audit"] == "MATCH" and not settled["audit_differences"] and settled["audit_agrees"]
    assert settled["bond_draws"] > 0 and settled["debts"] == 0 and settled["prosumers"] == settled["claims"] > 0
    assert set(settled["paid"]) == {"DSO north", "DSO south", "TSO"} and all(v > 0 for v in settled["paid"].values())
    assert settled["claims"] + settled["refunds"] == orders["escrow"]  # escrows go to sellers or back to buyers
    assert not (tmp_path / "demo").exists()  # nothing kept unless --keep
