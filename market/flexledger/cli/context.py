"""What most commands need: settings, a chain connection, a signing key and the manifest."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from flexledger.chain.errors import RpcUnreachableError
from flexledger.chain.node import LocalNode, NodeInfo
from flexledger.config import Settings, load_settings
from flexledger.errors import ConfigurationError
from flexledger.private_files import private_dir
from flexledger.redaction import redact_url

# web3, eth-account and the rest load when a command first needs the chain, not for `--help`
# (each CLI module imports its heavy modules inside the functions that use them)
if TYPE_CHECKING:
    from flexledger.chain.connection import ChainConnection
    from flexledger.chain.manifest import Manifest
    from flexledger.chain.transactions import Signer
    from flexledger.deployment import Deployment


@dataclass
class CliState:
    """Global options given before the command."""

    config_overrides: dict[str, object] = field(default_factory=dict)
    _settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(**self.config_overrides)
            private_dir(self._settings.data_dir)  # household readings, keys, broker credentials
        return self._settings


STATE = CliState()


def local_node(settings: Settings) -> LocalNode:
    return settings.local_node()


def require_local(settings: Settings) -> None:
    if not settings.embedded_chain:
        raise ConfigurationError(
            f"a remote chain is configured (rpc_url = {redact_url(settings.rpc_url or '')}); "
            "`flexledger node` manages only the embedded local node",
            hint="unset FLEXLEDGER_RPC_URL (or rpc_url in the config file) to use the local node",
        )


def connect(settings: Settings, *, start_local: bool = True,
            deploying: bool = False) -> tuple[ChainConnection, NodeInfo | None]:
    """Connect to the configured chain; on the embedded default, start the local node if needed,
    but not for a command that needs a deployment when there is none (``deploying``: the command
    makes one), so that a command run before `flexledger deploy` says so and leaves no node running."""
    from flexledger.chain.connection import ChainConnection
    from flexledger.chain.errors import ManifestError

    if settings.rpc_url:
        return ChainConnection.connect(settings.rpc_url, timeout=settings.rpc_timeout), None
    node = local_node(settings)
    info = node.status()
    if info is None:
        if not start_local:
            raise RpcUnreachableError(f"http://127.0.0.1:{settings.node_port}", "the local node is not running")
        if not deploying and not settings.manifest_path.is_file():
            raise ManifestError(
                f"nothing is deployed yet: no manifest at {settings.manifest_path}, and the local chain is not running",
                hint="run `flexledger deploy` first: it starts the local chain, deploys the contracts and writes "
                     "the manifest (or point FLEXLEDGER_RPC_URL and FLEXLEDGER_MANIFEST at a deployment)",
            )
        info = node.start()
    return ChainConnection.connect(info.rpc_url, timeout=settings.rpc_timeout), info


def load_signer(conn: ChainConnection, key_file: Path | None) -> Signer:
    """The transaction key: a keystore (``--key`` or FLEXLEDGER_KEY), else anvil's first dev key.

    The keystore password comes from FLEXLEDGER_KEY_PASSWORD. A development key is refused
    on any chain that is not a local development chain.
    """
    from flexledger.identity import keys

    path = key_file or (Path(os.environ["FLEXLEDGER_KEY"]) if os.environ.get("FLEXLEDGER_KEY") else None)
    if path is None:
        return keys.signer(keys.dev_accounts()[0], conn)
    password = os.environ.get("FLEXLEDGER_KEY_PASSWORD")
    if password is None:
        raise ConfigurationError(
            f"the keystore {path} needs its password", hint="set FLEXLEDGER_KEY_PASSWORD"
        )
    return keys.signer(keys.load_keystore(path, password), conn)


def load_manifest(settings: Settings, conn: ChainConnection) -> Manifest:
    from flexledger.chain.manifest import Manifest

    manifest = Manifest.load(settings.manifest_path)
    manifest.check(conn, settings.manifest_path)
    return manifest


def deployment(key_file: Path | None = None, *, sign: bool = True) -> Deployment:
    """The command's deployment: the configured chain, its manifest checked against it, and the
    transaction key (``--key``, FLEXLEDGER_KEY, else the dev key) when the command sends transactions."""
    from flexledger.deployment import Deployment

    settings = STATE.settings
    conn, _ = connect(settings)
    manifest = load_manifest(settings, conn)
    return Deployment(conn, manifest, load_signer(conn, key_file) if sign else None)
