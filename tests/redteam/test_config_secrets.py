"""Red-team finding 8 and the configuration's "also seen" items (issue 17).

RT-8: `config` and `config --check` printed database, broker and RPC passwords and API keys; the
RPC URL appeared unredacted in errors and in manifest.json. Also seen: the data directory was
world-readable, the baseline file made private only after it was written, FLEXLEDGER_KEY_PASSWORD
inherited by the node and broker the CLI starts, and a ./flexledger.toml silently redirected the
RPC URL and manifest. Each test asserts the defence.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flexledger.baselines.files import BaselineFileError, new_baseline, save_baseline
from flexledger.chain.connection import ChainConnection
from flexledger.chain.deploy import deploy_all
from flexledger.chain.node import NodeInfo, free_port
from flexledger.cli.app import app
from flexledger.config import load_settings
from flexledger.delivery.broker import LocalBroker
from flexledger.errors import ConfigurationError
from flexledger.identity import keys
from flexledger.redaction import child_environment, redact_url, scrub_urls

SECRETS = ("S3cretDB", "S3cretMQ", "S3cretRPC", "APIKEY-0123456789", "k3yQuery")
ENV = {
    "FLEXLEDGER_DATABASE_URL": "postgresql://flex:S3cretDB@127.0.0.1:1/flex",
    "FLEXLEDGER_MQTT_URL": "mqtt://oracle:S3cretMQ@127.0.0.1:1",
    "FLEXLEDGER_RPC_URL": "https://rpcuser:S3cretRPC@127.0.0.1:1/v3/APIKEY-0123456789?apikey=k3yQuery",
}


def _run(args: list[str], tmp_path: Path) -> str:
    """The real command in its own process (its error printer included), stdout and stderr."""
    env = {**os.environ, **ENV, "XDG_DATA_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path / "home"),
           "COLUMNS": "400"}
    done = subprocess.run([sys.executable, "-m", "flexledger.cli.app", *args], capture_output=True, text=True,
                          env=env, timeout=120, cwd=tmp_path)
    return done.stdout + done.stderr


@pytest.mark.slow
def test_RT8_config_and_config_check_print_no_secret(tmp_path: Path) -> None:
    out = _run(["config", "--check"], tmp_path)
    assert "rpc_url" in out and "database" in out and "broker" in out
    assert "rpcuser:***@127.0.0.1:1/v3/***" in out  # what the operator needs to recognise it stays
    for secret in SECRETS:
        assert secret not in out, secret
    as_json = _run(["config", "--check", "--json"], tmp_path)
    assert json.loads(as_json)["settings"]["database_url"] == "postgresql://flex:***@127.0.0.1:1/flex"
    for secret in SECRETS:
        assert secret not in as_json, secret


@pytest.mark.slow
def test_RT8_errors_print_no_secret(tmp_path: Path) -> None:
    out = _run(["deploy"], tmp_path)  # the node does not answer: the error names the URL
    assert "no EVM node answers at https://rpcuser:***@127.0.0.1:1/v3/***" in out
    for secret in SECRETS:
        assert secret not in out, secret
    json_out = _run(["deploy", "--json"], tmp_path)
    assert "error" in json.loads(json_out)
    for secret in SECRETS:
        assert secret not in json_out, secret


def test_RT8_the_manifest_records_the_rpc_url_without_its_secrets(anvil: NodeInfo, tmp_path: Path) -> None:
    """anvil ignores a basic-auth header: the deployment runs over a URL carrying a password."""
    conn = ChainConnection.connect(anvil.rpc_url.replace("http://", "http://deployer:S3cretRPC@"))
    snapshot = conn.snapshot()
    try:
        manifest = deploy_all(conn, keys.signer(keys.dev_accounts()[0], conn))
        manifest.save(tmp_path / "manifest.json")
    finally:
        conn.revert(snapshot)
    written = (tmp_path / "manifest.json").read_text()
    assert "S3cretRPC" not in written and "deployer:***@127.0.0.1" in written


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql+psycopg://flex:pa%40ss@db:5432/flex", "postgresql+psycopg://flex:***@db:5432/flex"),
    ("https://mainnet.infura.io/v3/0123456789abcdef0123456789abcdef", "https://mainnet.infura.io/v3/***"),
    ("https://eth.example/rpc?apikey=abc123&chain=1", "https://eth.example/rpc?apikey=***&chain=***"),
    ("wss://user:tok@node.example:8546/ws", "wss://user:***@node.example:8546/ws"),
    ("http://127.0.0.1:8545", "http://127.0.0.1:8545"),
    ("http://[::1]:8545/", "http://[::1]:8545/"),
])
def test_RT8_one_redaction(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_RT8_secrets_in_library_messages_are_scrubbed() -> None:
    url = "https://u:S3cretRPC@node.example/v2/APIKEY-0123456789"
    text = "HTTPSConnectionPool(host='node.example'): Max retries exceeded with url: /v2/APIKEY-0123456789 (S3cretRPC)"
    assert "APIKEY" not in scrub_urls(text, url) and "S3cret" not in scrub_urls(text, url)


def test_also_seen_the_data_directory_is_private_from_creation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "fresh" / "flexledger"
    monkeypatch.setenv("FLEXLEDGER_DATA_DIR", str(data))
    old = os.umask(0o022)
    try:
        assert CliRunner().invoke(app, ["config"]).exit_code == 0
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
        data.chmod(0o755)  # an existing install, world-readable
        assert CliRunner().invoke(app, ["config"]).exit_code == 0
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
    finally:
        os.umask(old)


def test_also_seen_a_baseline_file_is_private_from_creation(tmp_path: Path) -> None:
    old = os.umask(0)  # the most permissive umask: the mode given at creation must hold alone
    try:
        path = save_baseline(new_baseline(7, 1_800_000_000, [100, 200]), tmp_path / "baselines")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(BaselineFileError, match="exists"):
        save_baseline(new_baseline(7, 1_800_000_000, [1, 2]), tmp_path / "baselines")


def test_also_seen_children_do_not_inherit_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEXLEDGER_KEY_PASSWORD", "S3cretKey")
    monkeypatch.setenv("FLEXLEDGER_RPC_URL", "https://u:S3cretRPC@node.example/")
    assert "FLEXLEDGER_KEY_PASSWORD" not in child_environment()
    assert "FLEXLEDGER_RPC_URL" not in child_environment()
    broker = LocalBroker(tmp_path / "broker", port=free_port(), persist=False)
    info = broker.start()
    try:
        environ = Path(f"/proc/{info.pid}/environ").read_bytes()
    finally:
        broker.stop()
    assert b"S3cretKey" not in environ and b"S3cretRPC" not in environ
    assert b"PATH=" in environ  # the rest of the environment is passed on


def test_also_seen_a_config_file_in_the_current_folder_is_read_only_when_named(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "flexledger.toml").write_text('rpc_url = "http://attacker.example:8545"\n')
    with pytest.raises(ConfigurationError, match="not named"):
        load_settings()
    refused = CliRunner().invoke(app, ["config"])
    assert refused.exit_code != 0
    named = CliRunner().invoke(app, ["--config", "flexledger.toml", "config", "--json"])
    assert named.exit_code == 0, named.output
    shown = json.loads(named.stdout)["settings"]
    assert shown["rpc_url"] == "http://attacker.example:8545" and shown["config_file"] == "flexledger.toml"
