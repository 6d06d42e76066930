"""The settlement auditor: a day settled, disputed, made final, withdrawn and refunded is
recomputed from public chain data and MATCHes to the base unit; tampered public data is found."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from settlement_world import SettlementWorld, build_world
from typer.testing import CliRunner

import flexledger.audit.settlement as auditor
from flexledger.audit.settlement import audit_settlement
from flexledger.chain.connection import ChainConnection
from flexledger.chain.manifest import Manifest
from flexledger.chain.transactions import Signer
from flexledger.config import load_settings
from flexledger.oracle.anchoring import proof_for
from flexledger.rules.lights import Direction
from flexledger.rules.orders import Product, max_exposure
from flexledger.rules.settlement import AwardIsp, settle_award_isp
from flexledger.settlement.day import day_context, dispute_offer, finalise_day, settle_day
from flexledger.settlement.records import (
    IspInput,
    SettledEvent,
    SettlingCall,
    settled_events,
    settling_calls,
)
from flexledger.times import iso


@pytest.fixture
def world(conn: ChainConnection, manifest: Manifest, deployer: Signer, dev_signers: list[Signer],
          tmp_path: Path) -> SettlementWorld:
    # meter B signed 700 Wh; the oracle's store was corrupted to 1,200 before anchoring
    return build_world(conn, manifest, deployer, dev_signers, tmp_path, measured=(250, 700), misread={1: 1_200})


def _money_day(w: SettlementWorld) -> None:
    """Settle, dispute B's misread reading with what its meter signed, make final, withdraw, refund."""
    w.settle_all()
    assert w.keep_reading(1, 2, 700) == "conflicting"  # meter B's reading, signed again, in no root
    ctx = day_context(w.deployment, w.market, w.day)
    dispute_offer(ctx, w.anyone, w.digests[1], w.hour, w.engine)
    w.pass_time(w.params.dispute_window_seconds + 1)
    assert len(finalise_day(ctx, w.anyone)[0]) == 2
    w.settlement.withdraw(sender=w.owner_signer)
    w.conn.set_next_block_timestamp(w.day + 86_400 + w.params.dispute_window_seconds + 1)
    w.conn.mine()
    w.settlement.refund(w.request_id, sender=w.anyone)
    w.settlement.withdraw(sender=w.dso)


@pytest.mark.slow
def test_a_settled_day_matches_to_the_base_unit(world: SettlementWorld) -> None:
    w = world
    _money_day(w)
    audit = audit_settlement(w.deployment, w.market, w.day)
    assert audit.matches, audit.differences
    assert (audit.offers_settled, audit.lines, audit.disputes, audit.final) == (2, 2, 1, 2)
    # the rules, by hand: A delivered in full; B 500 of its 1,000 Wh (the meter's reading counts)
    figures = [settle_award_isp(AwardIsp(o.power_w, o.price, 20_000, Product.ACTIVATION, Direction.UP, b.net_wh[0], m),
                                w.params, 0) for o, b, m in zip(w.offers, w.baselines, (250, 700), strict=True)]
    seller, buyer = audit.parties[w.owner.address], audit.parties[w.dso.address]
    assert seller.role == "seller" and buyer.role == "buyer"
    claims = sum(f.claim for f in figures)
    drawn = sum(f.penalty - f.from_payment for f in figures)
    assert seller.rules == seller.chain and buyer.rules == buyer.chain
    assert seller.rules.received == seller.rules.withdrawn == claims > 0
    assert seller.rules.penalties == sum(f.penalty for f in figures) > 0
    assert seller.rules.paid == drawn == buyer.rules.received
    escrow = max_exposure(20_000, 1, 900, 20_000)
    assert buyer.rules.escrowed == escrow and buyer.rules.paid == claims
    assert buyer.rules.refunded == escrow - claims and buyer.rules.withdrawn == drawn


@pytest.mark.slow
def test_settlements_not_final_yet_match_and_say_so(world: SettlementWorld) -> None:
    world.settle_all()
    audit = audit_settlement(world.deployment, world.market, world.day)
    assert audit.matches, audit.differences
    assert audit.final == 0 and any("not final" in n for n in audit.notes)


def _tampered(real: Any) -> Any:
    """``settling_calls`` as a node that altered offer B's reading in the calldata it serves."""
    def calls(*args: Any, **kwargs: Any) -> list[SettlingCall]:
        out = []
        for c in real(*args, **kwargs):
            s = c.settle_in
            if s.offer.power_w == 4_000:
                isp = s.isps[0]
                reading = dataclasses.replace(isp.reading, import_wh=0)
                s = dataclasses.replace(s, isps=(dataclasses.replace(isp, reading=reading),))
            out.append(dataclasses.replace(c, settle_in=s))
        return out
    return calls


@pytest.mark.slow
def test_tampered_public_data_is_a_difference(world: SettlementWorld, monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    w = world
    w.settle_all()
    monkeypatch.setattr(auditor, "settling_calls", _tampered(auditor.settling_calls))
    audit = audit_settlement(w.deployment, w.market, w.day)
    assert not audit.matches
    assert any("not the meter's reading in the anchored root" in d for d in audit.differences)
    assert any("the rules give" in d for d in audit.differences)  # B would have delivered everything
    monkeypatch.setattr(auditor, "settling_calls", settling_calls)

    def altered(*args: Any, **kwargs: Any) -> list[SettledEvent]:  # a node that serves a record of its own
        events = settled_events(*args, **kwargs)
        first = events[0]
        line = dataclasses.replace(first.record.lines[0], claim=first.record.lines[0].claim + 1)
        return [dataclasses.replace(first, record=dataclasses.replace(first.record, lines=(line,))), *events[1:]]

    monkeypatch.setattr(auditor, "settled_events", altered)
    audit = audit_settlement(w.deployment, w.market, w.day)
    assert not audit.matches and any("the rules give" in d for d in audit.differences)

    from flexledger.cli.app import app

    monkeypatch.setenv("FLEXLEDGER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FLEXLEDGER_RPC_URL", w.conn.rpc_url)
    settings = load_settings()
    settings.manifest_path.parent.mkdir(parents=True, exist_ok=True)
    w.manifest.save(settings.manifest_path)
    result = CliRunner().invoke(app, ["audit", "settle", "--day", iso(w.day)[:10], "--market", str(w.market), "--json"])
    assert result.exit_code == 1, result.output
    out = json.loads(result.output)
    assert out["match"] is False and out["differences"]


@pytest.mark.slow
def test_a_portfolio_settlement_with_a_member_left_out_or_misread_is_a_difference(
        conn: ChainConnection, manifest: Manifest, deployer: Signer, dev_signers: list[Signer], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The auditor checks a portfolio's members against those it had at the gate closure, and each
    member's reading against the anchored root, from calldata a node could have altered."""
    w = build_world(conn, manifest, deployer, dev_signers, tmp_path, portfolio=True)
    ctx = day_context(w.deployment, w.market, w.day)
    baseline = w.baselines[0]
    settle_day(ctx, w.anyone, baselines=lambda _o: baseline, reading=lambda m, t: proof_for(w.engine, m, t))
    audit = audit_settlement(w.deployment, w.market, w.day)
    assert audit.matches, audit.differences
    assert audit.records[(w.result_id, w.digests[0])].seller == w.owner.address  # the aggregator

    def altered(change: Callable[[IspInput], IspInput]) -> Callable[..., list[SettlingCall]]:
        def calls(*args: Any) -> list[SettlingCall]:
            out = []
            for c in settling_calls(*args):
                s = dataclasses.replace(c.settle_in, isps=tuple(change(isp) for isp in c.settle_in.isps))
                out.append(dataclasses.replace(c, settle_in=s))
            return out
        return calls

    monkeypatch.setattr(auditor, "settling_calls", altered(lambda isp: dataclasses.replace(isp, members=isp.members[:1])))
    left_out = audit_settlement(w.deployment, w.market, w.day)
    assert not left_out.matches
    assert any("the portfolio's members at the gate closure are" in d for d in left_out.differences)

    def misread(isp: IspInput) -> IspInput:
        first = isp.members[0]
        wrong = dataclasses.replace(first, reading=dataclasses.replace(first.reading, import_wh=0))
        return dataclasses.replace(isp, members=(wrong, *isp.members[1:]))

    monkeypatch.setattr(auditor, "settling_calls", altered(misread))
    misread_audit = audit_settlement(w.deployment, w.market, w.day)
    assert any(d.startswith(f"offer 0x{w.digests[0].hex()[:10]}: member {w.assets[0]}: the reading")
               for d in misread_audit.differences), misread_audit.differences


def test_a_bond_that_left_while_penalties_were_pending_is_a_difference(world: SettlementWorld,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """RT-1 on altered data: a node that shows the seller withdrawing its bond after the result was in
    force and before its settlements were final (the contract refuses it: OrderBookBondNotice)."""
    from flexledger.audit import money as audit_money

    w = world
    w.settle_all()
    real = audit_money._Chain.bond_events

    def withdrawn_early(self: Any, seller: str) -> list[tuple[tuple[int, int], int]]:
        events = real(self, seller)
        if seller.lower() == w.owner.address.lower():  # in the block of its first settlement
            block, index = audit_money._pos(self.settled[0])
            events = sorted([*events, ((block, index + 1), -1_000)])
        return events

    monkeypatch.setattr(audit_money._Chain, "bond_events", withdrawn_early)
    audit = audit_settlement(w.deployment, w.market, w.day)
    assert not audit.matches
    assert any("of its bond left" in d and "pending" in d for d in audit.differences), audit.differences
