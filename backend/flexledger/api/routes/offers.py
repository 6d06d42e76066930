"""The aggregator's offer relay: typed data to sign, signed offers in (checked at once, queued),
and each offer's status on its way to the OrderBook."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query
from fastapi import Path as PathParam

from flexledger.api.deps import Caller, Context, Database, Signed, require_role, roles_held
from flexledger.api.problems import ApiProblemError
from flexledger.api.schemas import OfferOut, OffersQueued, SignedOfferIn
from flexledger.book.offers import OfferTerms, OfferTermsError, build_offer
from flexledger.identity.roles import Role
from flexledger.relay.queue import OffersRefusedError, check_offers, enqueue, offer_status
from flexledger.relay.tables import QueuedOffer
from flexledger.rules.lights import Direction
from flexledger.rules.orders import BaselineMethod, Mode
from flexledger.times import parse_time

router = APIRouter(prefix="/offers", tags=["offers"])
Submitter = Annotated[Caller, Depends(require_role(Role.AGGREGATOR, Role.PROSUMER))]
U32, U64 = 2**32 - 1, 2**64 - 1


def _out(row: QueuedOffer) -> OfferOut:
    return OfferOut(digest=row.digest, status=row.status, signer=row.signer, market=row.market, subject=row.subject,
                    nonce=row.nonce, tx_hash=row.tx_hash, reason=row.reason)


@router.get("/typed-data", responses={422: {"description": "Terms no offer can have."}})
def typed_data(
    ctx: Context,
    start: Annotated[str, Query(max_length=40, description="First ISP's start: ISO 8601 (UTC) or Unix seconds.")],
    power: Annotated[int, Query(ge=1, le=U32, description="Power offered per ISP (W).")],
    price: Annotated[int, Query(ge=1, le=2**96 - 1, description="Token base units per MWh.")],
    market: Annotated[int, Query(ge=1, le=U32)] = 1,
    asset: Annotated[int, Query(ge=0, le=U64)] = 0,
    portfolio: Annotated[int, Query(ge=0, le=U32)] = 0,
    isps: Annotated[int, Query(ge=1, le=2**16 - 1)] = 1,
    direction: Literal["UP", "DOWN"] = "UP",
    mode: Literal["DIVISIBLE", "MIN_QUANTITY", "ALL_OR_NOTHING"] = "DIVISIBLE",
    min_power: Annotated[int | None, Query(alias="minPower", ge=0, le=U32)] = None,
    baseline_method: Annotated[Literal["COMMITTED", "ROLLING_AVERAGE"], Query(alias="baselineMethod")] = "COMMITTED",
    baseline_hash: Annotated[str | None, Query(alias="baselineHash", pattern=r"^(0x)?[0-9a-fA-F]{64}$")] = None,
    valid_for: Annotated[int, Query(alias="validFor", ge=1, le=366 * 86_400)] = 86_400,
    nonce: Annotated[int | None, Query(ge=1, le=U32)] = None,
) -> dict[str, Any]:
    """The EIP-712 typed data of an offer (as `flexledger offer typed-data` prints it), for any wallet
    to sign with eth_signTypedData_v4; POST it back with its signature."""
    try:
        when = parse_time(start)
    except ValueError:
        raise ApiProblemError(422, "invalid_request", f"start {start!r} is not Unix seconds or an ISO 8601 time") from None
    if not 0 <= when <= U64:
        raise ApiProblemError(422, "invalid_request", "start is beyond the offer's uint64")
    terms = OfferTerms(market, when, power, price, asset=asset, portfolio=portfolio, isps=isps,
                       direction=int(Direction[direction]), mode=Mode[mode], min_power_w=min_power,
                       baseline_method=BaselineMethod[baseline_method], baseline_hash=baseline_hash,
                       valid_for=valid_for, nonce=nonce)
    try:
        offer = build_offer(ctx.deployment, terms)
    except OfferTermsError as exc:
        raise ApiProblemError(422, "invalid_offer_terms", exc.message, hint=exc.hint) from None
    return offer.typed(ctx.deployment.book_domain).to_json()


@router.post("", response_model=OffersQueued, status_code=202, responses={
    401: {"description": "Not signed in."}, 403: {"description": "Not an aggregator, or a prosumer relaying "
                                                                 "offers it did not sign."},
    409: {"description": "Already submitted (by digest)."}, 422: {"description": "Refused, each offer's reason."}})
def submit(ctx: Context, session: Database, who: Submitter,
           body: Annotated[SignedOfferIn | list[SignedOfferIn], Body()]) -> OffersQueued:
    """Signed offers (one, or a list), each checked at once as the OrderBook would (signature, domain,
    the asset's owner, window and gate closure, power, nonce, duplicates): all queued, or none."""
    items = body if isinstance(body, list) else [body]
    if not items or len(items) > ctx.settings.max_offers:
        raise ApiProblemError(422, "invalid_request", f"send 1 to {ctx.settings.max_offers} offers at a time")
    try:
        intake = check_offers(session, ctx.deployment, [{"typedData": i.typedData, "signature": i.signature} for i in items], relayer=ctx.relayer,
                              chain=ctx.chain)
    except OffersRefusedError as exc:
        raise ApiProblemError(exc.status, "offers_refused" if exc.status == 422 else "duplicate", exc.message,
                         hint=exc.hint, offers=exc.problems) from None
    if any(signer != who.address for signer in intake.signers) and Role.AGGREGATOR not in roles_held(
            ctx, who.address, (Role.AGGREGATOR,)):
        raise ApiProblemError(403, "forbidden", "a prosumer relays only offers it signed itself",
                         hint="have the seller's aggregator submit them")
    try:
        rows = enqueue(session, intake, submitter=who.address)
    except OffersRefusedError as exc:
        raise ApiProblemError(exc.status, "duplicate", exc.message, hint=exc.hint) from None
    return OffersQueued(offers=[_out(r) for r in rows])


@router.get("/{digest}", response_model=OfferOut, responses={401: {"description": "Not signed in."},
                                                            404: {"description": "No offer of yours."}})
def status(session: Database, who: Signed,
           digest: Annotated[str, PathParam(pattern=r"^0x[0-9a-fA-F]{64}$")]) -> OfferOut:
    """Where one offer stands: queued, sending, sent (tx hash), accepted or skipped (the reason).
    Seen by whoever submitted or signed it."""
    row = offer_status(session, digest)
    if row is None or who.address not in (row.submitter, row.signer):
        raise ApiProblemError(404, "not_found", f"no offer {digest} of yours")
    return _out(row)
