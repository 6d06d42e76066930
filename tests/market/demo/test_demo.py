"""`flexledger demo` runs end to end on its own throwaway chain."""

from __future__ import annotations

from pathlib import Path

import pytest

from flexledger.chain.node import free_port
from flexledger.config import load_settings
from flexledger.demo.run import run_demo


@pytest.mark.slow
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
    # 3 households pooled in aggregator 1's portfolio: 57 prosumer offers, 2 newer ones, 2 bad ones, the portfolio's
    assert orders["offers_signed"] == 57 + 2 + 2 + 1 and orders["skipped"] == 2
    assert orders["accepted"] == 60 and orders["replaced"] == 2 and orders["offers_in_force"] == 58
    pooled = orders["portfolio"]
    assert pooled["accepted"] and pooled["aggregator"] == "aggregator 1" and len(pooled["members"]) == 3
    assert orders["requests"] == 5 and orders["escrow"] > 0
    cleared = summary["clearing"]
    assert cleared["requests"] == 5 and cleared["offers"] == 58 and cleared["feasible"]
    assert cleared["status"] in ("optimal", "empty") and cleared["gap"] == 0
    assert cleared["result_id"] == 1 and cleared["audit"] == "MATCH"  # committed, final, matched by the auditor
    assert cleared["chain_welfare"] in (cleared["welfare"], cleared["welfare"] - 1)  # each stage rounds down on chain
    metered = summary["metering"]
    # every ISP with an award is metered: 17:00-19:00, eight ISPs
    assert metered["readings"] == metered["stored"] == 60 * 8 and metered["roots"] == 8 and metered["proof_verified"]
    # a few meters are SDM630s on Modbus TCP, read by the edge agent itself: their readings arrive like the others
    assert metered["modbus_meters"] == 3 and metered["modbus_readings"] == metered["modbus_stored"] == 3 * 8
    # the final result's asset awards are orders signed by the dispatcher MarketRegistry names; the SDM630
    # gateways check theirs on chain and accept them
    dispatched = summary["dispatch"]
    assert dispatched["orders"] >= dispatched["assets"] > 0 and dispatched["portfolios"] == 1
    assert metered["orders_dispatched"] > 0 and metered["order_answers"] == {"accepted": metered["orders_dispatched"]}
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
    # what the buyers paid net of the penalties they received (a buyer whose sellers fell short may receive more
    # than it paid): the sellers' claims less the penalties drawn from bonds
    assert set(settled["paid"]) == {"DSO north", "DSO south", "TSO"}
    assert sum(settled["paid"].values()) == settled["claims"] - settled["bond_draws"] > 0
    assert settled["claims"] + settled["refunds"] == orders["escrow"]  # escrows go to sellers or back to buyers
    # the portfolio: settled in the batch from its members' meters summed, its aggregator the seller, paid in full
    # (one member fell short, the others made up for it), and the aggregator withdrew the claim
    portfolio = settled["portfolio"]
    assert portfolio["id"] == pooled["id"] and portfolio["members"] == pooled["members"]
    assert portfolio["seller_is_aggregator"] and portfolio["as_rules_say"]
    assert sum(portfolio["member_delivered_wh"].values()) == portfolio["delivered_wh"] >= portfolio["awarded_wh"] > 0
    assert min(portfolio["member_delivered_wh"].values()) == portfolio["member_delivered_wh"][portfolio["overriding"]]
    assert portfolio["penalty"] == 0 and portfolio["paid"] == portfolio["full_payment"] > 0
    assert portfolio["claimed"] == portfolio["withdrawn"] == portfolio["paid"]
    # issue 16's attacks, staged on the demo's chain against the real contracts: each refused, by name
    attacks = summary["attacks"]
    assert len(attacks["refused"]) == 4 and all(line.startswith("refused: ") for line in attacks["refused"])
    for name in ("ClearingDayBegun", "ClearingOffersOverlap", "MeterEquivocated", "OrderBookSellerNotBonded"):
        assert any(f"({name}" in line for line in attacks["refused"]), (name, attacks["refused"])
    # the equivocating seller's penalty beyond its bond became a debt, repaid by its aggregator, collected
    assert attacks["debt"] > 0 and attacks["repaid"] == attacks["collected"] == attacks["debt"]
    # a standard baseline on the attack day: the invented day challenged, unanswered, upheld, the oracle slashed
    # once, the offer re-settled on the correction; the honest baseline's challenge answered by the oracle itself
    std = attacks["baselines"]
    assert std["challenger"] == "auditor" and std["baseline_now"] < std["baseline_was"]
    assert std["slashed"] == std["stake"] > 0 and std["faults"] == 1 and std["stake_left"] == 0
    assert std["challenger_gained"] == std["slashed"] + std["bond"]
    assert std["after"]["payment"] < std["before"]["payment"] and std["after"]["penalty"] > std["before"]["penalty"] == 0
    answered = std["answered"]
    assert answered["answered"] and answered["oracle_gained"] == answered["bond"] > 0
    assert answered["stake_after"] == std["stake"]
    # the attack day's audit recomputed the standard baseline from what the oracle serves and followed the uphold
    assert attacks["audit"] == "MATCH" and not attacks["audit_differences"]
    # the backend's step (installed through flexledger.demo_steps): the whole chain indexed, a rebuild equal
    index = summary["index"]
    assert index["events"] > 0 and index["rows"]["offers"] > 0 and index["rebuilt_equal"] and index["lag"] == 0
    assert not (tmp_path / "demo").exists()  # nothing kept unless --keep
