"""`flexledger api serve` and `flexledger api relay`: the HTTP API (uvicorn) and the offer relayer,
mounted under `flexledger` through the ``flexledger.commands`` entry points (backend/pyproject.toml)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import typer
from fastapi import FastAPI
from pydantic import ValidationError

from flexledger.api.settings import ApiSettings
from flexledger.cli.context import STATE, deployment
from flexledger.cli.options import KeyOption
from flexledger.errors import ConfigurationError

app = typer.Typer(help="The HTTP API: sign-in with a wallet, API keys, the aggregator's offer relay.",
                  no_args_is_help=True)


def _api_settings() -> ApiSettings:
    try:
        return ApiSettings()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigurationError(f"invalid API settings: {problems}",
                                 hint="fix the FLEXLEDGER_API_* environment variable named") from exc


@app.command("serve")
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", help="Port to listen on."),
    relay: bool = typer.Option(True, "--relay/--no-relay", help="Run the offer relayer in this process too."),
    workers: int = typer.Option(1, "--workers", min=1, help="Server processes (one a core); the relayer stays one, "
                                                            "in the process that starts them."),
    key: Path | None = KeyOption,
) -> None:
    """Serve the API (OpenAPI at /openapi.json, docs at /docs). The key is the aggregator's: the relayer
    sends queued offers with it, and intake judges offers as that account would relay them."""
    import uvicorn

    from flexledger.api.app import create_app
    from flexledger.relay.relayer import Relayer

    settings = _api_settings()
    chain = deployment(key)
    url = settings.database_url or STATE.settings.effective_database_url
    api = create_app(settings, chain, database_url=url)  # migrates the database, once, before any worker
    stop = threading.Event()
    if relay:
        relayer = Relayer(api.state.context.sessions, chain, batch=settings.relay_batch)
        threading.Thread(target=relayer.run, args=(stop,), kwargs={"interval": settings.relay_interval},
                         name="relayer", daemon=True).start()
    try:
        if workers == 1:
            uvicorn.run(api, host=host, port=port, log_level="warning")
        else:
            _hand_to_workers(settings, url, key)
            uvicorn.run("flexledger.api.commands:worker_app", factory=True, workers=workers, host=host, port=port,
                        log_level="warning")
    finally:
        stop.set()


def _hand_to_workers(settings: ApiSettings, database_url: str, key: Path | None) -> None:
    """What the worker processes read from their environment: the same chain, database, key and token
    secret as this process (a secret left random here would differ in each worker)."""
    os.environ["FLEXLEDGER_API_SECRET"] = settings.secret.get_secret_value()
    os.environ["FLEXLEDGER_API_DATABASE_URL"] = database_url
    for name, value in STATE.config_overrides.items():  # the global options given before `api`
        if value is not None:
            os.environ[f"FLEXLEDGER_{name.upper()}"] = str(value)
    if key is not None:
        os.environ["FLEXLEDGER_KEY"] = str(key)


def worker_app() -> FastAPI:
    """One worker process's app (`serve --workers N`), from the environment `serve` prepared."""
    from flexledger.api.app import create_app

    settings = _api_settings()
    return create_app(settings, deployment(), database_url=settings.database_url)


@app.command("relay")
def relay_command(key: Path | None = KeyOption) -> None:
    """Run the offer relayer alone: queued offers to the OrderBook in batches, until interrupted."""
    from sqlalchemy.orm import sessionmaker

    from flexledger.database.engine import make_engine, migrate
    from flexledger.relay.relayer import Relayer

    settings = _api_settings()
    engine = make_engine(settings.database_url or STATE.settings.effective_database_url)
    migrate(engine)
    stop = threading.Event()
    try:
        Relayer(sessionmaker(engine, expire_on_commit=False), deployment(key), batch=settings.relay_batch).run(
            stop, interval=settings.relay_interval)
    except KeyboardInterrupt:
        stop.set()
