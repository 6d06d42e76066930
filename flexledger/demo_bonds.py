"""The demo's bonds: once the day's result is final, each aggregator posts a bond for every
prosumer whose offer it relayed and that was awarded (and for itself, the seller of its
portfolio's offer), covering the penalty of the awards left entirely undelivered
(OrderBook.postBond names the seller and takes the payer's tokens). The settlement draws a
penalty its payment does not cover from that bond, for the buyer.

Only the awarded prosumers are bonded: their exposure is what the awards put at risk, and a
thousand bonds would cost the demo as many transactions.
"""

from __future__ import annotations

from collections import defaultdict

from eth_account.signers.local import LocalAccount
from rich.console import Console

from flexledger.chain.bindings import MarketRegistryClient, OrderBookClient, SettlementTokenClient
from flexledger.chain.client import TxResult, wait_all
from flexledger.chain.connection import ChainConnection
from flexledger.chain.manifest import Manifest
from flexledger.chain.transactions import Signer
from flexledger.rules.market import MarketParams
from flexledger.rules.settlement import penalty

from .demo_delivery import Delivery, DeliveryPlan

BOND_GAS = 120_000  # postBond measures about 60,000: a fixed limit spares an estimate per transaction


def award_bond(delivery: Delivery, params: MarketParams) -> int:
    """The penalty of the offer's awards delivered not at all, ignoring the tolerance. One division
    over the whole energy: the settlement floors each award-ISP's penalty, so their sum is at most this."""
    awarded_ws = sum(delivery.levels.values()) * params.isp_seconds
    return penalty(awarded_ws, delivery.kept.offer.price, params.penalty_factor_bps)


def bonds_step(conn: ChainConnection, manifest: Manifest, authority: Signer, accounts: dict[str, LocalAccount],
               market: int, plan: DeliveryPlan, console: Console) -> dict[str, int]:
    """Post the bonds (sent without waiting for each receipt): how many prosumers, how much in all."""
    params = MarketParams.from_tuple(MarketRegistryClient(conn, manifest.address("MarketRegistry")).market_params(market))
    book = OrderBookClient(conn, manifest.address("OrderBook"))
    token = SettlementTokenClient(conn, manifest.address("SettlementToken"), signer=authority)
    by_aggregator: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for d in plan.deliveries.values():
        by_aggregator[d.kept.aggregator][str(d.kept.owner.address)] += award_bond(d, params)
    pending: list[TxResult] = []
    for name, bonds in sorted(by_aggregator.items()):
        aggregator = Signer(accounts[name], conn)
        token.mint(aggregator.address, sum(bonds.values()))
        token.approve(book.address, sum(bonds.values()), sender=aggregator)
        for seller, amount in sorted(bonds.items()):
            pending.append(book.post_bond(seller, amount, sender=aggregator, wait=False, gas=BOND_GAS))
    wait_all(conn, pending)
    total = sum(sum(b.values()) for b in by_aggregator.values())
    console.print(f"the aggregators bonded the {len(pending)} awarded sellers they relay (their prosumers, and "
                  f"themselves for a portfolio): {total / 100:,.2f} EUR in all, each bond the penalty of its awards "
                  "left undelivered")
    return {"prosumers": len(pending), "posted": total}
