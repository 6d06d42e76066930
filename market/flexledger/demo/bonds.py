"""The demo's bonds: before any offer is relayed, each aggregator posts a bond for every seller
whose offers it relays (its prosumers, and itself for its portfolio's offer), covering the penalty
of those offers left entirely undelivered (OrderBook.postBond names the seller and takes the
payer's tokens). DESIGN: a seller without free bond does not sell, and the bond stays until every
settlement of its offers is final (a withdrawal waits out OrderBook.bondNoticeSeconds). The
settlement draws a penalty its payment does not cover from that bond, for the buyer.
"""

from __future__ import annotations

from collections import defaultdict

from rich.console import Console

from flexledger.chain.client import TxResult, wait_all
from flexledger.chain.transactions import Signer
from flexledger.demo.money import eur
from flexledger.deployment import Deployment
from flexledger.rules.market import MarketParams
from flexledger.rules.orders import Offer
from flexledger.rules.settlement import penalty

BOND_GAS = 120_000  # postBond measures about 60,000: a fixed limit spares an estimate per transaction


def worst_penalty(offer: Offer, params: MarketParams) -> int:
    """The penalty of the offer's full power undelivered in every ISP of its window, ignoring the
    tolerance, at its own price. One division over the whole energy: the settlement floors each
    award-ISP's penalty, so their sum is at most this."""
    return penalty(offer.power_w * offer.isps * params.isp_seconds, offer.price, params.penalty_factor_bps)


def bond_sellers(chain: Deployment, authority: Signer,
                 relays: list[tuple[Signer, list[tuple[str, Offer]]]], params: MarketParams,
                 console: Console) -> dict[str, int]:
    """Each relaying aggregator bonds the sellers of the offers it relays (sent without waiting for
    each receipt), each bond the sum of its offers' worst penalties: how many sellers, how much."""
    conn = chain.conn
    book, token = chain.order_book, chain.signed_by(authority).token
    pending: list[TxResult] = []
    total = 0
    for aggregator, offers in relays:
        bonds: dict[str, int] = defaultdict(int)
        for seller, offer in offers:
            bonds[seller] += worst_penalty(offer, params)
        token.mint(aggregator.address, sum(bonds.values()))
        token.approve(book.address, sum(bonds.values()), sender=aggregator)
        for seller, amount in sorted(bonds.items()):
            pending.append(book.post_bond(seller, amount, sender=aggregator, wait=False, gas=BOND_GAS))
        total += sum(bonds.values())
    wait_all(conn, pending)
    console.print(f"the aggregators bonded the {len(pending)} sellers they relay before relaying (their prosumers, "
                  f"and themselves for a portfolio): {eur(total)} EUR in all, each bond the penalty of its "
                  "offers left undelivered")
    return {"prosumers": len(pending), "posted": total}
