"""The oracle's service (what `flexledger oracle run` runs), driven without the CLI: it refuses a
key without the ORACLE role, and a round on an empty store anchors and reports nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from chain_world import FOREVER, create_market

from flexledger.chain.bindings import RoleRegistryClient
from flexledger.chain.connection import ChainConnection
from flexledger.chain.manifest import Manifest
from flexledger.chain.transactions import Signer
from flexledger.config import load_settings
from flexledger.delivery.oracle_service import OracleEvent, OraclePolicy, OracleService
from flexledger.deployment import Deployment
from flexledger.errors import ConfigurationError
from flexledger.identity.roles import Role


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, conn: ChainConnection) -> None:
    monkeypatch.setenv("FLEXLEDGER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FLEXLEDGER_RPC_URL", conn.rpc_url)
    monkeypatch.setenv("FLEXLEDGER_DATABASE_URL", f"sqlite:///{tmp_path / 'oracle.db'}")
    # a broker that is never connected to: the tests drive rounds, not the consumer
    monkeypatch.setenv("FLEXLEDGER_MQTT_URL", "mqtt://oracle:secret@127.0.0.1:9")


@pytest.mark.usefixtures("settings_env")
def test_a_key_without_the_oracle_role_is_refused(conn: ChainConnection, manifest: Manifest,
                                                  dev_signers: list[Signer]) -> None:
    events: list[OracleEvent] = []
    with pytest.raises(ConfigurationError, match="holds no valid ORACLE credential"):
        OracleService(Deployment(conn, manifest, dev_signers[7]), load_settings(), 1, OraclePolicy(), events.append)
    with pytest.raises(ConfigurationError, match="holds no valid ORACLE credential"):
        OracleService(Deployment(conn, manifest), load_settings(), 1, OraclePolicy(), events.append)


@pytest.mark.usefixtures("settings_env")
def test_a_round_on_an_empty_store_does_nothing(conn: ChainConnection, manifest: Manifest, deployer: Signer,
                                                dev_signers: list[Signer]) -> None:
    oracle = dev_signers[7]
    RoleRegistryClient(conn, manifest.address("RoleRegistry"), signer=deployer).issue_credential(
        oracle.address, Role.ORACLE.id, 0, FOREVER, b"\x01" * 32)
    market = create_market(conn, manifest, deployer)
    events: list[OracleEvent] = []
    service = OracleService(Deployment(conn, manifest, oracle), load_settings(), market,
                            OraclePolicy(grace=0, interval=0.1), events.append)
    assert service.address == oracle.address and service.client_id
    assert service.round() == []
    assert events == []
