"""Errors as RFC 9457 problem details (``application/problem+json``), everywhere: the API's own
refusals, FastAPI's validation errors, Starlette's 404 and 405, oversized bodies, and anything
unexpected (a 500 whose detail names no internals)."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flexledger.api.auth import CredentialsError
from flexledger.api.siwe import SiweError
from flexledger.chain.errors import RpcUnreachableError
from flexledger.errors import FlexledgerError

log = logging.getLogger(__name__)
MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "urn:flexledger:problem:"


class ApiProblemError(FlexledgerError):
    """A refusal the API answers with ``status``; ``code`` names it (the problem's type), ``extra``
    adds members (the offending offer's index, the contract's reason)."""

    def __init__(self, status: int, code: str, message: str, *, hint: str | None = None, **extra: Any) -> None:
        super().__init__(message, hint=hint)
        self.status, self.code, self.extra = status, code, extra


def problem(status: int, code: str, detail: str, *, hint: str | None = None, headers: dict[str, str] | None = None,
            **extra: Any) -> JSONResponse:
    body = {"type": TYPE_BASE + code, "title": HTTPStatus(status).phrase, "status": status, "detail": detail,
            **({"hint": hint} if hint else {}), **extra}
    return JSONResponse(jsonable_encoder(body), status_code=status, media_type=MEDIA_TYPE, headers=headers)


def _validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{k: v for k, v in e.items() if k in ("type", "loc", "msg")} for e in exc.errors()]
    if any(e.get("type") == "json_invalid" for e in errors):
        return problem(400, "malformed_json", "the request body is not JSON", errors=errors)
    return problem(422, "invalid_request", "the request does not match the API's schema", errors=errors)


def _http(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_")
    return problem(exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None))


def _api(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiProblemError)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return problem(exc.status, exc.code, exc.message, hint=exc.hint, headers=headers, **exc.extra)


def _sign_in(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SiweError | CredentialsError)
    reason = exc.reason if isinstance(exc, SiweError) else "credentials"
    return problem(401, f"sign_in_{reason}" if isinstance(exc, SiweError) else "unauthorized", exc.message,
                   hint=exc.hint, reason=reason, headers={"WWW-Authenticate": "Bearer"})


def _chain_down(_request: Request, exc: Exception) -> JSONResponse:
    return problem(503, "chain_unreachable", "the chain's node does not answer; try again shortly")


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return problem(500, "internal", "the server failed on this request; it is logged")


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(ApiProblemError, _api)
    app.add_exception_handler(SiweError, _sign_in)
    app.add_exception_handler(CredentialsError, _sign_in)
    app.add_exception_handler(RpcUnreachableError, _chain_down)
    app.add_exception_handler(Exception, _unexpected)


class BodyLimit:
    """Refuse request bodies above ``limit`` bytes with 413, whether the client declared the length
    or streams the body in chunks (then counted as it arrives: past the limit the client gets the
    413 at once, the route reads a disconnect and whatever it answers then is dropped)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._refuse(scope, receive, send)
            return
        seen = 0
        refused = False

        async def counted() -> Message:
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                refused = True
                await self._refuse(scope, receive, send)
                return {"type": "http.disconnect"}
            return message

        async def unless_refused(message: Message) -> None:
            if not refused:
                await send(message)

        await self.app(scope, counted, unless_refused)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(413, "body_too_large", f"the request body is over {self.limit} bytes")
        await response(scope, receive, send)
