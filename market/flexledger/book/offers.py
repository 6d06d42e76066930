"""An offer on its way into the book, as the CLI and the API handle it: its default nonce (one
past the last its asset or portfolio had accepted), and a signed offer read back from its JSON
(``{typedData, signature}``, what any wallet returns for `flexledger offer typed-data`) and
checked before it is relayed: signed in this order book's domain, a 65-byte signature, every
field within its Solidity type (the book takes offers packed, so neither can carry more)."""

from __future__ import annotations

from typing import Any

from flexledger.book.order_book import SignedOffer
from flexledger.deployment import Deployment
from flexledger.errors import FlexledgerError
from flexledger.identity.eip712 import Eip712Domain, TypedDataError, typed_data_from_json
from flexledger.rules.orders import SIGNATURE_BYTES, Offer

RESIGN_HINT = "sign typed data from `flexledger offer typed-data`"


class SignedOfferError(FlexledgerError):
    """A signed offer that cannot be read, or that was signed for another order book."""


def next_nonce(deployment: Deployment, asset: int, portfolio: int) -> int:
    """The nonce a new offer of the asset (or, asset 0, the portfolio) takes: one past its last accepted."""
    book = deployment.order_book
    return (book.asset_nonce(asset) if asset else book.portfolio_nonce(portfolio)) + 1


def signed_offer(item: Any, domain: Eip712Domain, where: str) -> SignedOffer:
    """The signed offer in ``item`` (``where`` names it in errors), checked as the book takes it."""
    try:
        typed = typed_data_from_json(item["typedData"])
        signature = bytes.fromhex(str(item["signature"]).removeprefix("0x"))
        offer = Offer.from_message(typed.message)
    except (KeyError, TypeError, ValueError, TypedDataError) as exc:
        raise SignedOfferError(f"{where} is not a signed offer ({exc})", hint=RESIGN_HINT) from None
    if typed.domain != domain:
        raise SignedOfferError(f"{where} was signed for {typed.domain.to_json()}, not this order book",
                               hint="print the typed data again with `flexledger offer typed-data`")
    if len(signature) != SIGNATURE_BYTES or not offer.fits():
        raise SignedOfferError(f"{where} has a signature of {len(signature)} bytes (65 wanted) or a field "
                               "beyond its type", hint=RESIGN_HINT)
    return SignedOffer(offer, signature)
