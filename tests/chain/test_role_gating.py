"""Roles gate calls: a contract built on RoleGated refuses a missing, expired, future or revoked
role with RoleGatedMissingRole, which Python raises as its typed exception."""

from __future__ import annotations

from functools import cached_property

import pytest

from flexledger.chain import paths, revert_errors
from flexledger.chain.artifacts import Artifact
from flexledger.chain.bindings import RoleRegistryClient
from flexledger.chain.client import ContractClient, TxResult
from flexledger.chain.compiler import compile_contracts
from flexledger.chain.connection import ChainConnection
from flexledger.chain.deploy import creation_data
from flexledger.chain.manifest import Manifest
from flexledger.chain.transactions import Signer
from flexledger.identity.roles import Role

FOREVER = 2**64 - 1


@pytest.fixture(scope="session")
def gated_artifact() -> Artifact:
    a = compile_contracts(paths.project_root() / "tests" / "contracts" / "src").artifacts["GatedExample"]
    return Artifact("GatedExample", a["sourceName"], a["abi"], a["bytecode"], a["deployedBytecode"], a["sourceHash"])


class GatedClient(ContractClient):
    CONTRACT = "GatedExample"
    compiled: Artifact

    @cached_property
    def artifact(self) -> Artifact:
        return self.compiled

    def act(self, sender: Signer) -> TxResult:
        return self._transact("act()", sender=sender)


@pytest.fixture
def gated(conn: ChainConnection, manifest: Manifest, deployer: Signer, gated_artifact: Artifact) -> GatedClient:
    tx = deployer.send(None, creation_data(gated_artifact, [manifest.address("RoleRegistry")]), gas=1_000_000)
    address = conn.w3.eth.wait_for_transaction_receipt(tx)["contractAddress"]
    client = GatedClient(conn, address)
    client.compiled = gated_artifact
    return client


@pytest.fixture
def roles(conn: ChainConnection, manifest: Manifest, deployer: Signer) -> RoleRegistryClient:
    return RoleRegistryClient(conn, manifest.address("RoleRegistry"), signer=deployer)


def test_a_valid_role_passes(gated: GatedClient, roles: RoleRegistryClient, dev_signers: list[Signer]) -> None:
    dso = dev_signers[3]
    roles.issue_credential(dso.address, Role.DSO.id, 0, FOREVER, b"\x01" * 32)
    gated.act(dso)


def test_no_role_is_refused(gated: GatedClient, dev_signers: list[Signer]) -> None:
    with pytest.raises(revert_errors.RoleGatedMissingRole) as err:
        gated.act(dev_signers[4])
    assert err.value.account == dev_signers[4].address
    assert err.value.role == Role.DSO.id


def test_an_expired_role_is_refused(
    gated: GatedClient, roles: RoleRegistryClient, conn: ChainConnection, dev_signers: list[Signer]
) -> None:
    dso = dev_signers[3]
    now = conn.latest_timestamp()
    roles.issue_credential(dso.address, Role.DSO.id, now, now + 60, b"\x01" * 32)
    gated.act(dso)
    conn.increase_time(120)
    with pytest.raises(revert_errors.RoleGatedMissingRole):
        gated.act(dso)


def test_a_role_not_yet_valid_is_refused(
    gated: GatedClient, roles: RoleRegistryClient, conn: ChainConnection, dev_signers: list[Signer]
) -> None:
    dso = dev_signers[3]
    roles.issue_credential(dso.address, Role.DSO.id, conn.latest_timestamp() + 3600, FOREVER, b"\x01" * 32)
    with pytest.raises(revert_errors.RoleGatedMissingRole):
        gated.act(dso)


def test_a_revoked_role_is_refused(gated: GatedClient, roles: RoleRegistryClient, dev_signers: list[Signer]) -> None:
    dso = dev_signers[3]
    roles.issue_credential(dso.address, Role.DSO.id, 0, FOREVER, b"\x01" * 32)
    roles.revoke_credential(dso.address, Role.DSO.id)
    with pytest.raises(revert_errors.RoleGatedMissingRole):
        gated.act(dso)


def test_another_role_does_not_stand_in(gated: GatedClient, roles: RoleRegistryClient, dev_signers: list[Signer]) -> None:
    tso = dev_signers[3]
    roles.issue_credential(tso.address, Role.TSO.id, 0, FOREVER, b"\x01" * 32)
    with pytest.raises(revert_errors.RoleGatedMissingRole):
        gated.act(tso)
