"""A market day's clearing result on chain (ClearingCommitment): posting it in chunks, challenging
the result in force with a better one, finalising the day, and reading a result back from events.

A result is posted as groups, one per awarded offer, in increasing order of the offer's subject
(asset, then portfolio) and start, and the contract refuses two offers of one subject that share
an ISP (``ClearingOffersOverlap``: one meter is sold once per ISP); each group carries the offer as signed (packed as ``OrderBook.submitOffers`` takes it), the index
of its OrderBook batch root in the chunk's list of roots, its Merkle proof, and its awards packed
one word each (request << 48 | ISP index in the offer's window << 32 | power). Chunks are cut so
that each fits comfortably in a block.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import IntEnum

from eth_abi import encode
from eth_utils import keccak

from flexledger.book.order_book import Book
from flexledger.chain import structs
from flexledger.chain.bindings import ClearingCommitmentClient
from flexledger.chain.structs import DayState, OfferAwards
from flexledger.chain.transactions import Signer
from flexledger.deployment import Deployment
from flexledger.errors import FlexledgerError
from flexledger.optimiser.results import Award
from flexledger.rules.market import PricingRule
from flexledger.rules.orders import Offer, newest_overlapping
from flexledger.rules.pair_tree import pair_proofs

DEFAULT_CHUNK_AWARDS = 400  # about 12M gas at the measured cost per award: well inside a 30M block


class ResultStatus(IntEnum):
    NONE = 0
    POSTING = 1
    CURRENT = 2
    REPLACED = 3
    VOID = 4


class CommitmentError(FlexledgerError):
    """A result cannot be posted as it is (an award the book cannot back)."""


@dataclass(frozen=True)
class CommittedResult:
    result_id: int
    market: int
    day: int
    author: str
    status: ResultStatus
    awards: list[Award]
    dso_value: int  # sum of W x (max price - offer price): the contract's exact welfare measure
    tso_value: int
    book_digest: bytes
    gas_used: int = 0
    chunks: int = 0


@dataclass(frozen=True)
class Group:
    offer: Offer
    digest: bytes
    root: bytes
    proof: list[bytes]
    awards: list[tuple[int, int, int]]  # (request id, ISP index in the offer's window, W)

    def wired(self, roots: list[bytes]) -> OfferAwards:
        """The group as ``post`` takes it, its root named by its index in ``roots``."""
        words = tuple(request << 48 | isp << 32 | power for request, isp, power in self.awards)
        return OfferAwards(self.offer.pack(), roots.index(self.root), tuple(self.proof), words)


def wire(chunk: list[Group]) -> tuple[list[bytes], list[OfferAwards]]:
    """A chunk's batch roots and its groups, as ``post`` takes them."""
    roots = sorted({g.root for g in chunk})
    return roots, [g.wired(roots) for g in chunk]


def posting_order(offer: Offer) -> tuple[int, int, int]:
    """Where an offer's group goes in a result: by subject (asset, then portfolio), then start,
    as ``ClearingCommitment`` checks it (its order key packs the same fields)."""
    return (offer.asset, offer.portfolio, offer.start)


def groups_of(awards: Iterable[Award], book: Book, isp_seconds: int) -> list[Group]:
    """The awards as the contract takes them: one group per offer, in increasing (asset,
    portfolio, start) order (``posting_order``)."""
    offer_of = {"0x" + d.hex(): o for o, d in book.digests.items()}
    by_offer: dict[str, list[Award]] = defaultdict(list)
    for a in awards:
        by_offer[a.offer_key].append(a)
    for key in by_offer:
        if offer_of.get(key) is None or bytes.fromhex(key[2:]) not in book.proofs:
            raise CommitmentError(f"offer {key[:12]} is not in the market day's book",
                                  hint="the result was computed on another book: clear the day again")
    groups = []
    for key in sorted(by_offer, key=lambda k: (posting_order(offer_of[k]), k)):
        offer = offer_of[key]
        digest = bytes.fromhex(key[2:])
        root, proof = book.proofs[digest]
        # one award per request and ISP (the contract takes each pair once, in this order)
        merged: dict[tuple[int, int], int] = defaultdict(int)
        for a in by_offer[key]:
            merged[((a.isp_start - offer.start) // isp_seconds, a.request_id)] += a.power_w
        items = [(request, isp, power) for (isp, request), power in sorted(merged.items())]
        groups.append(Group(offer, digest, root, proof, items))
    return groups


def chunks_of(groups: list[Group], max_awards: int = DEFAULT_CHUNK_AWARDS) -> list[list[Group]]:
    """Consecutive groups, at most ``max_awards`` awards a chunk (a larger group goes alone)."""
    out: list[list[Group]] = []
    current: list[Group] = []
    count = 0
    for g in groups:
        if current and count + len(g.awards) > max_awards:
            out.append(current)
            current, count = [], 0
        current.append(g)
        count += len(g.awards)
    if current:
        out.append(current)
    return out


def post_result(
    clearing: ClearingCommitmentClient, signer: Signer, market: int, day: int, awards: list[Award], book: Book,
    isp_seconds: int, *, max_awards: int = DEFAULT_CHUNK_AWARDS, progress: Callable[[int, int], None] | None = None,
) -> tuple[int, int, int]:
    """Open a result, post its chunks and close it (the day's first result, or a challenge).
    Returns (result id, gas used, chunks). Reverts surface as the contract's typed exceptions."""
    chunks = chunks_of(groups_of(awards, book, isp_seconds), max_awards)
    opened = clearing.open(market, day, sender=signer)
    result_id = int(opened.event("ResultOpened").args["resultId"])
    gas = opened.gas_used or 0
    done = 0
    for chunk in chunks:
        tx = clearing.post(result_id, *wire(chunk), sender=signer)
        gas += tx.gas_used or 0
        done += sum(len(g.awards) for g in chunk)
        if progress:
            progress(done, len(awards))
    closed = clearing.close(result_id, sender=signer)
    return result_id, gas + (closed.gas_used or 0), len(chunks)


def unpack_awards(packed: bytes) -> list[tuple[int, int, int]]:
    """``OfferAwarded``'s awards: (request id, ISP start, W), 8 + 8 + 4 bytes each, big-endian."""
    return [(int.from_bytes(packed[k:k + 8], "big"), int.from_bytes(packed[k + 8:k + 16], "big"),
             int.from_bytes(packed[k + 16:k + 20], "big")) for k in range(0, len(packed), 20)]


def read_result(deployment: Deployment, result_id: int, book: Book) -> CommittedResult:
    """A result as its events state it, each award priced by the market's rule (PAY_AS_BID: the
    offer's price; PAY_AS_CLEARED: the cell's highest awarded offer price, capped at the request's
    maximum)."""
    clearing = deployment.clearing
    result = clearing.result(result_id)
    if ResultStatus(result.status) is ResultStatus.NONE:
        raise CommitmentError(f"no clearing result {result_id}")
    params = deployment.params(result.market)
    price_of = {"0x" + d.hex(): o.price for o, d in book.digests.items()}
    topic = "0x" + result_id.to_bytes(32, "big").hex()
    awards = []
    for e in clearing.events("OfferAwarded", topics=[topic]):
        key = "0x" + bytes(e.args["offerDigest"]).hex()
        for request_id, isp_start, power in unpack_awards(bytes(e.args["awards"])):
            price = price_of[key]
            if params.pricing_rule is PricingRule.PAY_AS_CLEARED:
                p = book.requests[request_id]["params"]
                price = min(clearing.clearing_price(result_id, p.zone, p.direction, isp_start), p.max_price)
            awards.append(Award(request_id, isp_start, key, power, price))
    return CommittedResult(result_id, result.market, result.day, result.author, ResultStatus(result.status),
                           sorted(awards), result.dso_value, result.tso_value, result.book_digest, chunks=result.chunks)


def day_state(deployment: Deployment, market: int, day: int) -> DayState:
    """The result in force (0: none), the end of its challenge window and whether it is final."""
    return deployment.clearing.day_state(market, day)


def welfare_value(awards: Iterable[Award], book: Book) -> tuple[int, int]:
    """The contract's exact (DSO, TSO) welfare measure of an award set: sum of W x margin."""
    price_of = {"0x" + d.hex(): o.price for o, d in book.digests.items()}
    dso = tso = 0
    for a in awards:
        value = a.power_w * (book.requests[a.request_id]["params"].max_price - price_of[a.offer_key])
        if book.kinds[a.request_id] == 1:
            tso += value
        else:
            dso += value
    return dso, tso


def award_leaf(offer_digest: bytes, request_id: int, isp_start: int, power_w: int, level_w: int) -> bytes:
    """``ClearingCommitment.awardLeaf``: the leaf of one award in its chunk's tree (``level_w``: the
    offer's power in that ISP over all its awards)."""
    return keccak(encode(["bytes32", "uint64", "uint64", "uint32", "uint32"],
                         [offer_digest, request_id, isp_start, power_w, level_w]))


@dataclass(frozen=True, slots=True)
class AwardProof(structs.AwardProof):
    """One award of a result and its proof under its chunk's ``awardsRoot``: the struct ``isAwarded``
    and the settlements take, with the digest of the offer it awards (a leaf of the chunk's tree)."""

    offer_digest: bytes


def award_proofs(clearing: ClearingCommitmentClient, result_id: int) -> list[AwardProof]:
    """Every award of a result with its proof, from the result's events (each chunk's tree is over
    its awards in posting order)."""
    topic = "0x" + result_id.to_bytes(32, "big").hex()
    chunks = {e.tx_hash: e for e in clearing.events("ChunkPosted", topics=[topic])}
    by_chunk: dict[str, list[tuple[bytes, int, int, int, int]]] = defaultdict(list)
    for e in sorted(clearing.events("OfferAwarded", topics=[topic]), key=lambda e: (e.block_number, e.log_index)):
        digest, awards = bytes(e.args["offerDigest"]), unpack_awards(bytes(e.args["awards"]))
        level: dict[int, int] = defaultdict(int)
        for _request, isp_start, power in awards:
            level[isp_start] += power
        by_chunk[e.tx_hash] += [(digest, r, t, w, level[t]) for r, t, w in awards]
    out = []
    for tx_hash, leaves in by_chunk.items():
        posted = chunks[tx_hash]
        root, proofs = pair_proofs([award_leaf(*leaf) for leaf in leaves])
        if root != bytes(posted.args["awardsRoot"]):
            raise CommitmentError(f"the awards logged in {tx_hash} do not make up the chunk's root",
                                  hint="the node's logs are incomplete or altered: read them from another node")
        out += [AwardProof(int(posted.args["chunk"]), q, t, w, lw, tuple(proof), d)
                for (d, q, t, w, lw), proof in zip(leaves, proofs, strict=True)]
    return out


@dataclass(frozen=True)
class Superseded:
    """An awarded offer the book had replaced, and what ``proveSuperseded`` needs to show it."""

    result_id: int
    award: AwardProof
    older: Offer
    newer: Offer
    newer_root: bytes
    newer_proof: list[bytes]


def find_superseded(clearing: ClearingCommitmentClient, result_id: int, book: Book) -> list[Superseded]:
    """Every offer a result awarded although the book holds a newer offer of the same asset or
    portfolio whose window overlaps it, in either direction (rule 3), with the proof the contract takes."""
    offer_of = {d: o for o, d in book.digests.items()}
    by_subject: dict[tuple[int, int, int], list[Offer]] = defaultdict(list)
    for offer in book.accepted:
        by_subject[offer.subject].append(offer)
    found: dict[bytes, Superseded] = {}
    for award in award_proofs(clearing, result_id):
        older = offer_of.get(award.offer_digest)
        if older is None or award.offer_digest in found:
            continue
        newer = newest_overlapping(older, by_subject[older.subject], book.isp_seconds)
        if newer is not None:
            root, proof = book.proofs[book.digests[newer]]
            found[award.offer_digest] = Superseded(result_id, award, older, newer, root, proof)
    return list(found.values())


def prove_superseded(clearing: ClearingCommitmentClient, signer: Signer, proof: Superseded) -> None:
    """Void the result that awarded a superseded offer (anyone may, within the challenge window)."""
    clearing.prove_superseded(proof.result_id, proof.award, structs.Offer.like(proof.older),
                              structs.Offer.like(proof.newer),
                              proof.newer_root, proof.newer_proof, sender=signer)


# ------------------------------------------------------- what the clear, challenge and finalise commands do


@dataclass(frozen=True)
class Posted:
    """A result posted: its id, the gas of all its transactions, its chunks, and the day's state after."""

    result_id: int
    gas_used: int
    chunks: int
    state: DayState


def commit(deployment: Deployment, market: int, day_start: int, awards: list[Award], book: Book, *,
           progress: Callable[[int, int], None] | None = None) -> Posted:
    """Post ``awards`` as a result of the day, signed by the deployment's signer: the day's first
    result, or a challenge of the one in force (the contract keeps it only if it ranks higher)."""
    result_id, gas, chunks = post_result(deployment.clearing, deployment.sender(), market, day_start, awards, book,
                                         deployment.params(market).isp_seconds, progress=progress)
    return Posted(result_id, gas, chunks, day_state(deployment, market, day_start))


@dataclass(frozen=True)
class Voided:
    """What ``void_superseded`` found: the result in force (0: none), the superseded offers it awarded."""

    result_id: int
    superseded_offers: int  # the first was proven: the result is void when there is any


def void_superseded(deployment: Deployment, market: int, day_start: int, book: Book) -> Voided:
    """Void the day's result in force if it awarded an offer ``book`` (the day's) holds a newer one
    for, proving the first found (the deployment's signer sends it); nothing when none is in force."""
    current = day_state(deployment, market, day_start).current
    if current == 0:
        return Voided(0, 0)
    found = find_superseded(deployment.clearing, current, book)
    if found:
        prove_superseded(deployment.clearing, deployment.sender(), found[0])
    return Voided(current, len(found))


def finalise(deployment: Deployment, market: int, day_start: int) -> int:
    """Make the day's result final after its challenge window (anyone may); returns its id."""
    deployment.clearing.finalise(market, day_start)
    return day_state(deployment, market, day_start).current
