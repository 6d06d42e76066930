"""A market day settled end to end from Python: offers with committed baselines cleared,
committed and final; meters' signed readings kept and anchored by the oracle; each offer settled
with the awards' and readings' proofs and its revealed baseline; the money after finality is what
flexledger.rules.settlement says, to the base unit."""

from __future__ import annotations

from pathlib import Path

from settlement_world import BOND, MAX_PRICE, build_world

from flexledger.chain.connection import ChainConnection
from flexledger.chain.manifest import Manifest
from flexledger.chain.transactions import Signer
from flexledger.rules.lights import Direction
from flexledger.rules.orders import Product
from flexledger.rules.settlement import AwardIsp, settle_award_isp
from flexledger.settlement.offer import finalise_offer


def test_a_day_settles_from_public_data_as_the_rules_say(
    conn: ChainConnection, manifest: Manifest, deployer: Signer, dev_signers: list[Signer], tmp_path: Path,
) -> None:
    w = build_world(conn, manifest, deployer, dev_signers, tmp_path)  # asset A delivers in full, asset B nothing
    params, owner, dso, anyone = w.params, w.owner, w.dso, w.anyone
    settlement, token, book = w.settlement, w.token, w.book

    # anyone settles each offer from public data and the revealed baseline
    settled = w.settle_all()
    for offer, baseline, net, done in zip(w.offers, w.baselines, w.measured, settled, strict=True):
        expected = settle_award_isp(AwardIsp(offer.power_w, offer.price, MAX_PRICE, Product.ACTIVATION, Direction.UP,
                                             baseline.net_wh[0], net), params, 0)
        (line,) = done.record.lines
        assert (line.request_id, line.isp_start) == (w.request_id, w.hour)
        assert (line.payment, line.claim, line.uncovered) == (expected.payment, expected.claim,
                                               expected.penalty - expected.from_payment)

    # after the dispute window: final; the seller pulls its claim, the buyer its penalty and refund
    conn.set_next_block_timestamp(conn.latest_timestamp() + params.dispute_window_seconds + 1)
    conn.mine()
    for done in settled:
        finalise_offer(settlement, anyone, done)
    claim = sum(line.claim for done in settled for line in done.record.lines)
    penalty_drawn = sum(line.uncovered for done in settled for line in done.record.lines)
    assert settlement.claimable(owner.address) == claim > 0
    assert settlement.claimable(dso.address) == penalty_drawn > 0
    before = token.balance_of(owner.address)
    settlement.withdraw(sender=w.owner_signer)
    assert token.balance_of(owner.address) - before == claim
    conn.set_next_block_timestamp(w.day + 86_400 + params.dispute_window_seconds + 1)
    conn.mine()
    escrow_left = book.escrow_left(w.request_id)
    before = token.balance_of(dso.address)
    settlement.refund(w.request_id, sender=anyone)
    assert token.balance_of(dso.address) - before == escrow_left  # the escrow less the claims paid out
    assert book.escrow_left(w.request_id) == 0 and book.bond_of(owner.address) == BOND - penalty_drawn
