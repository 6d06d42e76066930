"""Sign-in with a wallet (EIP-4361): a nonce, then the signed message for a session token."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from fastapi import APIRouter

from flexledger.api.auth import consume_nonce, issue_nonce, wallet_signed
from flexledger.api.deps import Context, Database, Signed, roles_held
from flexledger.api.schemas import LoginIn, MeOut, NonceOut, TokenOut
from flexledger.api.siwe import SiweError, check_message

router = APIRouter(prefix="/auth", tags=["sign-in"])
UNAUTHORIZED: dict[int | str, dict[str, Any]] = {401: {"description": "Refused, with the reason (RFC 9457 problem)."}}


@router.post("/nonce", response_model=NonceOut, status_code=201)
def new_nonce(ctx: Context, session: Database) -> NonceOut:
    """A single-use nonce for one sign-in message (EIP-4361), with what the message must name."""
    row = issue_nonce(session, int(time.time()), ctx.settings.nonce_seconds)
    session.commit()
    expected = ctx.expected
    return NonceOut(nonce=row.nonce, expires_at=row.expires_at, domain=expected.domain, uri=expected.uri,
                    chain_id=expected.chain_id)


@router.post("/login", response_model=TokenOut, responses=UNAUTHORIZED)
def login(body: LoginIn, ctx: Context, session: Database) -> TokenOut:
    """A session token for the address that signed the message; 401 with the reason otherwise
    (malformed, domain, uri, chain_id, expired, not_yet_valid, signature, nonce)."""
    try:
        signature = bytes.fromhex(body.signature.removeprefix("0x"))
    except ValueError:
        raise SiweError("the signature is not hex", reason="signature") from None
    now = dt.datetime.now(dt.UTC)
    message = check_message(body.message, signature, ctx.expected, now=now,
                            signed_by=wallet_signed(ctx.deployment.conn),
                            consume_nonce=lambda nonce, when: consume_nonce(session, nonce, int(when.timestamp())))
    session.commit()
    token, expires = ctx.tokens.issue(message.address, int(now.timestamp()))
    return TokenOut(token=token, expires_at=expires, address=message.address)


@router.get("/me", response_model=MeOut, responses=UNAUTHORIZED)
def me(ctx: Context, who: Signed) -> MeOut:
    """Who the credential is, and the roles it holds now."""
    return MeOut(address=who.address, roles=[r.value for r in roles_held(ctx, who.address)], by_key=who.by_key)
