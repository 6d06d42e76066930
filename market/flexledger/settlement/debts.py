"""Sellers' debts: what a seller's bond could not cover, repaid and collected (`Settlement`).

A penalty the bond cannot pay is recorded as owed to that line's buyer (`owedTo`); the seller
sells nothing until all of it is repaid. Repayments (the seller's later claims first, or anyone's
`payDebt`) are held by the Settlement for the creditors, and each buyer takes its part with
`collectDebt`, first come first served among a seller's creditors (README "The order book").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flexledger.book.order_book import sign_permit
from flexledger.chain.bindings import OrderBookClient, SettlementClient, SettlementTokenClient
from flexledger.chain.transactions import Signer
from flexledger.errors import FlexledgerError


class DebtError(FlexledgerError):
    """A debt that cannot be paid or collected as asked."""


class NoDebtError(DebtError):
    """The seller owes nothing: there is nothing to repay."""


class NothingToCollectError(DebtError):
    """The seller owes the caller nothing, or has repaid nothing yet."""


@dataclass(frozen=True)
class SellerDebts:
    """A seller's debt as the Settlement holds it."""

    seller: str
    debt: int  # not yet repaid (`debtOf`)
    held: int  # repaid, waiting for its creditors to collect it (`repaidOf`)
    owed_to: dict[str, int] = field(default_factory=dict)  # per buyer: not yet collected, repaid or not


def _creditors(settlement: SettlementClient, book: OrderBookClient, seller: str) -> list[str]:
    """Every buyer a debt of ``seller`` could be owed to: the buyers of its settled lines with a
    penalty its payment did not cover, and those that collected from it."""
    topic = "0x" + bytes.fromhex(seller.removeprefix("0x")).rjust(32, b"\0").hex()
    requests = {ln.request_id for e in settlement.events("OfferSettled", topics=[None, None, topic])
                for ln in e.args["record"].lines if ln.uncovered}
    buyers = {book.request(r).buyer for r in requests}
    buyers |= {str(e.args["buyer"]) for e in settlement.events("DebtCollected", topics=[topic])}
    return sorted(buyers)


def seller_debts(settlement: SettlementClient, book: OrderBookClient, seller: str) -> SellerDebts:
    """What ``seller`` owes, what it repaid that waits for its creditors, and what it owes each buyer."""
    owed = {b: int(settlement.owed_to(seller, b)) for b in _creditors(settlement, book, seller)}
    return SellerDebts(seller, int(settlement.debt_of(seller)), int(settlement.repaid_of(seller)),
                       {b: v for b, v in owed.items() if v})


@dataclass(frozen=True)
class DebtPayment:
    seller: str
    paid: int
    left: int
    tx_hash: str


def pay_debt(settlement: SettlementClient, token: SettlementTokenClient, payer: Signer, seller: str,
             amount: int) -> DebtPayment:
    """Repay up to ``amount`` of ``seller``'s debt from ``payer``'s tokens, through an ERC-2612 permit
    for exactly what the Settlement will take (at most the debt)."""
    if amount <= 0:
        raise DebtError(f"cannot pay {amount}: the amount is in token base units and must be positive")
    debt = int(settlement.debt_of(seller))
    if debt == 0:
        raise NoDebtError(f"{seller} owes no debt: nothing to repay",
                          hint="`flexledger bond show SELLER` shows a seller's debts")
    amount = min(amount, debt)
    balance = int(token.balance_of(payer.address))
    if balance < amount:
        raise DebtError(f"{payer.address} holds {balance} tokens, {amount} are needed",
                        hint="pay less, or fund the paying account first")
    deadline = settlement.conn.latest_timestamp() + 3600
    v, r, s = sign_permit(token, payer.account, settlement.address, amount, deadline)
    token.permit(payer.address, settlement.address, amount, deadline, v, r, s, sender=payer)
    tx = settlement.pay_debt(seller, amount, sender=payer)
    repaid = tx.event("DebtRepaid").args
    return DebtPayment(seller, int(repaid["amount"]), int(repaid["left"]), tx.tx_hash)


def collect_debt(settlement: SettlementClient, buyer: Signer, seller: str) -> int:
    """Take what ``seller`` repaid of what it owes ``buyer``; returns the amount collected."""
    owed = int(settlement.owed_to(seller, buyer.address))
    if owed == 0:
        raise NothingToCollectError(f"{seller} owes {buyer.address} nothing",
                                    hint="only a buyer a seller's penalty was not paid to collects from it")
    if int(settlement.repaid_of(seller)) == 0:
        raise NothingToCollectError(
            f"{seller} owes {buyer.address} {owed}, but nothing of its debt is repaid and uncollected yet",
            hint="its later claims repay it, or anyone may (`flexledger bond pay-debt`); collect again then")
    tx = settlement.collect_debt(seller, sender=buyer)
    return int(tx.event("DebtCollected").args["amount"])
