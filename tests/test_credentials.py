"""Role credentials: issued, anchored, verified offline and on chain, and every forgery refused."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from flexledger.chain import revert_errors
from flexledger.chain.bindings import RoleRegistryClient
from flexledger.chain.connection import ChainConnection
from flexledger.chain.manifest import Manifest
from flexledger.chain.transactions import Signer
from flexledger.identity import keys
from flexledger.identity.credentials import (
    CredentialInvalidError,
    credential_hash,
    grant_role,
    issue_role_credential,
    verify_credential,
    verify_on_chain,
)
from flexledger.identity.eip712 import read_domain
from flexledger.identity.roles import Role, UnknownRoleError

AUTHORITY = keys.dev_accounts()[0]


@pytest.fixture
def roles(conn: ChainConnection, manifest: Manifest, deployer: Signer) -> RoleRegistryClient:
    return RoleRegistryClient(conn, manifest.address("RoleRegistry"), signer=deployer)


@pytest.fixture
def granted(roles: RoleRegistryClient, dev_signers: list[Signer]) -> dict[str, Any]:
    now = roles.conn.latest_timestamp()
    vc, _ = grant_role(roles, AUTHORITY, dev_signers[3].address, Role.DSO, valid_from=now - 10, valid_until=now + 86400)
    return vc


def test_a_granted_credential_verifies_offline_and_on_chain(roles: RoleRegistryClient, granted: dict[str, Any]) -> None:
    assert verify_credential(granted, now=roles.conn.latest_timestamp()) is Role.DSO
    assert verify_on_chain(granted, roles) is Role.DSO
    subject = granted["credentialSubject"]["id"].rsplit(":", 1)[1]
    assert roles.has_market_role(subject, Role.DSO.id)
    assert roles.credential_of(subject, Role.DSO.id)[3] == credential_hash(granted)
    assert granted["type"] == ["VerifiableCredential", "FlexledgerRoleCredential"]
    assert granted["proof"]["type"] == "EthereumEip712Signature2021"


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("credentialSubject", "id"), "did:ethr:0x7a69:0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65"),
        (("credentialSubject", "role"), "TSO"),
        (("validUntil",), "2999-01-01T00:00:00Z"),
    ],
)
def test_tampered_credentials_are_refused(
    roles: RoleRegistryClient, granted: dict[str, Any], path: tuple[str, ...], value: str
) -> None:
    forged = copy.deepcopy(granted)
    target = forged
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(CredentialInvalidError, match="not by its issuer"):
        verify_credential(forged, now=roles.conn.latest_timestamp())


def test_a_credential_signed_by_someone_else_is_refused(roles: RoleRegistryClient, dev_signers: list[Signer]) -> None:
    domain = read_domain(roles.conn, roles.address)
    now = roles.conn.latest_timestamp()
    forged = issue_role_credential(keys.dev_accounts()[5], dev_signers[5].address, Role.TSO, domain, valid_from=now)
    forged["issuer"] = f"did:ethr:{hex(roles.conn.chain_id)}:{AUTHORITY.address}"
    with pytest.raises(CredentialInvalidError, match="not by its issuer"):
        verify_credential(forged, now=now)


def test_a_credential_whose_hash_is_not_anchored_is_refused(roles: RoleRegistryClient, dev_signers: list[Signer]) -> None:
    now = roles.conn.latest_timestamp()
    vc = issue_role_credential(AUTHORITY, dev_signers[6].address, Role.AGGREGATOR, read_domain(roles.conn, roles.address), valid_from=now)
    roles.issue_credential(dev_signers[6].address, Role.AGGREGATOR.id, now, 2**64 - 1, b"\x99" * 32)
    with pytest.raises(CredentialInvalidError, match="anchors another credential"):
        verify_on_chain(vc, roles)


def test_expired_and_revoked_credentials_are_refused(roles: RoleRegistryClient, granted: dict[str, Any]) -> None:
    with pytest.raises(CredentialInvalidError, match="not valid at"):
        verify_credential(granted, now=roles.conn.latest_timestamp() + 2 * 86400)
    subject = granted["credentialSubject"]["id"].rsplit(":", 1)[1]
    roles.revoke_credential(subject, Role.DSO.id)
    with pytest.raises(CredentialInvalidError, match="revoked"):
        verify_on_chain(granted, roles)
    assert not roles.has_market_role(subject, Role.DSO.id)


def test_a_credential_for_another_market_is_refused(roles: RoleRegistryClient, granted: dict[str, Any]) -> None:
    other = copy.deepcopy(granted)
    other["proof"]["eip712"]["domain"]["verifyingContract"] = "0x000000000000000000000000000000000000dEaD"
    with pytest.raises(CredentialInvalidError):
        verify_on_chain(other, roles)


def test_grant_by_a_non_authority_reverts(roles: RoleRegistryClient, dev_signers: list[Signer]) -> None:
    intruder = dev_signers[7]
    with pytest.raises(revert_errors.RoleRegistryNotIssuer):
        grant_role(roles.with_signer(intruder), keys.dev_accounts()[7], intruder.address, Role.TSO,  # type: ignore[arg-type]
                   valid_from=0)


def test_role_names() -> None:
    assert Role.parse("dso") is Role.DSO
    assert Role.from_id(Role.METER.id) is Role.METER
    with pytest.raises(UnknownRoleError) as err:
        Role.parse("king")
    assert "DSO" in (err.value.hint or "")
