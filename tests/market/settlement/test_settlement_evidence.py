"""Red team, issue 17 finding 1 (the off-chain half of RT-6): the meter's key sits on the seller's
gateway; after an honest settlement the seller signs a second reading for the same ISP and
disputes. As regression tests of the defence: the chain judges it equivocation (the anchored leaf
commits to the meter's first signature), the seller gains nothing and no oracle pays, the CLI says
so, and the auditor agrees with the chain; where the chain had let the exploit through (altered
data), the auditor finds it."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from settlement_world import SettlementWorld, build_world

import flexledger.audit.settlement as auditor
from flexledger.audit.settlement import audit_settlement
from flexledger.chain.bindings import ReadingDisputesClient
from flexledger.chain.connection import ChainConnection
from flexledger.chain.events import DecodedEvent
from flexledger.chain.manifest import Manifest
from flexledger.chain.structs import Line
from flexledger.chain.transactions import Signer
from flexledger.identity import keys
from flexledger.rules.lights import Direction
from flexledger.rules.orders import Product
from flexledger.rules.settlement import AwardIsp, settle_award_isp
from flexledger.settlement.day import day_context, dispute_offer
from flexledger.settlement.records import SettledEvent, settled_events


@pytest.fixture
def world(conn: ChainConnection, manifest: Manifest, deployer: Signer, dev_signers: list[Signer],
          tmp_path: Path) -> SettlementWorld:
    return build_world(conn, manifest, deployer, dev_signers, tmp_path)


def _equivocate(w: SettlementWorld) -> tuple[Any, SettledEvent]:
    """B settled on what its meter signed (1,200 Wh: nothing delivered); then B's gateway signs
    200 Wh for the same hour (B's whole award, if it counted) and its owner disputes."""
    w.settle_all()
    assert w.keep_reading(1, 2, 200) == "conflicting"
    ctx = day_context(w.deployment, w.market, w.day)
    done = dispute_offer(ctx, keys.signer(keys.dev_accounts()[7], w.conn), w.digests[1], w.hour, w.engine)
    event = settled_events(w.settlement, digest=w.digests[1])[-1]
    return done, event


@pytest.mark.slow
def test_finding1_seller_equivocation_pays_nothing_and_the_auditor_agrees(world: SettlementWorld) -> None:
    w = world
    done, _event = _equivocate(w)
    assert done.equivocation
    assert done.after.lines == done.before.lines  # void: as undelivered
    assert sum(ln.payment for ln in done.after.lines) == 0
    disputes = ReadingDisputesClient(w.conn, w.manifest.address("ReadingDisputes"))
    assert disputes.faults_of(done.oracle) == 0 and disputes.equivocations_of(w.meters[1].address) == 1
    assert not disputes.events("ReadingDisputed")
    audit = audit_settlement(w.deployment, w.market, w.day)
    assert audit.matches, audit.differences
    assert audit.disputes == 1


@pytest.mark.slow
def test_finding1_auditor_flags_the_exploit_on_altered_data(world: SettlementWorld,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A chain that had upheld the seller's second reading (B re-settled as fully delivered, the
    oracle's stake paid to the seller): the auditor recomputes the void and finds both."""
    w = world
    _done, event = _equivocate(w)
    b = w.offers[1]
    paid_in_full = settle_award_isp(AwardIsp(b.power_w, b.price, 20_000, Product.ACTIVATION, Direction.UP,
                                             w.baselines[1].net_wh[0], 200), w.params, 0)
    (line,) = event.record.lines
    exploit = Line(line.request_id, line.isp_start, paid_in_full.payment, paid_in_full.claim,
                   paid_in_full.penalty - paid_in_full.from_payment)
    real_events = auditor.settled_events

    def upheld(*args: Any, **kwargs: Any) -> list[SettledEvent]:
        return [dataclasses.replace(e, record=dataclasses.replace(e.record, lines=(exploit,)))
                if e.tx_hash == event.tx_hash else e for e in real_events(*args, **kwargs)]

    monkeypatch.setattr(auditor, "settled_events", upheld)
    audit = audit_settlement(w.deployment, w.market, w.day)
    assert not audit.matches
    assert any("the rules give" in d and f"on chain payment {paid_in_full.payment}" in d for d in audit.differences)
    monkeypatch.setattr(auditor, "settled_events", real_events)

    real_load = auditor._load
    seller = w.owner.address

    def slashed_to_seller(*args: Any, **kwargs: Any) -> Any:
        day = real_load(*args, **kwargs)
        day.slashes[event.tx_hash] = [DecodedEvent("MeterOracle", "OracleSlashed",
                                                   {"market": w.market, "oracle": _done.oracle, "to": seller,
                                                    "amount": 5_000}, w.manifest.address("MeterOracle"),
                                                   event.block_number, event.tx_hash, 0)]
        return day

    monkeypatch.setattr(auditor, "_load", slashed_to_seller)
    audit = audit_settlement(w.deployment, w.market, w.day)
    assert not audit.matches
    assert any("slashed" in d and "equivocated" in d for d in audit.differences)
