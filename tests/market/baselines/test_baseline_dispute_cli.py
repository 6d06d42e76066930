"""`flexledger dispute-baseline` as a user runs it: the oracle anchored B's standard baseline on
1,600 Wh days its meter measured 1,200 (anchored). Anyone disputes it from the oracle's store
(the baseline's inputs and the anchored readings) until it is the rule's; each correction is
disputed in turn (its kept inputs rebuilt from the dispute that put it in force), the reading
dispute presents the corrected baseline by itself, and the auditor MATCHes the day. Errors are typed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from settlement_cli_helpers import cli, day_args, point_cli_at
from settlement_world import build_world

from flexledger.chain.connection import ChainConnection
from flexledger.chain.manifest import Manifest
from flexledger.chain.transactions import Signer
from flexledger.settlement.day import DisputeError


@pytest.mark.slow
def test_dispute_baseline_until_it_is_the_rules_then_a_reading_dispute_and_the_audit(
        conn: ChainConnection, manifest: Manifest, deployer: Signer, dev_signers: list[Signer], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    w = point_cli_at(build_world(conn, manifest, deployer, dev_signers, tmp_path, standard=True, claimed={1: 1_600}),
                     tmp_path, monkeypatch)
    w.settle_all()
    a_digest, b_digest = "0x" + w.digests[0].hex(), "0x" + w.digests[1].hex()
    args = ["--offer", b_digest, "--isp", str(w.hour), *day_args(w), "--json"]

    shown = []
    for expected in ((1_200 + 1_600 + 1_600) // 3, (1_200 + 1_200 + 1_600) // 3, 1_200):
        disputed = cli("dispute-baseline", *args)
        assert disputed.exit_code == 0, disputed.output
        shown.append(json.loads(disputed.output))
        assert shown[-1]["kind"] == "INPUT" and shown[-1]["baseline_now_wh"] == expected, shown[-1]
    assert [d["which"] for d in shown] == [0, 1, 2]
    assert [d["baseline_was_wh"] for d in shown] == [1_600, 1_466, 1_333]
    # a lower baseline, less delivered: B is paid less than on the oracle's wrong baseline
    assert shown[-1]["after"]["payment"] <= shown[0]["before"]["payment"]

    done = cli("dispute-baseline", *args)  # the rule's now: nothing left to show
    assert isinstance(done.exception, DisputeError) and "nothing in the oracle's store" in done.exception.message
    committed = cli("dispute-baseline", "--offer", a_digest, "--isp", str(w.hour), *day_args(w))  # A's is its own
    assert isinstance(committed.exception, DisputeError) and "standard baseline" in committed.exception.message
    bad = cli("dispute-baseline", "--offer", "0x12", "--isp", str(w.hour))
    assert bad.exit_code == 2 and "32-byte digest" in bad.output
    elsewhere = cli("dispute-baseline", "--offer", b_digest, "--isp", str(w.hour + 3_600), *day_args(w))
    assert isinstance(elsewhere.exception, DisputeError) and "not settled for the ISP" in elsewhere.exception.message

    # B's gateway signs a second reading: the reading dispute must present the corrected baseline
    # (value and inputs hash) for the contract to take it, and does so by itself
    assert w.keep_reading(1, 2, 200) == "conflicting"
    reading = cli("dispute", "--offer", b_digest, "--isp", str(w.hour), *day_args(w), "--json")
    assert reading.exit_code == 0, reading.output
    assert json.loads(reading.output)["equivocation"]

    audit = cli("audit", "settle", *day_args(w), "--json")
    assert audit.exit_code == 0, audit.output
    report = json.loads(audit.output)
    assert report["match"] and report["disputes"] == 4, report
