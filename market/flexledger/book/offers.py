"""Offers before they reach the chain, as the CLI and the API both handle them: building an offer's
terms (``offer typed-data``, ``GET /v1/offers/typed-data``), reading a signed one back from its
``{"typedData", "signature"}`` JSON, and judging signed offers against the chain's state now with
the rules' mirror of the OrderBook's checks (:func:`flexledger.rules.orders.offer_problem`), so
that a relay refuses at once what the contract would skip, with the same reason."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flexledger.errors import FlexledgerError
from flexledger.identity.roles import Role
from flexledger.rules.orders import (
    ASSET_ACTIVE,
    SIGNATURE_BYTES,
    BaselineMethod,
    BondState,
    Mode,
    Offer,
    SubjectTerms,
    offer_problem,
)
from flexledger.rules.typed_data import (
    Eip712Domain,
    TypedDataError,
    recover_strict,
    typed_data_from_json,
)

if TYPE_CHECKING:
    from flexledger.book.order_book import SignedOffer
    from flexledger.chain.client import ContractClient
    from flexledger.deployment import Deployment


class OfferTermsError(FlexledgerError):
    """Offer terms that cannot make an offer (both or neither of asset and portfolio, no baseline)."""


class SignedOfferError(FlexledgerError):
    """A signed offer that cannot be read, or that was signed for another order book."""

    hint = "sign typed data from `flexledger offer typed-data` (or GET /v1/offers/typed-data)"


@dataclass(frozen=True)
class OfferTerms:
    """What a seller chooses about an offer; :func:`build_offer` fills in the rest from the chain."""

    market: int
    start: int
    power_w: int
    price: int
    asset: int = 0
    portfolio: int = 0
    isps: int = 1
    direction: int = 0
    mode: Mode = Mode.DIVISIBLE
    min_power_w: int | None = None
    baseline_method: BaselineMethod = BaselineMethod.COMMITTED
    baseline_hash: str | None = None
    valid_for: int = 86_400
    nonce: int | None = None


def next_nonce(deployment: Deployment, asset: int, portfolio: int) -> int:
    """The nonce a new offer of the asset (or, asset 0, the portfolio) takes: one past its last accepted."""
    book = deployment.order_book
    return (book.asset_nonce(asset) if asset else book.portfolio_nonce(portfolio)) + 1


def build_offer(deployment: Deployment, terms: OfferTerms) -> Offer:
    """The offer ``terms`` describe: its minimum by mode, its expiry from the chain's clock, and by
    default the next nonce of its asset or portfolio (OfferTermsError for terms no offer has)."""
    book = deployment.order_book
    if (terms.asset == 0) == (terms.portfolio == 0):
        raise OfferTermsError("give exactly one of asset and portfolio")
    if terms.baseline_method is BaselineMethod.COMMITTED and not terms.baseline_hash:
        raise OfferTermsError("a COMMITTED baseline needs its hash",
                              hint="commit one with `flexledger baseline commit`, or use the ROLLING_AVERAGE method")
    baseline = bytes(32)
    if terms.baseline_method is BaselineMethod.COMMITTED:
        try:
            baseline = bytes.fromhex(str(terms.baseline_hash).removeprefix("0x"))
        except ValueError:
            baseline = b""
        if len(baseline) != 32:
            raise OfferTermsError("the baseline hash must be 32 bytes of hex")
    minimum = {Mode.DIVISIBLE: 0, Mode.ALL_OR_NOTHING: terms.power_w}.get(terms.mode, terms.min_power_w or 0)
    nonce = next_nonce(deployment, terms.asset, terms.portfolio) if terms.nonce is None else terms.nonce
    offer = Offer(terms.market, terms.asset, terms.portfolio, terms.start, terms.isps, terms.direction,
                  terms.power_w, terms.price, int(terms.mode), minimum, int(terms.baseline_method), baseline,
                  book.conn.latest_timestamp() + terms.valid_for, nonce)
    if not offer.fits():
        raise OfferTermsError("a term is beyond what the OrderBook's offer can carry (uint32 power, uint96 price, ...)")
    return offer


def read_signed(item: Any, domain: Eip712Domain, where: str) -> SignedOffer:
    """One ``{"typedData", "signature"}`` item, checked to be an Offer for ``domain`` that the
    book can carry (a 65-byte signature, every field within its type)."""
    from flexledger.book.order_book import SignedOffer

    try:
        typed = typed_data_from_json(item["typedData"])
        signature = bytes.fromhex(str(item["signature"]).removeprefix("0x"))
        if typed.primary_type != "Offer":
            raise TypedDataError(f"its primary type is {typed.primary_type}, not Offer")
        offer = Offer.from_message(typed.message)
    except (KeyError, TypeError, ValueError, AttributeError, TypedDataError) as exc:
        raise SignedOfferError(f"{where} is not a signed offer ({exc})") from None
    if typed.domain != domain:
        raise SignedOfferError(f"{where} was signed for {typed.domain.to_json()}, not this order book",
                               hint="print the typed data again with `flexledger offer typed-data`")
    # the book takes offers packed and signatures of 65 bytes: neither can carry more
    if len(signature) != SIGNATURE_BYTES or not offer.fits():
        raise SignedOfferError(f"{where} has a signature of {len(signature)} bytes (65 wanted) or a field "
                               "beyond its type")
    return SignedOffer(offer, signature)


@dataclass(frozen=True)
class Verdict:
    """What the OrderBook would do with a signed offer now: its EIP-712 digest, its signer, and the
    custom error it would skip it with (None: accepted)."""

    digest: bytes
    signer: str | None
    problem: str | None


class BlockReads:
    """The views :func:`judge_offers` asks, read at one block and kept: the state at a block never
    changes, so lists judged between two blocks read each asset's terms, nonce and bond once."""

    def __init__(self, deployment: Deployment, number: int, timestamp: int, block_hash: bytes) -> None:
        self.deployment, self.number, self.timestamp, self.hash = deployment, number, timestamp, block_hash
        self._values: dict[tuple[str, str, tuple[Any, ...]], Any] = {}

    def many(self, client: ContractClient, sig: str, calls: list[tuple[Any, ...]]) -> list[Any]:
        """``client.call_many(sig, calls)`` at this block, asking the node only what is not kept."""
        missing = sorted({c for c in calls if (client.address, sig, c) not in self._values})
        if missing:
            fetched = client.call_many(sig, missing, block=self.number)
            self._values.update({(client.address, sig, c): v for c, v in zip(missing, fetched, strict=True)})
        return [self._values[(client.address, sig, c)] for c in calls]


class ChainReads:
    """The latest block's :class:`BlockReads`, kept until the chain moves on (a new block, or another
    block at the same height after a reorg: keyed by hash). Shared by a server's requests."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self._current: BlockReads | None = None
        self._lock = threading.Lock()

    def latest(self) -> BlockReads:
        block = self.deployment.conn.w3.eth.get_block("latest")
        with self._lock:
            if self._current is None or self._current.hash != bytes(block["hash"]):
                self._current = BlockReads(self.deployment, int(block["number"]), int(block["timestamp"]),
                                           bytes(block["hash"]))
            return self._current


def judge_offers(deployment: Deployment, offers: list[SignedOffer], *, relayer: str, now: int,
                 last_nonces: dict[tuple[int, int], int] | None = None,
                 reads: BlockReads | None = None) -> list[Verdict]:
    """Each offer judged as if relayed by ``relayer`` in this order at ``now``, one after the other
    (an accepted offer raises its subject's last nonce for the next), on the chain's state at
    ``reads``' block (default: the latest, read afresh). ``last_nonces`` (by (asset, portfolio))
    adds nonces the chain has not seen yet, such as offers already queued.

    The chain's state is read in JSON-RPC batches (one round trip per view for the whole list), so
    judging a list of 200 costs a handful of requests rather than a thousand.
    """
    at = reads or ChainReads(deployment).latest()
    book, assets, roles = deployment.order_book, deployment.assets, deployment.roles
    (markets,) = at.many(deployment.markets, "marketCount()", [()])
    params = {o.offer.market: deployment.params(o.offer.market) for o in offers if 0 < o.offer.market <= markets}
    asset_ids = sorted({o.offer.asset for o in offers if o.offer.asset and not o.offer.portfolio})
    portfolio_ids = sorted({o.offer.portfolio for o in offers if o.offer.portfolio and not o.offer.asset})
    asset_terms = dict(zip(asset_ids, at.many(assets, "offerTerms(uint64)", [(a,) for a in asset_ids]), strict=True))
    asset_nonces = dict(zip(asset_ids, at.many(book, "assetNonce(uint64)", [(a,) for a in asset_ids]), strict=True))
    portfolio_terms = dict(zip(portfolio_ids, at.many(assets, "portfolioTerms(uint32)", [(p,) for p in portfolio_ids]),
                               strict=True))
    portfolio_nonces = dict(zip(portfolio_ids, at.many(book, "portfolioNonce(uint32)", [(p,) for p in portfolio_ids]),
                                strict=True))
    portfolio_markets = dict(zip(portfolio_ids, at.many(assets, "marketOfPortfolio(uint32)",
                                                        [(p,) for p in portfolio_ids]), strict=True))
    windows = sorted({(o.offer.asset, o.offer.start, o.offer.start + o.offer.isps * params[o.offer.market].isp_seconds)
                      for o in offers if o.offer.asset in asset_terms and o.offer.market in params})
    market_for = dict(zip(windows, at.many(assets, "marketFor(uint64,uint64,uint64)", windows), strict=True))
    sellers = sorted({str(t[0]) for t in asset_terms.values()} | {str(t[0]) for t in portfolio_terms.values()})
    bonds = dict(zip(sellers, at.many(book, "bondWord(address)", [(s,) for s in sellers]), strict=True))
    credentialed = dict(zip(sellers, at.many(roles, "hasMarketRole(address,bytes32)",
                                             [(s, Role.AGGREGATOR.id) for s in sellers]), strict=True))
    (relayer_is_aggregator,) = at.many(roles, "hasMarketRole(address,bytes32)", [(relayer, Role.AGGREGATOR.id)])
    separator = deployment.book_separator
    last = dict(last_nonces or {})
    out: list[Verdict] = []
    for signed in offers:
        o = signed.offer
        digest = o.digest(separator)
        signer = recover_strict(digest, signed.signature)  # recover_signer, with the separator hashed once
        market_params = params.get(o.market)
        terms: SubjectTerms | None = None
        subject = (o.asset, o.portfolio)
        if o.asset and not o.portfolio:
            owner, _zone, status, in_portfolio, up, down = asset_terms[o.asset]
            end = o.start + o.isps * (market_params.isp_seconds if market_params else 0)
            terms = SubjectTerms(str(owner), status, in_portfolio, up, down,
                                 max(asset_nonces[o.asset], last.get(subject, 0)), BondState.from_word(bonds[str(owner)]),
                                 market_for.get((o.asset, o.start, end), 0))
        elif o.portfolio and not o.asset:
            aggregator, _zone, up, down = portfolio_terms[o.portfolio]
            terms = SubjectTerms(str(aggregator), ASSET_ACTIVE, False, up, down,
                                 max(portfolio_nonces[o.portfolio], last.get(subject, 0)),
                                 BondState.from_word(bonds[str(aggregator)]), portfolio_markets[o.portfolio],
                                 seller_credentialed=credentialed[str(aggregator)])
        problem = offer_problem(o, signer=signer, relayer=relayer, relayer_is_aggregator=relayer_is_aggregator,
                                params=market_params, now=now, terms=terms)
        if problem is None:
            last[subject] = o.nonce
        out.append(Verdict(digest, signer, problem))
    return out

