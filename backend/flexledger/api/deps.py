"""The routes' dependencies: the shared context, a database session, and the caller with its
roles, read from the RoleRegistry at each request (a revoked credential loses access at once)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from flexledger.api.auth import KEY_PREFIX, TOKEN_PREFIX, CredentialsError, key_party
from flexledger.api.context import ApiContext
from flexledger.api.problems import ApiProblemError
from flexledger.identity.roles import Role

bearer = HTTPBearer(auto_error=False, description="A session token (POST /v1/auth/login) or an API key (POST /v1/keys).")


def context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.context
    return ctx


Context = Annotated[ApiContext, Depends(context)]


def database(ctx: Context) -> Iterator[Session]:
    """A session per request; routes commit what they change, anything else is rolled back."""
    with ctx.sessions() as session:
        yield session


Database = Annotated[Session, Depends(database)]


@dataclass(frozen=True)
class Caller:
    address: str
    by_key: bool  # an API key rather than a wallet's sign-in


def caller(ctx: Context, session: Database,
           credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]) -> Caller:
    if credentials is None:
        raise ApiProblemError(401, "unauthorized", "this needs a signed-in caller",
                         hint="send Authorization: Bearer <token from POST /v1/auth/login, or an API key>")
    token = credentials.credentials
    if token.startswith(TOKEN_PREFIX):
        return Caller(ctx.tokens.address(token, int(time.time())), by_key=False)
    if token.startswith(KEY_PREFIX):
        return Caller(key_party(session, token), by_key=True)
    raise CredentialsError("the bearer credential is neither a session token nor an API key")


Signed = Annotated[Caller, Depends(caller)]


def roles_held(ctx: ApiContext, address: str, roles: tuple[Role, ...] = tuple(Role)) -> list[Role]:
    """Which of ``roles`` the address holds now (one JSON-RPC batch)."""
    held = ctx.deployment.roles.call_many("hasMarketRole(address,bytes32)", [(address, r.id) for r in roles])
    return [r for r, h in zip(roles, held, strict=True) if h]


def require_role(*roles: Role) -> Callable[..., Caller]:
    """A dependency: the signed-in caller, if it holds one of ``roles`` now (403 otherwise)."""

    def check(ctx: Context, who: Signed) -> Caller:
        if not roles_held(ctx, who.address, roles):
            raise ApiProblemError(403, "forbidden", f"{who.address} holds none of the roles "
                             f"{', '.join(r.value for r in roles)} (or its credential was revoked)",
                             hint="the market authority issues role credentials (`flexledger role grant`)")
        return who

    return check
