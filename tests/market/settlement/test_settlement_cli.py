"""`flexledger baseline commit`, `settle`, `dispute`, `claim` and `audit settle` / `audit day` as
a user runs them (typer's CliRunner) on a day ready to settle, with clear errors for a claim
before finality, a dispute with nothing to dispute and a baseline that is not the committed one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from settlement_cli_helpers import baselines_folder, cli, day_args, keep_baselines, point_cli_at
from settlement_world import SettlementWorld, build_world

from flexledger.baselines.files import BaselineFile, BaselineFileError, new_baseline, save_baseline
from flexledger.chain.bindings import (
    AssetRegistryClient,
    DeliveryMeterClient,
    MeterOracleClient,
    ReadingDisputesClient,
)
from flexledger.chain.connection import ChainConnection
from flexledger.chain.errors import ChainError
from flexledger.chain.manifest import Manifest
from flexledger.chain.transactions import Signer
from flexledger.identity import keys
from flexledger.rules.baselines import baseline_commitment
from flexledger.rules.lights import Direction
from flexledger.rules.orders import Product
from flexledger.rules.settlement import AwardIsp, settle_award_isp
from flexledger.settlement.day import (
    BaselineMismatchError,
    ClaimNotDueError,
    DisputeError,
    SettlementNotReadyError,
)
from flexledger.settlement.records import settled_events
from flexledger.times import iso


@pytest.fixture
def world(conn: ChainConnection, manifest: Manifest, deployer: Signer, dev_signers: list[Signer], tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> SettlementWorld:
    """The day ready to settle, the CLI pointed at its chain and oracle store."""
    return point_cli_at(build_world(conn, manifest, deployer, dev_signers, tmp_path), tmp_path, monkeypatch)


def test_baseline_commit_writes_the_file_and_prints_its_commitment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEXLEDGER_DATA_DIR", str(tmp_path / "data"))
    result = cli("baseline", "commit", "--asset", "7", "--start", "1764151200", "--values", "1500, 1500", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    stored = json.loads(Path(out["file"]).read_text())
    assert Path(out["file"]).parent == tmp_path / "data" / "baselines"
    salt = bytes.fromhex(stored["salt"][2:])
    assert stored["netWh"] == [1500, 1500] and len(salt) == 32
    assert out["commitment"] == "0x" + baseline_commitment(7, 1764151200, [1500, 1500], salt).hex()
    again = cli("baseline", "commit", "--asset", "7", "--start", "1764151200", "--values", "1")
    assert isinstance(again.exception, BaselineFileError)  # never overwrites a salt an offer may commit to
    assert "--baseline-hash" in cli("offer", "--help").output


@pytest.mark.slow
def test_settle_dispute_claim_and_audit_a_day(world: SettlementWorld) -> None:
    w = world
    keep_baselines(w)
    settled = cli("settle", *day_args(w), "--json")
    assert settled.exit_code == 0, settled.output
    out = json.loads(settled.output)
    assert out["counts"] == {"settled": 2} and len(out["lines"]) == 2
    line_of = {line["offer"]: line for line in out["lines"]}
    for offer, baseline, net, digest in zip(w.offers, w.baselines, w.measured, w.digests, strict=True):
        line = line_of["0x" + digest.hex()]
        rules = settle_award_isp(AwardIsp(offer.power_w, offer.price, 20_000, Product.ACTIVATION, Direction.UP,
                                          baseline.net_wh[0], net), w.params, 0)
        assert (line["payment"], line["penalty"]) == (rules.payment, rules.penalty)
        assert line["delivered_wh"] == rules.delivered_ws // 3600 and line["awarded_wh"] == rules.awarded_ws // 3600
    table = cli("settle", *day_args(w))  # again: nothing sent, the table shows what was settled
    assert table.exit_code == 0 and "settled earlier" in table.output and "penalty" in table.output

    # before finality: nothing to claim, and the error says until when
    early = cli("claim", *day_args(w))
    assert isinstance(early.exception, ClaimNotDueError)
    assert "dispute window" in early.exception.message and early.exception.hint

    # B's gateway signs a second reading for the hour (issue 17, finding 1: the meter's key is on the
    # seller's gateway): the dispute proves equivocation, B's delivery is void, the oracle unmarked
    assert w.keep_reading(1, 2, 200) == "conflicting"  # 1,000 Wh saved, B's whole award, if it counted
    b_digest, a_digest = "0x" + w.digests[1].hex(), "0x" + w.digests[0].hex()
    disputed = cli("dispute", "--offer", b_digest, "--isp", str(w.hour), "--json", as_=w.owner)
    assert disputed.exit_code == 0, disputed.output
    d = json.loads(disputed.output)
    assert d["equivocation"] and d["signed"]["importWh"] == 200
    assert d["after"]["payment"] == d["before"]["payment"] == 0 and d["after"]["penalty"] == d["before"]["penalty"] > 0
    disputes = ReadingDisputesClient(w.conn, w.manifest.address("ReadingDisputes"))
    assert disputes.faults_of(d["oracle"]) == 0 and disputes.equivocations_of(w.meters[1].address) == 1
    agrees = cli("dispute", "--offer", a_digest, "--isp", str(w.hour), *day_args(w))
    assert isinstance(agrees.exception, DisputeError) and "agrees" in agrees.exception.message
    twice = cli("dispute", "--offer", b_digest, "--isp", str(w.hour))
    assert isinstance(twice.exception, DisputeError) and "already corrected" in twice.exception.message

    # after the dispute window: anyone makes them final; the seller withdraws its claims
    w.pass_time(w.params.dispute_window_seconds + 1)
    finalised = cli("claim", *day_args(w), "--json")
    assert finalised.exit_code == 0, finalised.output
    assert len(json.loads(finalised.output)["finalised"]) == 2
    owner = cli("claim", "--json", as_=w.owner)
    assert owner.exit_code == 0, owner.output
    claims = sum(ln.claim for r in _records(w) for ln in r)
    assert json.loads(owner.output)["withdrawn"] == claims > 0
    # after the day's settlement window: the buyer's refund and the penalty drawn from the bond
    w.conn.set_next_block_timestamp(w.day + 86_400 + w.params.dispute_window_seconds + 1)
    w.conn.mine()
    buyer = cli("claim", *day_args(w), as_=w.dso.account)
    assert buyer.exit_code == 0, buyer.output
    assert "refunded: request" in buyer.output and "withdrawn:" in buyer.output
    again = cli("claim", *day_args(w), as_=w.dso.account)  # everything claimed: said so, not "settle first"
    assert isinstance(again.exception, ClaimNotDueError) and "settlements are final" in again.exception.message

    audit = cli("audit", "settle", *day_args(w), "--json")
    assert audit.exit_code == 0, audit.output
    report = json.loads(audit.output)
    assert report["match"] and report["disputes"] == 1 and report["final"] == 2
    assert report["parties"][w.owner.address]["rules"]["withdrawn"] == claims
    whole = cli("audit", "day", iso(w.day)[:10], "--market", str(w.market))
    assert whole.exit_code == 0, whole.output
    assert whole.output.rstrip().endswith("MATCH") and "settlement: MATCH" in whole.output


@pytest.mark.slow
def test_an_aggregators_portfolio_is_settled_as_its_members_summed(
        conn: ChainConnection, manifest: Manifest, deployer: Signer, dev_signers: list[Signer], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A portfolio of A and B: delivered = its 2,700 Wh baseline - (A's 250 + B's 1,200) measured;
    the aggregator is paid; one member's reading disputed moves only its share; a member that left
    after the gate closure still counts for the day; the auditor agrees to the base unit."""
    w = point_cli_at(build_world(conn, manifest, deployer, dev_signers, tmp_path, portfolio=True), tmp_path, monkeypatch)
    registry = AssetRegistryClient(w.conn, w.manifest.address("AssetRegistry"))
    registry.remove_from_portfolio(w.assets[1], sender=keys.signer(keys.dev_accounts()[7], w.conn))  # B's owner leaves
    assert registry.portfolio(w.portfolio).members == [w.assets[0]]
    assert DeliveryMeterClient(w.conn, w.manifest.address("DeliveryMeter")).members(w.market, w.portfolio, w.hour) == w.assets
    keep_baselines(w)
    settled = cli("settle", *day_args(w), "--json")
    assert settled.exit_code == 0, settled.output
    (line,) = json.loads(settled.output)["lines"]
    offer = w.offers[0]
    rules = settle_award_isp(AwardIsp(9_000, offer.price, 20_000, Product.ACTIVATION, Direction.UP, 2_700, 250 + 1_200),
                             w.params, 0)
    assert (line["payment"], line["penalty"], line["delivered_wh"]) == (rules.payment, rules.penalty, 1_250)
    assert settled_events(w.settlement)[-1].record.seller == w.owner.address  # the aggregator

    # B's meter corrects its reading to 700 Wh: the dispute names B; A's reading stands
    assert w.keep_reading(1, 2, 700) == "conflicting"
    disputed = cli("dispute", "--offer", "0x" + w.digests[0].hex(), "--isp", str(w.hour), "--json")
    assert disputed.exit_code == 0, disputed.output
    d = json.loads(disputed.output)
    assert d["asset"] == w.assets[1] and d["signed"]["importWh"] == 700
    corrected = settle_award_isp(AwardIsp(9_000, offer.price, 20_000, Product.ACTIVATION, Direction.UP, 2_700, 250 + 700),
                                 w.params, 0)
    assert d["equivocation"] and corrected.payment > rules.payment  # what an upheld correction would have paid
    void = settle_award_isp(AwardIsp(9_000, offer.price, 20_000, Product.ACTIVATION, Direction.UP, 2_700, 2_700),
                            w.params, 0)
    assert (d["after"]["payment"], d["after"]["penalty"]) == (void.payment, void.penalty)  # B's meter signed twice
    assert ReadingDisputesClient(w.conn, w.manifest.address("ReadingDisputes")).faults_of(d["oracle"]) == 0
    not_member = cli("dispute", "--offer", "0x" + w.digests[0].hex(), "--isp", str(w.hour), "--member", "999")
    assert isinstance(not_member.exception, DisputeError) and "not among the members" in not_member.exception.message

    w.pass_time(w.params.dispute_window_seconds + 1)
    assert cli("claim", *day_args(w)).exit_code == 0
    assert sum(ln.claim for r in _records(w) for ln in r) == 0  # the ISP is void: nothing to withdraw
    w.conn.set_next_block_timestamp(w.day + 86_400 + w.params.dispute_window_seconds + 1)
    w.conn.mine()
    assert cli("claim", *day_args(w), as_=w.dso.account).exit_code == 0
    audit = cli("audit", "settle", *day_args(w), "--json")
    assert audit.exit_code == 0, audit.output
    report = json.loads(audit.output)
    assert report["match"] and report["disputes"] == 1 and report["final"] == 1
    assert report["parties"][w.owner.address]["role"] == "seller"
    # the clearing re-run leaves out the owner's own offers for A and B, made before they joined: MATCH
    assert len(w.loaded.book.offers) == 3 and len(w.loaded.clearing.offers) == 1
    whole = cli("audit", "day", iso(w.day)[:10], "--market", str(w.market))
    assert whole.exit_code == 0, whole.output
    assert whole.output.rstrip().endswith("MATCH")


def test_a_portfolio_naming_the_standard_baseline_settles_against_its_members_summed(
        conn: ChainConnection, manifest: Manifest, deployer: Signer, dev_signers: list[Signer], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    w = point_cli_at(build_world(conn, manifest, deployer, dev_signers, tmp_path, portfolio=True, standard=True),
                     tmp_path, monkeypatch)
    settled = cli("settle", *day_args(w), "--json")  # no baseline file: the oracle's anchored values, summed
    assert settled.exit_code == 0, settled.output
    (line,) = json.loads(settled.output)["lines"]
    rules = settle_award_isp(AwardIsp(9_000, w.offers[0].price, 20_000, Product.ACTIVATION, Direction.UP, 1_500 + 1_200,
                                      250 + 1_200), w.params, 0)
    assert (line["payment"], line["penalty"], line["delivered_wh"]) == (rules.payment, rules.penalty, 1_250)
    audit = cli("audit", "settle", *day_args(w), "--json")
    assert audit.exit_code == 0, audit.output
    assert json.loads(audit.output)["offers_settled"] == 1


def test_baseline_commit_for_a_portfolio(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEXLEDGER_DATA_DIR", str(tmp_path / "data"))
    result = cli("baseline", "commit", "--portfolio", "3", "--start", "1764151200", "--values", "2700", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert Path(out["file"]).name == "portfolio-3-1764151200.json" and (out["asset"], out["portfolio"]) == (0, 3)
    salt = bytes.fromhex(out["salt"][2:])
    assert out["commitment"] == "0x" + baseline_commitment(0, 1764151200, [2700], salt).hex()  # the commitment names asset 0
    both = cli("baseline", "commit", "--asset", "7", "--portfolio", "3", "--start", "1764151200", "--values", "1")
    assert both.exit_code != 0 and "exactly one of --asset and --portfolio" in both.output


def test_a_staked_oracle_pays_whoever_proves_its_reading_wrong(
    conn: ChainConnection, manifest: Manifest, deployer: Signer, dev_signers: list[Signer], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # meter B signed 700 Wh; the oracle's store was corrupted to 1,200 before anchoring
    w = point_cli_at(build_world(conn, manifest, deployer, dev_signers, tmp_path, measured=(250, 700),
                                 misread={1: 1_200}), tmp_path, monkeypatch)
    oracle_account = dev_signers[5]  # the world's oracle, which anchored the hour
    w.token.mint(oracle_account.address, 8_000, sender=deployer)
    required = cli("oracle", "require-stake", "--market", str(w.market), "--amount", "5000", "--json")
    assert required.exit_code == 0, required.output  # the CLI's dev key is the market authority here
    staked = cli("oracle", "stake", "--market", str(w.market), "--amount", "8000", "--json", as_=oracle_account.account)
    assert staked.exit_code == 0, staked.output
    assert json.loads(staked.output) == {"market": w.market, "oracle": oracle_account.address, "staked": 8_000,
                                         "required": 5_000}

    keep_baselines(w)
    assert cli("settle", *day_args(w)).exit_code == 0
    assert w.keep_reading(1, 2, 700) == "conflicting"  # meter B's reading, signed again: the anchored one is not its word
    before = w.token.balance_of(deployer.address)
    disputed = cli("dispute", "--offer", "0x" + w.digests[1].hex(), "--isp", str(w.hour), "--json")
    assert disputed.exit_code == 0, disputed.output
    assert w.token.balance_of(deployer.address) - before == 5_000  # the disputer is paid the required stake
    oracle = MeterOracleClient(conn, manifest.address("MeterOracle"))
    assert oracle.stake_of(w.market, oracle_account.address).amount == 3_000

    leaving = cli("oracle", "unstake", "--market", str(w.market), "--json", as_=oracle_account.account)
    assert leaving.exit_code == 0 and json.loads(leaving.output)["state"] == "leaving"
    unlocks = json.loads(leaving.output)["unlocks_at"]
    w.conn.set_next_block_timestamp(unlocks)
    w.conn.mine()
    gone = cli("oracle", "unstake", "--market", str(w.market), "--json", as_=oracle_account.account)
    assert gone.exit_code == 0 and json.loads(gone.output)["state"] == "withdrawn"
    assert w.token.balance_of(oracle_account.address) == 3_000
    audit = cli("audit", "settle", *day_args(w), "--json")  # the auditor checks the slash against the stake rule
    assert audit.exit_code == 0 and json.loads(audit.output)["match"], audit.output
    monkeypatch.setattr(MeterOracleClient, "required_stake", lambda *_a, **_k: 6_000)  # a rule the slash broke
    wrong = cli("audit", "settle", *day_args(w), "--json")
    assert wrong.exit_code == 1 and any("slashed" in d for d in json.loads(wrong.output)["differences"])


def _records(w: SettlementWorld) -> list[list[object]]:
    from flexledger.settlement.records import in_force, settled_events

    return [list(e.record.lines) for e in in_force(settled_events(w.settlement, result_id=w.result_id)).values()]


def test_a_baseline_that_is_not_the_committed_one_is_refused(world: SettlementWorld) -> None:
    w = world
    other = new_baseline(w.offers[1].asset, w.hour, [999])  # a baseline of its own, not the offer's
    save_baseline(other, baselines_folder())
    refused = cli("settle", *day_args(w))
    assert isinstance(refused.exception, BaselineMismatchError)
    assert f"asset {w.offers[1].asset}" in refused.exception.message and refused.exception.hint
    assert not w.settlement.events("OfferSettled")  # checked before any transaction

    path = baselines_folder() / "edited.json"  # the right commitment, edited values
    other_path = next(baselines_folder().glob("asset-*.json"))
    other_path.unlink()
    b = w.baselines[1]
    path.write_text(json.dumps({"asset": w.offers[1].asset, "start": w.hour, "netWh": [b.net_wh[0] + 100],
                                "salt": "0x" + b.salt.hex(), "commitment": "0x" + w.offers[1].baseline.hex()}))
    edited = cli("settle", *day_args(w))
    assert isinstance(edited.exception, BaselineFileError) and "edited" in (edited.exception.hint or "")


def test_an_offer_nobody_settled_is_settled_by_default(world: SettlementWorld) -> None:
    w = world
    a = w.offers[0]
    save_baseline(BaselineFile(a.asset, a.start, tuple(w.baselines[0].net_wh), w.baselines[0].salt, a.baseline),
                  baselines_folder())  # the seller kept A's baseline only
    first = cli("settle", *day_args(w), "--json")
    assert first.exit_code == 0, first.output
    assert json.loads(first.output)["counts"] == {"settled": 1, "no baseline": 1}
    early = cli("settle", *day_args(w), "--unrevealed")
    assert isinstance(early.exception, SettlementNotReadyError) and "open until" in early.exception.message
    w.conn.set_next_block_timestamp(w.day + 86_400 + w.params.dispute_window_seconds + 1)
    w.conn.mine()
    late = cli("settle", *day_args(w))
    assert isinstance(late.exception, SettlementNotReadyError) and "--unrevealed" in (late.exception.hint or "")
    default = cli("settle", *day_args(w), "--unrevealed", "--json")
    assert default.exit_code == 0, default.output
    out = json.loads(default.output)
    assert out["counts"] == {"settled earlier": 1, "by default": 1}
    b_line = next(ln for ln in out["lines"] if ln["offer"] == "0x" + w.digests[1].hex())
    assert b_line["payment"] == 0 and b_line["penalty"] > 0 and b_line["delivered_wh"] == 0
    audit = cli("audit", "settle", *day_args(w), "--json")
    assert audit.exit_code == 0, audit.output


def test_an_offer_naming_the_standard_baseline_settles_against_the_oracles_value(
    conn: ChainConnection, manifest: Manifest, deployer: Signer, dev_signers: list[Signer], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    w = point_cli_at(build_world(conn, manifest, deployer, dev_signers, tmp_path, standard=True), tmp_path, monkeypatch)
    settled = cli("settle", *day_args(w), "--json")  # no baseline file at all: B needs none
    assert settled.exit_code == 0, settled.output
    out = json.loads(settled.output)
    assert out["counts"] == {"settled": 1, "no baseline": 1}
    b_line = next(ln for ln in out["lines"] if ln["offer"] == "0x" + w.digests[1].hex())
    assert b_line["status"] == "settled" and b_line["delivered_wh"] == 0 and b_line["penalty"] > 0
    audit = cli("audit", "settle", *day_args(w), "--json")
    assert audit.exit_code == 0, audit.output
    assert json.loads(audit.output)["offers_settled"] == 1


def test_the_clearing_commands_on_a_final_day(
    conn: ChainConnection, manifest: Manifest, deployer: Signer, dev_signers: list[Signer], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`challenge --superseded` finds nothing to void in a result of current offers; `finalise` of a
    day already final is refused by the contract, and the result stays the one in force."""
    w = point_cli_at(build_world(conn, manifest, deployer, dev_signers, tmp_path), tmp_path, monkeypatch)
    voided = cli("challenge", "--superseded", *day_args(w), "--json")
    assert voided.exit_code == 0, voided.output
    assert json.loads(voided.output) == {"result_id": 1, "superseded_offers": 0, "voided": False}
    again = cli("finalise", *day_args(w))
    assert again.exit_code != 0
    assert isinstance(again.exception, ChainError) and "is final" not in again.output, again.output
