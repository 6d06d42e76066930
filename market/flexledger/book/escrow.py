"""Money into the order book through an ERC-2612 permit, one transaction each: a request posted
with its maximum exposure in escrow, and a seller's bond topped up (by anyone). The token is the
one the OrderBook itself pulls from (``OrderBook.token``), so the permit names its spender right."""

from __future__ import annotations

from dataclasses import dataclass

from flexledger.book.order_book import sign_permit
from flexledger.chain import structs
from flexledger.chain.bindings import SettlementTokenClient
from flexledger.chain.transactions import Signer
from flexledger.deployment import Deployment
from flexledger.rules.orders import RequestParams, max_exposure

PERMIT_SECONDS = 3600  # how long a permit signed here stays good: it is used in the next block


@dataclass(frozen=True)
class PostedRequest:
    request_id: int
    escrow: int  # token base units moved into escrow: the request's maximum exposure
    tx_hash: str
    gas_used: int


def book_token(deployment: Deployment) -> SettlementTokenClient:
    """The token the OrderBook escrows and bonds in, signing as the deployment does."""
    return deployment.at(SettlementTokenClient, deployment.order_book.token())


def _permit(deployment: Deployment, amount: int) -> tuple[Signer, int, tuple[int, bytes, bytes]]:
    """The signer, a deadline and its permit (v, r, s) letting the OrderBook take ``amount``."""
    signer = deployment.sender()
    deadline = deployment.conn.latest_timestamp() + PERMIT_SECONDS
    return signer, deadline, sign_permit(book_token(deployment), signer.account, deployment.order_book.address,
                                         amount, deadline)


def post_request(deployment: Deployment, params: RequestParams) -> PostedRequest:
    """Post a request signed by the deployment's signer, its maximum exposure moving into escrow."""
    escrow = max_exposure(params.power_w, params.isps, deployment.params(params.market).isp_seconds, params.max_price)
    _signer, deadline, (v, r, s) = _permit(deployment, escrow)
    tx = deployment.order_book.post_request_with_permit(structs.RequestParams.like(params), deadline, v, r, s)
    return PostedRequest(int(tx.event("RequestPosted").args["requestId"]), escrow, tx.tx_hash, tx.gas_used or 0)


def post_bond(deployment: Deployment, amount: int, seller: str | None = None) -> str:
    """Add ``amount`` to ``seller``'s bond (default: the signer's own), paid by the deployment's
    signer; returns whose bond it is."""
    signer, deadline, (v, r, s) = _permit(deployment, amount)
    who = seller or signer.address
    deployment.order_book.post_bond_with_permit(who, amount, deadline, v, r, s)
    return who
