"""Sellers' debts as users meet them: a seller whose bond is too small for its penalty owes the
rest to the buyer (`bond show`), its later claims and anyone's `bond pay-debt` repay it, the buyer
takes it with `bond collect-debt`, and the money auditor follows every step to the base unit (and
flags a debt repaid twice, or a collection above what was owed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from settlement_cli_helpers import point_cli_at
from settlement_world import SettlementWorld, build_world
from typer.testing import CliRunner, Result

import flexledger.cli.context as cli_context
from flexledger.audit import money as audit_money
from flexledger.audit.settlement import audit_settlement
from flexledger.chain.connection import ChainConnection
from flexledger.chain.manifest import Manifest
from flexledger.chain.structs import Line
from flexledger.chain.transactions import Signer
from flexledger.cli.app import app
from flexledger.identity import keys
from flexledger.settlement.day import day_context, finalise_day
from flexledger.settlement.debts import NoDebtError, NothingToCollectError
from flexledger.times import iso


@pytest.fixture
def world(conn: ChainConnection, manifest: Manifest, deployer: Signer, dev_signers: list[Signer], tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> SettlementWorld:
    """The day settled and final, the seller's bond one cent: B's penalty is mostly a debt to the DSO."""
    w = point_cli_at(build_world(conn, manifest, deployer, dev_signers, tmp_path, bond=1), tmp_path, monkeypatch)
    w.settle_all()
    w.pass_time(w.params.dispute_window_seconds + 1)
    assert len(finalise_day(day_context(w.deployment, w.market, w.day), w.anyone)[0]) == 2
    w.token.mint(w.anyone.address, 10**6, sender=deployer)
    return w


def cli(*args: str, as_: LocalAccount | None = None) -> Result:
    with pytest.MonkeyPatch.context() as m:
        if as_ is not None:
            m.setattr(cli_context, "load_signer", lambda conn, _key: keys.signer(as_, conn))
        return CliRunner().invoke(app, list(args))


def show(w: SettlementWorld) -> dict[str, Any]:
    result = cli("bond", "show", w.owner.address, "--json")
    assert result.exit_code == 0, result.output
    out: dict[str, Any] = json.loads(result.output)
    return out


@pytest.mark.slow
def test_a_debt_is_shown_repaid_collected_and_audited(world: SettlementWorld) -> None:
    w = world
    dso = w.dso.address
    (b_line,) = [ln for e in w.settlement.events("OfferSettled") for ln in _lines(e) if ln.uncovered]
    recorded = b_line.uncovered - 1  # B's uncovered penalty less the cent the bond held
    before = show(w)
    assert before["indebted"] and not before["may_sell"]
    # A's claim, made final in the same run, repaid what it could of the debt first
    repaid_by_claims = recorded - before["debt"]
    assert 0 < repaid_by_claims < recorded  # A's 12 cents of claims, of B's 16 cents of debt
    assert before["held_for_creditors"] == repaid_by_claims and before["owed_to"] == {dso: recorded}
    assert w.settlement.claimable(w.owner.address) == sum(ln.claim for e in w.settlement.events("OfferSettled")
                                                           for ln in _lines(e)) - repaid_by_claims
    assert "owed (not yet collected)" in cli("bond", "show", w.owner.address).output

    # the DSO takes what is held; anyone repays the rest (asking for more takes only the debt)
    took = cli("bond", "collect-debt", w.owner.address, "--json", as_=w.dso.account)
    assert took.exit_code == 0, took.output
    assert json.loads(took.output) == {"seller": w.owner.address, "buyer": dso, "collected": repaid_by_claims,
                                       "still_owed": before["debt"]}
    nothing = cli("bond", "collect-debt", w.owner.address, as_=w.dso.account)
    assert isinstance(nothing.exception, NothingToCollectError) and "nothing of its debt" in nothing.exception.message
    paid = cli("bond", "pay-debt", w.owner.address, str(before["debt"] + 500), "--json", as_=w.anyone.account)
    assert paid.exit_code == 0, paid.output
    assert json.loads(paid.output)["paid"] == before["debt"] and json.loads(paid.output)["left"] == 0
    after = show(w)
    assert not after["indebted"] and after["debt"] == 0 and after["bond"] == 0  # the cent went to the DSO
    assert after["held_for_creditors"] == before["debt"] and not after["may_sell"]
    assert cli("bond", "post", "100", "--seller", w.owner.address, as_=w.anyone.account).exit_code == 0
    assert show(w)["may_sell"]  # no debt and a free bond again
    took = cli("bond", "collect-debt", w.owner.address, "--json", as_=w.dso.account)
    assert took.exit_code == 0 and json.loads(took.output)["collected"] == before["debt"]
    assert show(w)["owed_to"] == {} and show(w)["held_for_creditors"] == 0

    # clear errors, no traceback: no debt to pay, nothing owed to a stranger, a bad address
    again = cli("bond", "pay-debt", w.owner.address, "100", as_=w.anyone.account)
    assert isinstance(again.exception, NoDebtError) and again.exception.hint
    stranger = cli("bond", "collect-debt", w.owner.address, as_=w.anyone.account)
    assert isinstance(stranger.exception, NothingToCollectError) and "nothing" in stranger.exception.message
    bad = cli("bond", "show", "0x1234")
    assert bad.exit_code == 2 and "not an address" in bad.output

    # the auditor follows the debt: recorded, repaid from claims and by payDebt, collected
    audit = audit_settlement(w.deployment, w.market, w.day)
    assert audit.matches, audit.differences
    seller, buyer = audit.parties[w.owner.address], audit.parties[dso]
    assert seller.chain.debt == seller.rules.debt == recorded
    assert seller.chain.repaid == recorded and buyer.chain.collected == buyer.rules.collected == recorded
    text = cli("audit", "settle", "--day", iso(w.day)[:10], "--market", str(w.market))
    assert text.exit_code == 0 and text.output.rstrip().endswith("MATCH"), text.output
    report = json.loads(cli("audit", "settle", "--day", iso(w.day)[:10], "--market", str(w.market), "--json").output)
    assert report["parties"][dso]["chain"]["collected"] == recorded and report["match"]


def test_a_debt_repaid_twice_or_collected_beyond_what_was_owed_is_a_difference(
        world: SettlementWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    w = world
    debt = int(w.settlement.debt_of(w.owner.address))
    assert cli("bond", "pay-debt", w.owner.address, str(debt), as_=w.anyone.account).exit_code == 0
    assert cli("bond", "collect-debt", w.owner.address, as_=w.dso.account).exit_code == 0
    assert audit_settlement(w.deployment, w.market, w.day).matches
    real = audit_money._Chain.__init__

    def repaid_twice(self: audit_money._Chain, inp: audit_money.MoneyInputs) -> None:
        real(self, inp)
        self.repaid = [*self.repaid, self.repaid[-1]]  # a node that shows the last repayment twice

    monkeypatch.setattr(audit_money._Chain, "__init__", repaid_twice)
    twice = audit_settlement(w.deployment, w.market, w.day)
    assert not twice.matches
    assert any("repaid" in d and "owed" in d for d in twice.differences), twice.differences

    def collected_more(self: audit_money._Chain, inp: audit_money.MoneyInputs) -> None:
        real(self, inp)
        last = self.collected[-1]
        self.collected = [*self.collected[:-1], _with_amount(last, int(last.args["amount"]) + 7)]

    monkeypatch.setattr(audit_money._Chain, "__init__", collected_more)
    more = audit_settlement(w.deployment, w.market, w.day)
    assert not more.matches
    assert any("collected" in d for d in more.differences), more.differences

    def never_repaid(self: audit_money._Chain, inp: audit_money.MoneyInputs) -> None:
        real(self, inp)
        self.repaid, self.collected = self.repaid[:-1], []  # a node that hides the payDebt and the collection

    monkeypatch.setattr(audit_money._Chain, "__init__", never_repaid)
    hidden = audit_settlement(w.deployment, w.market, w.day)
    assert any("owes 0 by the contract" in d for d in hidden.differences), hidden.differences
    assert any("out of debt" in d for d in hidden.differences), hidden.differences  # its flag says repaid


def _lines(e: Any) -> tuple[Line, ...]:
    return e.args["record"].lines


def _with_amount(e: Any, amount: int) -> Any:
    import dataclasses

    return dataclasses.replace(e, args={**e.args, "amount": amount})
