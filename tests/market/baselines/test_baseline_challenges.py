"""Dispute (d), end to end on anvil: a standard baseline that averages a day with no anchored
reading at all (the oracle invented it) cannot be proven wrong, since the tree proves no absence;
it is challenged instead. The honest oracle answers by itself from its store (what `oracle run`
does every round) and keeps its stake, taking the bond; an oracle that invented the day cannot
answer, and the upheld challenge puts the rule without that day in force and slashes it once."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_account.signers.local import LocalAccount
from settlement_world import SettlementWorld, build_world

from flexledger.baselines.challenges import answer_challenges, open_challenges_against
from flexledger.baselines.disputes import (
    MarketOnChain,
    challenge_standard_baseline,
    revealed_inputs,
    uphold_standard_challenge,
)
from flexledger.baselines.fixes import correction_in_force
from flexledger.chain.bindings import (
    BaselineDisputesClient,
    MeterOracleClient,
    SettlementTokenClient,
)
from flexledger.chain.connection import ChainConnection
from flexledger.chain.manifest import Manifest
from flexledger.chain.revert_errors import BaselineAnswerOpen
from flexledger.chain.structs import Record
from flexledger.chain.transactions import Signer
from flexledger.rules.baselines import BaselineInputs
from flexledger.rules.market import MarketParams
from flexledger.settlement.day import DisputeError

STAKE = 5_000


def _staked_oracle(w: SettlementWorld, deployer: Signer, oracle_signer: Signer) -> MeterOracleClient:
    """The market requires a stake; the oracle that anchored the baselines has it."""
    oracle = MeterOracleClient(w.conn, w.manifest.address("MeterOracle"), signer=oracle_signer)
    token = SettlementTokenClient(w.conn, w.manifest.address("SettlementToken"))
    token.mint(oracle_signer.address, STAKE, sender=deployer)
    token.approve(oracle.address, STAKE, sender=oracle_signer)
    oracle.set_required_stake(w.market, STAKE, sender=deployer)
    oracle.stake(w.market, STAKE)
    return oracle


def _fund(w: SettlementWorld, deployer: Signer, who: Signer) -> int:
    bond = int(BaselineDisputesClient(w.conn, w.manifest.address("BaselineDisputes")).challenge_bond())
    SettlementTokenClient(w.conn, w.manifest.address("SettlementToken")).mint(who.address, bond, sender=deployer)
    return bond


def test_the_honest_oracle_answers_a_challenge_by_itself_and_keeps_its_stake(
        conn: ChainConnection, manifest: Manifest, deployer: Signer, dev_signers: list[Signer], tmp_path: Path) -> None:
    w = build_world(conn, manifest, deployer, dev_signers, tmp_path, standard=True)
    oracle_signer = dev_signers[5]
    oracle = _staked_oracle(w, deployer, oracle_signer)
    bond = _fund(w, deployer, w.anyone)
    view = MarketOnChain(w.deployment, w.market)
    meter = w.meters[1].address
    # every day has its anchored reading: no day to pick by itself
    with pytest.raises(DisputeError, match="has a reading anchored"):
        challenge_standard_baseline(view, w.anyone, w.engine, w.assets[1], w.hour)
    _answer, inputs = revealed_inputs(view, w.engine, meter, w.hour)
    k = inputs.days()[0]
    done = challenge_standard_baseline(view, w.anyone, w.engine, w.assets[1], w.hour, days_back=k)
    assert (done.days_back, done.net) == (k, 1_200)
    disputes = BaselineDisputesClient(w.conn, w.manifest.address("BaselineDisputes"), signer=oracle_signer)
    assert [c["daysBack"] for c in open_challenges_against(disputes, oracle, oracle_signer.address, w.market)] == [k]
    token = SettlementTokenClient(w.conn, w.manifest.address("SettlementToken"))
    before = int(token.balance_of(oracle_signer.address))
    answered = answer_challenges(w.engine, disputes, oracle, w.market)  # what `oracle run` does each round
    assert [(a["meter"], a["daysBack"]) for a in answered] == [(meter, k)]
    assert int(token.balance_of(oracle_signer.address)) == before + bond, "the bond pays the answerer"
    assert oracle.stake_of(w.market, oracle_signer.address).amount == STAKE, "the stake is kept"
    assert correction_in_force(w.deployment, w.market, w.hour, meter) is None
    assert not open_challenges_against(disputes, oracle, oracle_signer.address, w.market)
    w.settle_all()  # the leaf stands


def test_an_invented_day_is_challenged_upheld_and_corrected(
        conn: ChainConnection, manifest: Manifest, deployer: Signer, dev_signers: list[Signer], tmp_path: Path) -> None:
    # the oracle averages a fourth day it has no reading of: (1200 * 3 + 3000) / 4 = 1650 Wh
    w = build_world(conn, manifest, deployer, dev_signers, tmp_path, standard=True, invented={1: 3_000})
    oracle_signer = dev_signers[5]
    oracle = _staked_oracle(w, deployer, oracle_signer)
    bond = _fund(w, deployer, w.anyone)
    view = MarketOnChain(w.deployment, w.market)
    meter = w.meters[1].address
    answer, inputs = revealed_inputs(view, w.engine, meter, w.hour)
    assert answer["baselineWh"] == 1_650
    done = challenge_standard_baseline(view, w.anyone, w.engine, w.assets[1], w.hour)  # picks the invented day
    assert (done.days_back, done.net) == (inputs.days()[3], 3_000)
    disputes = BaselineDisputesClient(w.conn, w.manifest.address("BaselineDisputes"), signer=oracle_signer)
    assert answer_challenges(w.engine, disputes, oracle, w.market) == [], "nothing in the store to answer with"
    with pytest.raises(BaselineAnswerOpen):
        uphold_standard_challenge(view, w.anyone, w.engine, w.assets[1], w.hour, done.days_back)
    w.pass_time(MarketParams().dispute_window_seconds + 1)
    token = SettlementTokenClient(w.conn, w.manifest.address("SettlementToken"))
    before = int(token.balance_of(w.anyone.address))
    upheld = uphold_standard_challenge(view, w.anyone, w.engine, w.assets[1], w.hour, done.days_back)
    assert not upheld.lapsed and upheld.baseline_wh == 1_200 and upheld.slashed == STAKE
    assert int(token.balance_of(w.anyone.address)) == before + bond + STAKE, "the bond back and the stake"
    c = correction_in_force(w.deployment, w.market, w.hour, meter)
    assert c is not None and c.challenge and c.value == 1_200
    assert c.inputs_hash == BaselineInputs.of([(k, 1_200) for k in inputs.days()[:3]]).hash()
    # the correction is revealed again from the upholding call (for a further dispute or challenge)
    again, kept = revealed_inputs(view, w.engine, meter, w.hour)
    assert again["baselineWh"] == 1_200 and kept.hash() == c.inputs_hash
    assert int(BaselineDisputesClient(w.conn, w.manifest.address("BaselineDisputes")).faults_of(
        oracle_signer.address)) == 1


def test_the_auditor_follows_an_upheld_challenge(
        conn: ChainConnection, manifest: Manifest, deployer: Signer, dev_signers: list[Signer], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An upheld challenge MATCHes when its correction is the rule without the day and the oracle
    paid once, to the challenger; altered data (another correction, a missing slash) is flagged. A
    day the oracle could have answered for but did not is noted (negligent), not flagged."""
    import flexledger.audit.settlement as auditor
    from flexledger.audit.baselines import BaselineEvidence
    from flexledger.audit.settlement import audit_settlement
    from flexledger.errors import FlexledgerError
    from flexledger.oracle.anchoring import proof_for
    from flexledger.oracle.baselines import baseline_proof_for

    w = build_world(conn, manifest, deployer, dev_signers, tmp_path, standard=True, invented={1: 3_000})
    oracle_signer = dev_signers[5]
    _staked_oracle(w, deployer, oracle_signer)
    bond = _fund(w, deployer, w.anyone)
    SettlementTokenClient(w.conn, w.manifest.address("SettlementToken")).mint(w.anyone.address, bond, sender=deployer)
    view = MarketOnChain(w.deployment, w.market)
    invented = challenge_standard_baseline(view, w.anyone, w.engine, w.assets[1], w.hour)
    _answer, inputs = revealed_inputs(view, w.engine, w.meters[1].address, w.hour)
    real = inputs.days()[0]  # a day with its anchored reading, which nobody answers for
    challenge_standard_baseline(view, w.anyone, w.engine, w.assets[1], w.hour, days_back=real)
    w.pass_time(MarketParams().dispute_window_seconds + 1)
    first = uphold_standard_challenge(view, w.anyone, w.engine, w.assets[1], w.hour, invented.days_back)
    second = uphold_standard_challenge(view, w.anyone, w.engine, w.assets[1], w.hour, real)
    assert (first.slashed, second.slashed) == (STAKE, 0), "once per (market, ISP, meter)"
    assert second.baseline_wh is None, "two days left: no baseline"

    def served(answer: object, *args: object) -> dict[str, object] | None:
        try:
            return dict(answer(*args))  # type: ignore[operator]
        except FlexledgerError:
            return None

    evidence = BaselineEvidence(lambda m, t: served(baseline_proof_for, w.engine, w.market, m, t),
                                lambda m, t: served(proof_for, w.engine, m, t))
    audit = audit_settlement(w.deployment, w.market, w.day, evidence)
    assert audit.matches, audit.differences
    negligent = [n for n in audit.notes if "negligent" in n]
    assert len(negligent) == 1 and f"({real} days back)" in negligent[0], audit.notes

    from flexledger.baselines.challenges import kept_after_uphold

    def altered(calldata: bytes) -> tuple[int, BaselineInputs, int | None]:  # a node serving other inputs
        isp, kept, value = kept_after_uphold(calldata)
        return isp, kept, None if value is None else value + 1

    monkeypatch.setattr(auditor, "kept_after_uphold", altered)
    audit = audit_settlement(w.deployment, w.market, w.day)
    assert not audit.matches and any("the rule without that day gives 1201 Wh" in d for d in audit.differences), \
        audit.differences
    monkeypatch.setattr(auditor, "kept_after_uphold", kept_after_uphold)
    # a stake rule the chain did not apply: the slash it paid is flagged as not the rule's
    monkeypatch.setattr(MeterOracleClient, "required_stake", lambda *_a, **_k: 0)
    audit = audit_settlement(w.deployment, w.market, w.day)
    assert not audit.matches and any("the stake rule says nothing" in d for d in audit.differences), audit.differences


def test_challenge_and_uphold_from_the_cli(
        conn: ChainConnection, manifest: Manifest, deployer: Signer, dev_signers: list[Signer], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`dispute-baseline` finds nothing it can prove and names the challenge; `challenge-baseline`
    picks the invented day itself; `uphold-baseline` corrects after the window. Errors are typed."""
    import json

    from settlement_cli_helpers import cli, day_args, point_cli_at

    from flexledger.identity import keys

    w = point_cli_at(build_world(conn, manifest, deployer, dev_signers, tmp_path, standard=True, invented={1: 3_000}),
                     tmp_path, monkeypatch)
    anyone = keys.dev_accounts()[6]
    assert anyone.address == w.anyone.address
    _fund(w, deployer, w.anyone)
    w.settle_all()
    disputed = cli("dispute-baseline", "--offer", "0x" + w.digests[1].hex(), "--isp", str(w.hour), *day_args(w),
                   as_=anyone)
    assert isinstance(disputed.exception, DisputeError), disputed.output
    assert "no reading anchored by the baselines" in disputed.exception.message
    assert "challenge-baseline" in (disputed.exception.hint or "")
    where = ["--asset", str(w.assets[1]), "--isp", str(w.hour), "--market", str(w.market)]
    challenged = cli("challenge-baseline", *where, "--json", as_=anyone)
    assert challenged.exit_code == 0, challenged.output
    shown = json.loads(challenged.output)
    assert shown["net"] == 3_000
    early = cli("uphold-baseline", *where, "--days-back", str(shown["days_back"]), as_=anyone)
    assert isinstance(early.exception, BaselineAnswerOpen), early.output
    w.pass_time(MarketParams().dispute_window_seconds + 1)
    upheld = cli("uphold-baseline", *where, "--days-back", str(shown["days_back"]), "--json", as_=anyone)
    assert upheld.exit_code == 0, upheld.output
    assert json.loads(upheld.output)["baseline_now_wh"] == 1_200
    again = cli("challenge-baseline", *where, as_=anyone)  # every day left has its anchored reading
    assert isinstance(again.exception, DisputeError) and "has a reading anchored" in again.exception.message


def test_oracle_run_answers_challenges_by_itself(
        conn: ChainConnection, manifest: Manifest, deployer: Signer, dev_signers: list[Signer], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The honest oracle's service loop (`flexledger oracle run`) answers a challenge of a baseline it
    anchored, unasked: the challenge fails, the bond pays the oracle, its stake is whole."""
    from settlement_cli_helpers import point_cli_at
    from typer.testing import CliRunner

    import flexledger.cli.context as cli_context
    from flexledger.cli.app import app
    from flexledger.config import load_settings
    from flexledger.delivery.broker import LocalBroker

    w = point_cli_at(build_world(conn, manifest, deployer, dev_signers, tmp_path, standard=True), tmp_path, monkeypatch)
    oracle_signer = dev_signers[5]
    oracle = _staked_oracle(w, deployer, oracle_signer)
    bond = _fund(w, deployer, w.anyone)
    view = MarketOnChain(w.deployment, w.market)
    _answer, inputs = revealed_inputs(view, w.engine, w.meters[1].address, w.hour)
    k = inputs.days()[1]
    challenge_standard_baseline(view, w.anyone, w.engine, w.assets[1], w.hour, days_back=k)
    token = SettlementTokenClient(w.conn, w.manifest.address("SettlementToken"))
    before = int(token.balance_of(oracle_signer.address))
    monkeypatch.setattr(cli_context, "load_signer", lambda conn_, _key: oracle_signer)
    try:
        result = CliRunner().invoke(app, ["oracle", "run", "--market", str(w.market), "--seconds", "2",
                                          "--interval", "0.5", "--grace", "0", "--no-baselines"])
    finally:
        LocalBroker(load_settings().data_dir).stop()
    assert result.exit_code == 0, result.output
    assert "answered the challenge" in result.output, result.output
    disputes = BaselineDisputesClient(w.conn, w.manifest.address("BaselineDisputes"))
    assert disputes.challenge_of(w.market, w.hour, w.meters[1].address, k).status == 2  # Answered
    assert int(token.balance_of(oracle_signer.address)) == before + bond
    assert oracle.stake_of(w.market, oracle_signer.address).amount == STAKE


def test_a_dispute_after_an_upheld_challenge_slashes_nothing_and_the_audit_matches(
        conn: ChainConnection, manifest: Manifest, deployer: Signer, dev_signers: list[Signer], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The oracle claims 1,600 Wh on B's three anchored days (1,200) and invents a fourth: the
    challenge is upheld before settlement (slashed), B settles on the correction, a dispute of an
    input corrects it again with no second slash, and the auditor MATCHes both."""
    import json

    from settlement_cli_helpers import cli, day_args, keep_baselines, point_cli_at

    from flexledger.identity import keys

    w = point_cli_at(build_world(conn, manifest, deployer, dev_signers, tmp_path, standard=True,
                                 claimed={1: 1_600}, invented={1: 3_000}), tmp_path, monkeypatch)
    _staked_oracle(w, deployer, dev_signers[5])
    _fund(w, deployer, w.anyone)
    view = MarketOnChain(w.deployment, w.market)
    done = challenge_standard_baseline(view, w.anyone, w.engine, w.assets[1], w.hour)
    assert done.net == 3_000
    w.pass_time(MarketParams().dispute_window_seconds + 1)
    upheld = uphold_standard_challenge(view, w.anyone, w.engine, w.assets[1], w.hour, done.days_back)
    assert (upheld.baseline_wh, upheld.slashed) == (1_600, STAKE)
    keep_baselines(w)
    settled = cli("settle", *day_args(w))
    assert settled.exit_code == 0, settled.output
    disputed = cli("dispute-baseline", "--offer", "0x" + w.digests[1].hex(), "--isp", str(w.hour), *day_args(w),
                   "--json", as_=keys.dev_accounts()[6])
    assert disputed.exit_code == 0, disputed.output
    shown = json.loads(disputed.output)
    assert (shown["kind"], shown["baseline_was_wh"], shown["baseline_now_wh"], shown["slashed"]) == \
        ("INPUT", 1_600, (1_200 + 1_600 + 1_600) // 3, 0)
    audit = cli("audit", "settle", *day_args(w), "--json")
    assert audit.exit_code == 0, audit.output
    report = json.loads(audit.output)
    assert report["match"], report


def test_an_offer_settled_before_the_uphold_is_resettled_from_the_cli(
        conn: ChainConnection, manifest: Manifest, deployer: Signer, dev_signers: list[Signer], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """B is settled on the leaf that averages an invented day while the challenge is open; once it
    is upheld, `resettle-baseline` re-settles B on the correction (`applyCorrection`) in B's dispute
    window, a second time has nothing to do, and `audit settle` MATCHes the re-settlement."""
    import json

    from settlement_cli_helpers import cli, day_args, point_cli_at

    w = point_cli_at(build_world(conn, manifest, deployer, dev_signers, tmp_path, standard=True, invented={1: 3_000}),
                     tmp_path, monkeypatch)
    oracle_signer = dev_signers[5]
    _staked_oracle(w, deployer, oracle_signer)
    _fund(w, deployer, w.anyone)
    view = MarketOnChain(w.deployment, w.market)
    done = challenge_standard_baseline(view, w.anyone, w.engine, w.assets[1], w.hour)
    w.pass_time(60)  # settled after the challenge: its dispute window outlasts the answer window
    before: Record = w.settle_all()[1].record
    where = ["--offer", "0x" + w.digests[1].hex(), "--isp", str(w.hour), *day_args(w)]
    early = cli("resettle-baseline", *where)
    assert isinstance(early.exception, DisputeError), early.output  # nothing corrected yet
    w.conn.set_next_block_timestamp(done.answer_by + 1)
    w.conn.mine()
    upheld = uphold_standard_challenge(view, w.anyone, w.engine, w.assets[1], w.hour, done.days_back)
    assert (upheld.baseline_wh, upheld.slashed) == (1_200, STAKE)
    resettled = cli("resettle-baseline", *where, "--json", as_=keys_of(w))
    assert resettled.exit_code == 0, resettled.output
    shown = json.loads(resettled.output)
    assert (shown["baseline_was_wh"], shown["baseline_now_wh"]) == (1_650, 1_200)
    assert shown["before"]["payment"] == sum(ln.payment for ln in before.lines) > shown["after"]["payment"]
    assert shown["after"]["penalty"] > shown["before"]["penalty"], "B delivered nothing over the true baseline"
    again = cli("resettle-baseline", *where)
    assert isinstance(again.exception, DisputeError) and "already stands" in again.exception.message
    audit = cli("audit", "settle", *day_args(w), "--json")
    assert audit.exit_code == 0, audit.output
    assert json.loads(audit.output)["match"], audit.output


def keys_of(w: SettlementWorld) -> LocalAccount:
    from flexledger.identity import keys

    account = keys.dev_accounts()[6]
    assert account.address == w.anyone.address
    return account
