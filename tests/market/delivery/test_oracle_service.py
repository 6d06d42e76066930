"""The oracle's service (what `flexledger oracle run` runs), driven without the CLI: it refuses a
key without the ORACLE role, and a round on an empty store anchors and reports nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from chain_world import FOREVER, create_market
from sqlalchemy import select

from flexledger.chain.bindings import RoleRegistryClient
from flexledger.chain.connection import ChainConnection
from flexledger.chain.manifest import Manifest
from flexledger.chain.transactions import Signer
from flexledger.config import load_settings
from flexledger.delivery.oracle_service import OracleEvent, OraclePolicy, OracleService
from flexledger.deployment import Deployment
from flexledger.errors import ConfigurationError
from flexledger.identity import keys
from flexledger.identity.eip712 import read_domain
from flexledger.identity.roles import Role
from flexledger.oracle.ingest import STORED, ingest
from flexledger.oracle.store import StoredAnchor, session
from flexledger.oracle.verify import Verifier
from flexledger_edge.reading import MeterSigner, OracleDomain


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


@pytest.mark.usefixtures("settings_env")
def test_one_of_two_oracles_anchors_and_the_other_takes_over_once_its_lease_expires(
        conn: ChainConnection, manifest: Manifest, deployer: Signer, dev_signers: list[Signer]) -> None:
    """Two oracle loops on one store: the lease's holder anchors, the other only ingests; the
    holder stops renewing (it stopped), and after the lease has expired the other anchors what is
    due, never an ISP the first anchored; the first, back, finds the lease taken."""
    first, second = dev_signers[7], dev_signers[8]
    roles = RoleRegistryClient(conn, manifest.address("RoleRegistry"), signer=deployer)
    for oracle in (first, second):
        roles.issue_credential(oracle.address, Role.ORACLE.id, 0, FOREVER, b"\x01" * 32)
    market = create_market(conn, manifest, deployer)
    events: list[OracleEvent] = []
    policy = OraclePolicy(grace=0, interval=1.0, lease=60, baselines=False)
    a, b = (OracleService(Deployment(conn, manifest, oracle), load_settings(), market, policy, events.append)
            for oracle in (first, second))
    wall = [1_000_000.0]
    a.clock = b.clock = lambda: wall[0]
    verifier = Verifier(read_domain(conn, manifest.address("MeterOracle")).separator(), lambda _meter: None)
    meter = MeterSigner(keys.new_account().key, OracleDomain(conn.chain_id, manifest.address("MeterOracle")))
    isp_seconds = a.params.isp_seconds
    isp = (conn.latest_timestamp() // isp_seconds - 3) * isp_seconds

    def reading(isp_start: int, sequence: int) -> None:
        with session(a.engine) as s:
            assert ingest(s, verifier, market, meter.sign_new(isp_start=isp_start, sequence=sequence, import_wh=500,
                                                              export_wh=0).to_json(), conn.latest_timestamp()) == STORED

    reading(isp, 1)
    assert a.round() == [isp] and a.leading
    assert b.round() == [] and not b.leading  # a holds the lease
    reading(isp + isp_seconds, 2)
    wall[0] += 59  # a stopped after its round: its lease has a second left
    assert b.round() == []
    wall[0] += 1
    assert b.round() == [isp + isp_seconds] and b.leading  # taken over, and only what was due
    assert a.round() == [] and not a.leading  # back, it finds b anchoring
    with session(a.engine) as s:
        anchors = {row.isp_start: row.oracle for row in s.scalars(select(StoredAnchor))}
    assert anchors == {isp: first.address, isp + isp_seconds: second.address}  # each ISP anchored once
    assert [e.kind for e in events] == ["anchored", "warning", "lease", "anchored", "warning"]


def test_a_lease_shorter_than_a_round_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="lapses between rounds"):
        OraclePolicy(interval=30, lease=30)
