"""The order book seen from Python: relaying signed offers in batches, and reading a market day's
book back from the chain's events, checked against the digest the contract keeps."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from eth_account.signers.local import LocalAccount

from flexledger.chain.bindings import MarketRegistryClient, OrderBookClient, SettlementTokenClient
from flexledger.chain.client import TxResult, wait_for
from flexledger.chain.errors import ContractRevertError
from flexledger.chain.events import decode_logs, event_topic
from flexledger.chain.reverts import decode_revert
from flexledger.errors import FlexledgerError
from flexledger.identity.eip712 import TypedData, read_domain
from flexledger.rules.market import MarketParams
from flexledger.rules.orders import (
    SIGNATURE_BYTES,
    Offer,
    RequestParams,
    cancel_entry,
    chain_digest,
    offers_in_force,
    request_entry,
    unpack_accepted,
)
from flexledger.rules.pair_tree import pair_proofs

DEFAULT_BATCH = 200
PERMIT_TYPES = {"Permit": [{"name": "owner", "type": "address"}, {"name": "spender", "type": "address"},
                           {"name": "value", "type": "uint256"}, {"name": "nonce", "type": "uint256"},
                           {"name": "deadline", "type": "uint256"}]}


class BookDigestMismatchError(FlexledgerError):
    """The events read for a market day do not add up to the digest the contract keeps."""


def sign_permit(token: SettlementTokenClient, owner: LocalAccount, spender: str, value: int, deadline: int,
                ) -> tuple[int, bytes, bytes]:
    """An ERC-2612 permit (v, r, s) by ``owner`` letting ``spender`` take ``value`` of the token."""
    permit = TypedData(read_domain(token.conn, token.address), "Permit", PERMIT_TYPES,
                       {"owner": owner.address, "spender": spender, "value": value,
                        "nonce": token.nonces(owner.address), "deadline": deadline})
    signature = permit.sign(owner)
    return signature[64], signature[:32], signature[32:64]


@dataclass(frozen=True)
class SignedOffer:
    offer: Offer
    signature: bytes


@dataclass
class RelayOutcome:
    """One relayed offer: accepted, or skipped with the contract's reason as a typed exception."""

    offer: Offer
    accepted: bool
    reason: ContractRevertError | None = None
    tx_hash: str = ""


@dataclass
class RelayReport:
    outcomes: list[RelayOutcome] = field(default_factory=list)
    gas_used: int = 0
    transactions: int = 0

    @property
    def accepted(self) -> int:
        return sum(o.accepted for o in self.outcomes)

    @property
    def skipped(self) -> list[RelayOutcome]:
        return [o for o in self.outcomes if not o.accepted]


def relay_offers(
    book: OrderBookClient,
    offers: list[SignedOffer],
    *,
    batch_size: int = DEFAULT_BATCH,
    strict: bool = False,
    in_nonce_order: bool = True,
    progress: Callable[[int], None] | None = None,
    on_sent: Callable[[str, list[SignedOffer]], None] | None = None,
) -> RelayReport:
    """Send ``offers`` in batches of ``batch_size``; each skipped offer comes back with its reason.

    Offers of one asset should go in nonce order (the contract takes strictly increasing nonces),
    so with ``in_nonce_order`` they are sorted (else sent as given): by market day, then subject
    and nonce, when that keeps each subject's nonces increasing, else by subject and nonce. The
    contract logs a batch's offers one event per run of one market day (``OffersAccepted``), so
    offers grouped by day pay for fewer logs.
    With ``strict`` a bad offer reverts its whole batch, which raises its typed exception here.
    The contract takes offers packed (93 bytes each) and 65-byte signatures, concatenated: an
    offer with a field beyond its type, or a signature of another length, raises ValueError
    before anything is sent.
    ``on_sent(tx_hash, batch)`` runs once a batch's transaction is broadcast, before its receipt
    (a durable relay records the hash there: a relay killed while waiting finds it again).
    """
    for signed in offers:
        if len(signed.signature) != SIGNATURE_BYTES:
            raise ValueError(f"a signature has {SIGNATURE_BYTES} bytes (r, s, v), not {len(signed.signature)}")
    ordered = _relay_order(book, offers) if in_nonce_order else offers
    report = RelayReport()
    for first in range(0, len(ordered), batch_size):
        batch = ordered[first:first + batch_size]
        packed, signatures = b"".join(s.offer.pack() for s in batch), b"".join(s.signature for s in batch)
        tx = book.submit_offers(packed, signatures, strict, wait=on_sent is None)
        if on_sent is not None:
            on_sent(tx.tx_hash, batch)
            wait_for(book.conn, tx, signer=book.signer,
                     data=book.encode("submitOffers(bytes,bytes,bool)", packed, signatures, strict))
        report.gas_used += tx.gas_used or 0
        report.transactions += 1
        report.outcomes += batch_outcomes(tx, batch)
        if progress is not None:
            progress(len(batch))
    return report


def batch_outcomes(tx: TxResult, batch: list[SignedOffer]) -> list[RelayOutcome]:
    """Each offer of a mined ``submitOffers`` batch, in the batch's order: accepted, or skipped with
    the reason its ``OfferSkipped`` event gives."""
    skipped = {e.args["index"]: e.args["reason"] for e in tx.events if e.name == "OfferSkipped"}
    return [RelayOutcome(signed.offer, i not in skipped,
                         None if i not in skipped else decode_revert(skipped[i], contract="OrderBook",
                                                                     function="submitOffers"),
                         tx.tx_hash)
            for i, signed in enumerate(batch)]


def _relay_order(book: OrderBookClient, offers: list[SignedOffer]) -> list[SignedOffer]:
    by_subject = sorted(offers, key=lambda s: (s.offer.asset, s.offer.portfolio, s.offer.nonce))
    markets = MarketRegistryClient(book.conn, book.markets())
    params = {m: MarketParams.from_fields(markets.market_params(m)) if 0 < m <= markets.market_count() else MarketParams()
              for m in {s.offer.market for s in offers}}
    by_day = sorted(by_subject, key=lambda s: (s.offer.market, params[s.offer.market].day_start(s.offer.start)))
    last: dict[tuple[int, int], int] = {}
    for signed in by_day:  # the subject's nonces must still increase
        subject = (signed.offer.asset, signed.offer.portfolio)
        if signed.offer.nonce <= last.get(subject, -1):
            return by_subject
        last[subject] = signed.offer.nonce
    return by_day


@dataclass
class Book:
    """A market day's order book as the chain's events state it."""

    market: int
    day_start: int
    requests: dict[int, dict[str, Any]] = field(default_factory=dict)  # open requests by id
    cancelled: set[int] = field(default_factory=set)
    accepted: list[Offer] = field(default_factory=list)  # every accepted offer, in order
    digests: dict[Offer, bytes] = field(default_factory=dict)  # each accepted offer's EIP-712 digest
    digest: bytes = bytes(32)
    # each accepted offer's batch root and Merkle proof, by digest (see flexledger.rules.pair_tree)
    proofs: dict[bytes, tuple[bytes, list[bytes]]] = field(default_factory=dict)
    kinds: dict[int, int] = field(default_factory=dict)  # open requests' buyer kind (0 DSO, 1 TSO), by id
    isp_seconds: int = 900  # the market's ISP length: offers' windows end at start + isps x this

    @property
    def offers(self) -> list[Offer]:
        """The offers in force: those no newer offer of their asset or portfolio overlaps (rule 3)."""
        return offers_in_force(self.accepted, self.isp_seconds)


def _day_topic(day_start: int) -> str:
    return "0x" + day_start.to_bytes(32, "big").hex()


def read_book(book: OrderBookClient, market: int, day_start: int, *, from_block: int = 0) -> Book:
    """Rebuild a market day's book from events alone, and check it against ``bookDigest``."""
    market_topic = "0x" + market.to_bytes(32, "big").hex()
    day = _day_topic(day_start)
    events = [
        *book.events("RequestPosted", from_block=from_block, topics=[None, market_topic, day]),
        *book.events("RequestCancelled", from_block=from_block, topics=[None, market_topic, day]),
        *book.events("OffersAccepted", from_block=from_block, topics=[day]),
    ]
    events.sort(key=lambda e: (e.block_number, e.log_index))
    isp_seconds = MarketParams.from_fields(MarketRegistryClient(book.conn, book.markets()).market_params(market)).isp_seconds
    result = Book(market, day_start, isp_seconds=isp_seconds)
    separator = read_domain(book.conn, book.address).separator()
    for event in events:
        if event.name == "RequestPosted":
            params = RequestParams.from_fields(event.args["params"])
            result.requests[event.args["requestId"]] = {
                "buyer": event.args["buyer"], "params": params, "escrow": event.args["escrow"]}
            entry = request_entry(event.args["requestId"], event.args["buyer"], params, event.args["escrow"])
        elif event.name == "RequestCancelled":
            result.requests.pop(event.args["requestId"], None)
            result.cancelled.add(event.args["requestId"])
            entry = cancel_entry(event.args["requestId"])
        else:  # a run of one batch's offers for this day, in order (of any market with this day)
            for _seller, offer in unpack_accepted(bytes(event.args["offers"])):
                if offer.market == market:
                    result.accepted.append(offer)
                    result.digests[offer] = offer.digest(separator)
                    result.digest = chain_digest(result.digest, result.digests[offer])
            continue
        result.digest = chain_digest(result.digest, entry)
    on_chain = bytes(book.book_digest(market, day_start))
    if result.digest != on_chain:
        raise BookDigestMismatchError(
            f"the events of market {market}, day {day_start} hash to 0x{result.digest.hex()}, "
            f"the contract's digest is 0x{on_chain.hex()}",
            hint="the node's logs are incomplete or altered: read them from another node",
        )
    result.proofs = _batch_proofs(book, separator, sorted({e.tx_hash for e in events if e.name == "OffersAccepted"}))
    result.kinds = {request_id: book.request(request_id).kind for request_id in result.requests}
    return result


def _batch_proofs(book: OrderBookClient, separator: bytes, tx_hashes: list[str]) -> dict[bytes, tuple[bytes, list[bytes]]]:
    """Each offer's batch root and proof, from the transactions that accepted the day's offers
    (a batch may hold other days' offers too: its tree needs them all)."""
    accepted_topic = "0x" + event_topic("OrderBook", "OffersAccepted").hex()
    batched_topic = "0x" + event_topic("OrderBook", "OffersBatched").hex()
    out: dict[bytes, tuple[bytes, list[bytes]]] = {}
    for tx_hash in tx_hashes:
        receipt = book.conn.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        leaves: list[bytes] = []
        for log in receipt["logs"]:
            if str(log["address"]).lower() != book.address.lower() or not log["topics"]:
                continue
            topic = "0x" + bytes(log["topics"][0]).hex()
            if topic == accepted_topic:
                event = decode_logs([log], {book.address.lower(): "OrderBook"})[0]
                leaves += [offer.digest(separator) for _seller, offer in unpack_accepted(bytes(event.args["offers"]))]
            elif topic == batched_topic:
                root, proofs = pair_proofs(leaves)
                if root != bytes(log["topics"][1]):
                    raise BookDigestMismatchError(
                        f"the offers accepted in {tx_hash} do not make up the batch root it logged",
                        hint="the node's logs are incomplete or altered: read them from another node")
                out.update({leaf: (root, proof) for leaf, proof in zip(leaves, proofs, strict=True)})
                leaves = []
    return out
