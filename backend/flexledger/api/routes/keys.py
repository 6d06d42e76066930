"""API keys for machine clients: a signed-in wallet creates, lists and revokes its own."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Path, Response

from flexledger.api.auth import create_key, party_keys, revoke_key
from flexledger.api.deps import Database, Signed
from flexledger.api.problems import ApiProblemError
from flexledger.api.schemas import KeyCreated, KeyIn, KeyOut
from flexledger.api.tables import ApiKey

router = APIRouter(prefix="/keys", tags=["API keys"])
REFUSED: dict[int | str, dict[str, Any]] = {401: {"description": "Not signed in."}, 403: {"description": "An API key cannot manage keys."}}


def _out(row: ApiKey) -> KeyOut:
    return KeyOut(id=row.id, prefix=row.prefix, label=row.label, created_at=row.created_at, revoked_at=row.revoked_at)


@router.post("", response_model=KeyCreated, status_code=201, responses=REFUSED)
def new_key(body: KeyIn, who: Signed, session: Database) -> KeyCreated:
    """A new key acting as the caller; the key is in this answer only."""
    if who.by_key:  # a leaked key must not mint more keys
        raise ApiProblemError(403, "forbidden", "API keys are created by a wallet's sign-in, not by another key",
                         hint="sign in (POST /v1/auth/login) and use the session token")
    row, key = create_key(session, who.address, body.label, int(time.time()))
    session.commit()
    return KeyCreated(**_out(row).model_dump(), key=key)


@router.get("", response_model=list[KeyOut], responses=REFUSED)
def list_keys(who: Signed, session: Database) -> list[KeyOut]:
    """The caller's keys, revoked ones included (never the keys themselves)."""
    return [_out(row) for row in party_keys(session, who.address)]


@router.delete("/{key_id}", status_code=204, responses={**REFUSED, 404: {"description": "No such key of yours."}})
# the id is an INTEGER column: PostgreSQL refuses a parameter beyond 32 bits (the fuzz found it: a 500)
def delete_key(who: Signed, session: Database, key_id: int = Path(ge=1, le=2**31 - 1)) -> Response:
    """Revoke one of the caller's keys (at once: the next request with it gets 401)."""
    if who.by_key:
        raise ApiProblemError(403, "forbidden", "API keys are revoked by a wallet's sign-in, not by a key",
                         hint="sign in (POST /v1/auth/login) and use the session token")
    if not revoke_key(session, who.address, key_id, int(time.time())):
        raise ApiProblemError(404, "not_found", f"you have no key {key_id}")
    session.commit()
    return Response(status_code=204)
