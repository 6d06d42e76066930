"""Requests and offers as OrderBook takes them: the offer's EIP-712 type, the escrow formula, the
book's running digest, and the eligibility checks an offer passes before it enters the book.

Held against the contract by property tests (tests/test_orderbook_rules.py): for the same offer
and the same chain state, :func:`offer_problem` names the custom error the contract skips the
offer with, or None when it accepts it.

- Prices are token base units per MWh; power is W; a window is ``isps`` ISPs from ``start``.
- A request's escrow is its maximum exposure, rounded up: ``ceil(power * isps * isp_seconds *
  max_price / 3.6e9)``.
- A window starts on an ISP boundary, lies within one market day, and is open until its market
  day's gate closure (``day_start >= now + gate_closure_seconds``); its day starts at most
  ``MAX_ADVANCE_SECONDS`` (30 days) ahead, which bounds how long an offer can cost its seller.
- A seller sells only with free bond (beyond what settlements lock), no debt, and no withdrawal
  notice running (:func:`bond_problem`); the bond is one word on chain (:class:`BondState`).
- Offer nonces are per asset (or portfolio) and strictly increasing; a newer offer for the same
  asset, window and direction replaces the older one in the book.
- Utilisation modes: ``DIVISIBLE`` takes any amount (minimum 0), ``MIN_QUANTITY`` 0 or at least
  the minimum (0 < minimum <= power), ``ALL_OR_NOTHING`` all or nothing (minimum = power).
- The baseline is committed (its hash, revealed at settlement) or a named standard method
  (``ROLLING_AVERAGE``, computed by the oracle from history: no hash).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, fields
from enum import IntEnum
from typing import Any

from eth_abi import encode
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from flexledger.addresses import checksum
from flexledger.rules.market import DAY, MarketParams
from flexledger.rules.typed_data import Eip712Domain, TypedData, recover_strict, typed_digest

SECONDS_PER_MWH_UNIT = 3_600_000_000  # W*s in a MWh
ASSET_ACTIVE = 2  # AssetRegistry.Status
ASSET_STATE_SHIFT = 184  # AssetRegistry.offerWord: the state byte
ASSET_STATUS_MASK = 3  # its Status bits (0: deregistered)
REQUEST_TAG = keccak(text="flexledger.request")
CANCEL_TAG = keccak(text="flexledger.cancel")
UINT128_MAX = 2**128 - 1


class Product(IntEnum):
    ACTIVATION = 0
    AVAILABILITY = 1


class Purpose(IntEnum):
    CONGESTION = 0
    BALANCING = 1
    VOLTAGE = 2


class Mode(IntEnum):
    DIVISIBLE = 0
    MIN_QUANTITY = 1
    ALL_OR_NOTHING = 2


class BaselineMethod(IntEnum):
    COMMITTED = 0
    ROLLING_AVERAGE = 1


OFFER_TYPES = {
    "Offer": [
        {"name": "market", "type": "uint32"},
        {"name": "asset", "type": "uint64"},
        {"name": "portfolio", "type": "uint32"},
        {"name": "start", "type": "uint64"},
        {"name": "isps", "type": "uint16"},
        {"name": "direction", "type": "uint8"},
        {"name": "powerW", "type": "uint32"},
        {"name": "price", "type": "uint96"},
        {"name": "mode", "type": "uint8"},
        {"name": "minPowerW", "type": "uint32"},
        {"name": "baselineMethod", "type": "uint8"},
        {"name": "baseline", "type": "bytes32"},
        {"name": "expiry", "type": "uint64"},
        {"name": "nonce", "type": "uint32"},
    ]
}
OFFER_TYPEHASH = keccak(text="Offer(" + ",".join(f"{t['type']} {t['name']}" for t in OFFER_TYPES["Offer"]) + ")")
OFFER_ABI_TYPES = ["bytes32", *(t["type"] for t in OFFER_TYPES["Offer"])]
REQUEST_ABI = "(uint32,uint32,uint64,uint16,uint8,uint32,uint256,uint8,uint8)"
# Byte widths of the offer's fields, in order: ``submitOffers`` takes them packed (93 bytes), and
# ``OffersAccepted`` carries them so, each after its seller's 20-byte address.
PACKED_WIDTHS = (4, 8, 4, 8, 2, 1, 4, 12, 1, 4, 1, 32, 8, 4)
PACKED_OFFER = sum(PACKED_WIDTHS)
SIGNATURE_BYTES = 65
ACCEPTED_ENTRY = 20 + PACKED_OFFER


@dataclass(frozen=True)
class Offer:
    """A seller's offer, field for field as the EIP-712 ``Offer`` type (asset 0 for a portfolio offer)."""

    market: int
    asset: int
    portfolio: int
    start: int
    isps: int
    direction: int
    power_w: int
    price: int
    mode: int
    min_power_w: int
    baseline_method: int
    baseline: bytes
    expiry: int
    nonce: int

    def message(self) -> dict[str, Any]:
        """The EIP-712 message (the contract's field names)."""
        return {t["name"]: v for t, v in zip(OFFER_TYPES["Offer"], self.as_tuple(), strict=True)}

    def as_tuple(self) -> tuple[Any, ...]:
        """In the contract's struct order (``OrderBook.Offer``, as ``offerDigest`` takes it); spelt
        out rather than read from ``fields()``, which costs more than hashing the offer."""
        return (self.market, self.asset, self.portfolio, self.start, self.isps, self.direction, self.power_w,
                self.price, self.mode, self.min_power_w, self.baseline_method, self.baseline, self.expiry, self.nonce)

    def typed(self, domain: Eip712Domain) -> TypedData:
        return TypedData(domain, "Offer", OFFER_TYPES, self.message())

    def digest(self, domain_separator: bytes) -> bytes:
        """The EIP-712 digest, as ``typed(domain).digest()`` computes it, without eth-account's
        generic encoder: the struct is flat and static, so hashStruct is one keccak over the type
        hash and the ABI words (reading a book of 100,000 offers needs this to be fast)."""
        values = self.as_tuple()
        if self.fits():  # each field within its Solidity width: its ABI word is the value, right-aligned
            words = b"".join(v if isinstance(v, bytes) else v.to_bytes(32, "big") for v in values)
            return typed_digest(domain_separator, keccak(OFFER_TYPEHASH + words))
        struct_hash = keccak(encode(OFFER_ABI_TYPES, [OFFER_TYPEHASH, *values]))
        return typed_digest(domain_separator, struct_hash)

    def sign(self, account: LocalAccount, domain: Eip712Domain) -> bytes:
        return self.typed(domain).sign(account)

    def pack(self) -> bytes:
        """As ``submitOffers`` takes it and ``OffersAccepted`` carries it (``abi.encodePacked`` of
        the fields); ValueError for a field beyond its Solidity type, which no packing can carry."""
        if not self.fits():
            raise ValueError(f"a field of {self} does not fit its Solidity type")
        out = b""
        for value, width in zip(self.as_tuple(), PACKED_WIDTHS, strict=True):
            out += value if isinstance(value, bytes) else int(value).to_bytes(width, "big")
        return out

    @classmethod
    def unpack(cls, packed: bytes) -> Offer:
        if len(packed) != sum(PACKED_WIDTHS):
            raise ValueError(f"a packed offer has {sum(PACKED_WIDTHS)} bytes, not {len(packed)}")
        values: list[Any] = []
        at = 0
        for f, width in zip(fields(cls), PACKED_WIDTHS, strict=True):
            chunk = packed[at:at + width]
            values.append(chunk if f.name == "baseline" else int.from_bytes(chunk, "big"))
            at += width
        return cls(*values)

    def fits(self) -> bool:
        """Whether every field fits its Solidity type (else the contract calls the offer malformed)."""
        return all((len(v) == 32) if isinstance(v, bytes) else (0 <= v < 2 ** (8 * w))
                   for v, w in zip(self.as_tuple(), PACKED_WIDTHS, strict=True))

    @property
    def subject(self) -> tuple[int, int, int]:
        """Whose meters deliver the offer: (market, asset, 0) or (market, 0, portfolio)."""
        return (self.market, self.asset, self.portfolio)

    def overlaps(self, other: Offer, isp_seconds: int) -> bool:
        """Whether both offers sell the same asset's or portfolio's meters in a common ISP,
        whatever their directions (one meter has one baseline and one delivery per ISP)."""
        return (self.subject == other.subject and self.start < other.start + other.isps * isp_seconds
                and other.start < self.start + self.isps * isp_seconds)

    @classmethod
    def from_fields(cls, source: object) -> Offer:
        """The offer held by any object with these field names: OrderBook's ``Offer`` struct, as
        the chain's bindings decode it (the rules import no chain code)."""
        return cls(**{f.name: getattr(source, f.name) for f in fields(cls)})

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> Offer:
        values: list[Any] = []
        for t in OFFER_TYPES["Offer"]:
            raw = message[t["name"]]
            if t["type"] == "bytes32":
                values.append(bytes.fromhex(raw.removeprefix("0x")) if isinstance(raw, str) else bytes(raw))
            else:
                values.append(int(raw))
        return cls(*values)


@dataclass(frozen=True)
class RequestParams:
    """A flexibility request, as ``postRequest`` takes it."""

    market: int
    zone: int
    start: int
    isps: int
    direction: int
    power_w: int
    max_price: int
    product: int = Product.ACTIVATION
    purpose: int = Purpose.CONGESTION

    def as_tuple(self) -> tuple[int, int, int, int, int, int, int, int, int]:
        return (int(self.market), int(self.zone), int(self.start), int(self.isps), int(self.direction),
                int(self.power_w), int(self.max_price), int(self.product), int(self.purpose))

    @classmethod
    def from_fields(cls, source: object) -> RequestParams:
        """The request held by any object with these field names: OrderBook's ``RequestParams``
        struct, as the chain's bindings decode it."""
        return cls(**{f.name: int(getattr(source, f.name)) for f in fields(cls)})


def max_exposure(power_w: int, isps: int, isp_seconds: int, max_price: int) -> int:
    """A request's escrow: its maximum exposure in token base units, rounded up."""
    return -(-(power_w * isps * isp_seconds * max_price) // SECONDS_PER_MWH_UNIT)


def escrow_overflows(power_w: int, isps: int, isp_seconds: int, max_price: int) -> bool:
    return max_price > UINT128_MAX or power_w * isps * isp_seconds * max_price >= 2**256


def unpack_accepted(data: bytes) -> list[tuple[str, Offer]]:
    """The (seller, offer) entries of an ``OffersAccepted`` event's ``offers``, in order."""
    if len(data) % ACCEPTED_ENTRY:
        raise ValueError(f"accepted offers come in entries of {ACCEPTED_ENTRY} bytes, not {len(data)} in all")
    return [(checksum(data[at:at + 20]), Offer.unpack(data[at + 20:at + ACCEPTED_ENTRY]))
            for at in range(0, len(data), ACCEPTED_ENTRY)]


def chain_digest(previous: bytes, entry: bytes) -> bytes:
    """One step of a market day's running digest: ``keccak256(abi.encode(previous, entry))``."""
    return keccak(previous + entry)


def request_entry(request_id: int, buyer: str, params: RequestParams, escrow: int) -> bytes:
    return keccak(encode(["bytes32", "uint64", "address", REQUEST_ABI, "uint256"],
                         [REQUEST_TAG, request_id, buyer, params.as_tuple(), escrow]))


def cancel_entry(request_id: int) -> bytes:
    return keccak(encode(["bytes32", "uint64"], [CANCEL_TAG, request_id]))


def recover_signer(offer: Offer, domain: Eip712Domain, signature: bytes) -> str | None:
    """Who signed ``offer``, as OpenZeppelin's ``ECDSA.tryRecover`` sees it (None if no one)."""
    return recover_strict(offer.digest(domain.separator()), signature)


MAX_ADVANCE_SECONDS = 30 * DAY  # OrderBook.MAX_ADVANCE_SECONDS


@dataclass(frozen=True)
class BondState:
    """A seller's bond as ``OrderBook.bondWord`` packs it (contracts/src/market/BondWord.sol)."""

    amount: int
    locked: int  # held for penalties of settlements not yet final
    withdrawing: int  # under withdrawal notice (still drawn for penalties until it leaves)
    notice_ends: int  # 0: no notice
    indebted: bool  # owes a penalty its bond could not pay

    @classmethod
    def from_word(cls, word: int) -> BondState:
        mask = (1 << 64) - 1
        return cls(word & mask, (word >> 64) & mask, (word >> 128) & mask, (word >> 192) & ((1 << 40) - 1),
                   bool(word >> 255))

    @property
    def free(self) -> int:
        return self.amount - self.locked

    def withdrawable(self, now: int) -> int:
        """What could leave at ``now``: the announced part, once its notice is over, that no settlement locks."""
        if self.notice_ends == 0 or now < self.notice_ends:
            return 0
        return min(self.withdrawing, self.free)


def bond_problem(bond: BondState) -> str | None:
    """DESIGN: a seller with debt, no free bond, or a bond under withdrawal notice does not sell."""
    if bond.indebted or bond.notice_ends != 0 or bond.amount <= bond.locked:
        return "OrderBookSellerNotBonded"
    return None


def window_problem(start: int, isps: int, params: MarketParams, now: int) -> str | None:
    """Why a window cannot be traded now (the contract's error name), or None."""
    if start % params.isp_seconds:
        return "OrderBookWindowNotAligned"
    if now >= start:
        return "OrderBookWindowInPast"
    day = params.day_start(start)
    if now + params.gate_closure_seconds > day:
        return "OrderBookAfterGateClosure"
    if day > now + MAX_ADVANCE_SECONDS:
        return "OrderBookTooFarAhead"
    if isps == 0 or start + isps * params.isp_seconds > day + DAY:
        return "OrderBookInvalidWindow"
    return None


def terms_problem(offer: Offer) -> str | None:
    """What an offer says about itself: mode and minimum, baseline."""
    modes = {
        Mode.DIVISIBLE: offer.min_power_w == 0,
        Mode.MIN_QUANTITY: 0 < offer.min_power_w <= offer.power_w,
        Mode.ALL_OR_NOTHING: offer.min_power_w == offer.power_w,
    }
    if offer.mode not in {m.value for m in Mode} or not modes[Mode(offer.mode)]:
        return "OrderBookInvalidMode"
    committed = offer.baseline_method == BaselineMethod.COMMITTED
    if offer.baseline_method not in {b.value for b in BaselineMethod} or committed == (offer.baseline == bytes(32)):
        return "OrderBookInvalidBaseline"
    return None


@dataclass(frozen=True)
class SubjectTerms:
    """What the chain says about an offer's asset or portfolio (AssetRegistry.offerTerms / portfolioTerms)."""

    seller: str  # owner or aggregator; the zero address for an unknown portfolio
    status: int  # an asset's AssetRegistry.Status; ACTIVE for a known portfolio
    in_portfolio: bool  # an asset that belongs to a portfolio (its aggregator offers it)
    up_w: int
    down_w: int
    last_nonce: int
    bond: BondState  # the seller's (OrderBook.bondWord)
    # the market the asset sells in for every ISP of the offer's window (AssetRegistry.marketFor,
    # 0 when the window spans a change), or the portfolio's (marketOfPortfolio)
    market: int
    seller_credentialed: bool = True  # a portfolio's aggregator holds the AGGREGATOR role now


def offer_problem(
    offer: Offer,
    *,
    signer: str | None,
    relayer: str,
    relayer_is_aggregator: bool,
    params: MarketParams | None,
    now: int,
    terms: SubjectTerms | None,
) -> str | None:
    """The custom error OrderBook skips ``offer`` with, or None when it accepts it (same order of checks).

    ``signer`` is the recovered address (None for a signature that recovers to none); ``terms``
    is None when the offer names both or neither of asset and portfolio; ``params`` is None for
    an unknown market.
    """
    if not offer.fits():
        raise ValueError("the offer has a field beyond its Solidity type: it cannot be packed for submitOffers")
    if signer is None:
        return "OrderBookInvalidSignature"
    if not relayer_is_aggregator and signer != relayer:
        return "OrderBookNotRelayer"
    if params is None:
        return "OrderBookUnknownMarket"
    problem = window_problem(offer.start, offer.isps, params, now)
    if problem:
        return problem
    if now > offer.expiry:
        return "OrderBookOfferExpired"
    if offer.direction > 1:
        return "OrderBookInvalidDirection"
    if offer.price == 0:
        return "OrderBookZeroPrice"
    problem = terms_problem(offer)
    if problem:
        return problem
    if terms is None or (offer.asset != 0) == (offer.portfolio != 0):
        return "OrderBookInvalidSubject"
    if offer.asset:
        if terms.status != ASSET_ACTIVE:
            return "OrderBookAssetNotActive"
        if terms.in_portfolio:
            return "OrderBookAssetInPortfolio"
        if terms.market != offer.market:  # one meter sells in one market per ISP
            return "OrderBookWrongMarket"
    elif int(terms.seller, 16) == 0:
        return "OrderBookUnknownPortfolio"
    elif not terms.seller_credentialed:
        return "RoleGatedMissingRole"
    elif terms.market != offer.market:
        return "OrderBookWrongMarket"
    if signer != terms.seller:
        return "OrderBookNotSeller"
    problem = bond_problem(terms.bond)
    if problem:
        return problem
    prequalified = terms.up_w if offer.direction == 0 else terms.down_w
    if offer.power_w == 0 or offer.power_w > prequalified:
        return "OrderBookInvalidPower"
    if offer.nonce <= terms.last_nonce:
        return "OrderBookStaleNonce"
    return None


def closure_problem(word_now: int, word_then: int, portfolio_then: int, direction: int, power_w: int) -> str | None:
    """Why ClearingCommitment refuses an asset's offer judged at its day's gate closure, None if it
    takes it (DESIGN "Money safety": mappings and membership as of the gate closure).
    ``word_now`` is ``AssetRegistry.offerWord`` now; ``word_then`` and ``portfolio_then`` are
    ``offerWordAt(asset, closure)``: the record (zone, status, prequalified power) and the
    portfolio the asset was in at the gate closure."""
    if word_now >> ASSET_STATE_SHIFT & ASSET_STATUS_MASK == 0:  # deregistered: its meter may serve another asset
        return "ClearingAssetInPortfolio"
    if portfolio_then:
        return "ClearingAssetInPortfolio"
    prequalified = word_then >> (192 if direction == 0 else 224) & 0xFFFFFFFF
    if word_then >> ASSET_STATE_SHIFT & ASSET_STATUS_MASK != ASSET_ACTIVE or prequalified < power_w:
        return "ClearingAssetTermsChanged"
    return None


def portfolio_power(words_then: Iterable[int], direction: int) -> int:
    """What a portfolio may sell in ``direction`` as judged at a time t: the prequalified power of
    its members at t (``AssetRegistry.membersAt``) that were ACTIVE at t, each as mapped at t
    (``offerWordAt``: the history, so a member that left, was re-mapped or was deregistered after t
    counts as it was). ``AssetRegistry.portfolioTermsAt`` sums the same on chain; the book's check
    at posting (``portfolioTerms``) is this sum as of now."""
    shift = 192 if direction == 0 else 224
    return sum(w >> shift & 0xFFFFFFFF for w in words_then
               if w >> ASSET_STATE_SHIFT & ASSET_STATUS_MASK == ASSET_ACTIVE)


def portfolio_closure_problem(words_then: Iterable[int], direction: int, power_w: int) -> str | None:
    """Why ClearingCommitment refuses a portfolio's offer whose aggregator held its role at the
    day's gate closure, None if it takes it: the offer's power above ``portfolio_power`` of the
    members' records at the gate closure. The contract compares the offer's signed power, not
    what is awarded of it, so an offer above that sum is refused whole, as an asset's is."""
    return "ClearingPortfolioTermsChanged" if portfolio_power(words_then, direction) < power_w else None


def asset_zone(word: int) -> int:
    """The zone in an ``AssetRegistry.offerWord`` (or ``offerWordAt``) record."""
    return word >> 160 & 0xFFFFFF


def newest_overlapping(offer: Offer, accepted: Iterable[Offer], isp_seconds: int) -> Offer | None:
    """Rule 3: the newest accepted offer (higher nonce) of the same asset or portfolio whose window
    overlaps ``offer``'s, in either direction, which replaces it; None while ``offer`` is in force.
    ``ClearingCommitment.proveSuperseded`` voids a result that awarded a replaced offer."""
    newer = [o for o in accepted if o.nonce > offer.nonce and o.overlaps(offer, isp_seconds)]
    return max(newer, key=lambda o: o.nonce, default=None)


def overlapping_pairs(offers: Iterable[Offer], isp_seconds: int) -> list[tuple[Offer, Offer]]:
    """Every pair of the offers that sell one asset's or portfolio's meters in a common ISP (what a
    result must never award together: ``ClearingCommitment`` refuses it, ``ClearingOffersOverlap``)."""
    by_subject: dict[tuple[int, int, int], list[Offer]] = defaultdict(list)
    for offer in offers:
        by_subject[offer.subject].append(offer)
    return [(a, b) for same in by_subject.values() for i, a in enumerate(same) for b in same[i + 1:]
            if a.overlaps(b, isp_seconds)]


def offers_in_force(accepted: list[Offer], isp_seconds: int) -> list[Offer]:
    """The book's offers in force, in the order accepted: those no newer offer of their asset or
    portfolio overlaps (rule 3, ``newest_overlapping``). So at most one offer per asset or
    portfolio is in force in any ISP, and an asset's offers never add up above its power."""
    by_subject: dict[tuple[int, int, int], list[Offer]] = defaultdict(list)
    for offer in accepted:
        by_subject[offer.subject].append(offer)
    return [o for o in accepted if newest_overlapping(o, by_subject[o.subject], isp_seconds) is None]
