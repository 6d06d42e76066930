"""The settlement CLI as a user runs it, for tests: point the CLI at a settlement world's chain and
oracle store, run a command in process (typer's CliRunner) as one party, name the world's day."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_account.signers.local import LocalAccount
from settlement_world import SettlementWorld
from typer.testing import CliRunner, Result

import flexledger.cli.context as cli_context
from flexledger.baselines.files import BaselineFile, save_baseline
from flexledger.cli.app import app
from flexledger.config import load_settings
from flexledger.identity import keys
from flexledger.times import iso


def point_cli_at(w: SettlementWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SettlementWorld:
    monkeypatch.setenv("FLEXLEDGER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FLEXLEDGER_RPC_URL", w.conn.rpc_url)
    monkeypatch.setenv("FLEXLEDGER_DATABASE_URL", str(w.engine.url))
    settings = load_settings()
    settings.manifest_path.parent.mkdir(parents=True, exist_ok=True)
    w.manifest.save(settings.manifest_path)
    return w


def baselines_folder() -> Path:
    return load_settings().data_dir / "baselines"


def keep_baselines(w: SettlementWorld) -> None:
    """The seller's baseline files, as `flexledger baseline commit` would have written them."""
    for offer, b in zip(w.offers, w.baselines, strict=True):
        save_baseline(BaselineFile(offer.asset, offer.start, tuple(b.net_wh), b.salt, offer.baseline, offer.portfolio),
                      baselines_folder())


def cli(*args: str, as_: LocalAccount | None = None) -> Result:
    """The command as a user runs it; ``as_``: with that party's key (else the CLI's default)."""
    with pytest.MonkeyPatch.context() as m:
        if as_ is not None:
            m.setattr(cli_context, "load_signer", lambda conn, _key: keys.signer(as_, conn))
        return CliRunner().invoke(app, list(args))


def day_args(w: SettlementWorld) -> list[str]:
    return ["--day", iso(w.day)[:10], "--market", str(w.market)]
