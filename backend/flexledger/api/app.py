"""The FastAPI application: ``create_app`` wires settings, the deployment and the database into
the routes, versioned under ``/v1``, with OpenAPI at ``/openapi.json`` (docs at ``/docs``) and
every error as an RFC 9457 problem."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, FastAPI
from sqlalchemy.orm import sessionmaker

from flexledger.api import problems
from flexledger.api.context import ApiContext
from flexledger.api.routes import auth, keys, offers
from flexledger.api.settings import ApiSettings
from flexledger.book.offers import ChainReads
from flexledger.database.engine import make_engine, migrate

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from flexledger.deployment import Deployment

VERSION = "1"


def create_app(settings: ApiSettings, deployment: Deployment, *, database_url: str | None = None,
               relayer: str | None = None, engine: Engine | None = None) -> FastAPI:
    """The API over ``deployment``; intake judges offers as sent by ``relayer`` (default: the
    deployment's signer, the aggregator's key the relayer sends with). The database (``engine``,
    else ``database_url``, else the settings') is migrated to the newest schema first."""
    if engine is None:
        url = database_url or settings.database_url
        if url is None:
            raise ValueError("create_app needs a database: settings.database_url, database_url or engine")
        engine = make_engine(url)
    migrate(engine)
    relay_address = relayer or (deployment.signer.address if deployment.signer else None)
    if relay_address is None:
        raise ValueError("create_app needs the relayer's address (or a deployment with its signer)")
    app = FastAPI(
        title="flexledger API", version=VERSION,
        description="The flexibility market over HTTP: sign in with a wallet (EIP-4361), API keys, and the "
                    "aggregator's relay of signed offers. Errors are RFC 9457 problem details.",
        openapi_url="/openapi.json", docs_url="/docs", redoc_url=None,
    )
    app.state.context = ApiContext(settings, deployment, sessionmaker(engine, expire_on_commit=False), relay_address,
                                   ChainReads(deployment))
    problems.install(app)
    app.add_middleware(problems.BodyLimit, limit=settings.max_body_bytes)
    v1 = APIRouter(prefix=f"/v{VERSION}")
    for module in (auth, keys, offers):
        v1.include_router(module.router)
    app.include_router(v1)
    return app
