"""Role credentials: issued, anchored, verified offline, on chain and by an outside EIP-712 tool,
every forgery refused, and `flexledger role`."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from eth_utils import keccak
from typer.testing import CliRunner

from flexledger.chain import paths, revert_errors
from flexledger.chain.bindings import MarketAuthorityClient, RoleRegistryClient
from flexledger.chain.connection import ChainConnection
from flexledger.chain.manifest import Manifest
from flexledger.chain.transactions import Signer
from flexledger.cli.app import app
from flexledger.identity import keys
from flexledger.identity.credentials import (
    NO_EXPIRY,
    CredentialInvalidError,
    credential_hash,
    grant_role,
    grant_roles,
    issue_role_credential,
    verify_credential,
    verify_on_chain,
)
from flexledger.identity.did import did_for
from flexledger.identity.eip712 import read_domain
from flexledger.identity.roles import Role, UnknownRoleError

AUTHORITY = keys.dev_accounts()[0]
DAY = 86400


@pytest.fixture
def roles(conn: ChainConnection, manifest: Manifest, deployer: Signer) -> RoleRegistryClient:
    return RoleRegistryClient(conn, manifest.address("RoleRegistry"), signer=deployer)


@pytest.fixture
def granted(roles: RoleRegistryClient, dev_signers: list[Signer]) -> dict[str, Any]:
    now = roles.conn.latest_timestamp()
    subject = str(did_for(dev_signers[3].address, roles.conn.chain_id))  # a DID works as well as an address
    vc, _ = grant_role(roles, subject, Role.DSO, valid_from=now - 10, valid_until=now + DAY)
    return vc


def test_a_granted_credential_verifies_offline_and_on_chain(
    roles: RoleRegistryClient, granted: dict[str, Any], dev_signers: list[Signer]
) -> None:
    domain = read_domain(roles.conn, roles.address)
    checked = verify_credential(granted, domain=domain, now=roles.conn.latest_timestamp())
    assert (checked.issuer, checked.subject, checked.role) == (AUTHORITY.address, dev_signers[3].address, Role.DSO)
    assert verify_on_chain(granted, roles) == checked
    assert roles.has_market_role(checked.subject, Role.DSO.id)
    assert roles.credential_of(checked.subject, Role.DSO.id).credential_hash == credential_hash(granted) == checked.credential_hash
    assert granted["@context"] == ["https://www.w3.org/ns/credentials/v2"]
    assert granted["type"] == ["VerifiableCredential", "MarketRoleCredential"]
    assert granted["issuer"] == str(did_for(AUTHORITY.address, roles.conn.chain_id))
    assert granted["credentialSubject"]["market"] == str(did_for(roles.address, roles.conn.chain_id))
    assert granted["proof"]["type"] == "EthereumEip712Signature2021"
    assert granted["proof"]["eip712"]["domain"] == domain.to_json()


def test_an_outside_eip712_verifier_recovers_the_issuer(roles: RoleRegistryClient, granted: dict[str, Any]) -> None:
    """EthereumEip712Signature2021: the message is the credential with its proof, less proofValue and eip712."""
    proof = granted["proof"]
    message = {**granted, "proof": {k: v for k, v in proof.items() if k not in ("proofValue", "eip712")}}
    payload = {"domain": proof["eip712"]["domain"], "types": proof["eip712"]["types"],
               "primaryType": proof["eip712"]["primaryType"], "message": message}
    node = shutil.which("node")
    assert node, "Node.js is needed to hold the proof against ethers"
    out = subprocess.run(
        [node, str(paths.project_root() / "tests" / "js" / "typed-data.mjs"), "0x" + AUTHORITY.key.hex(), proof["proofValue"]],
        input=json.dumps(payload), capture_output=True, text=True, check=True, cwd=paths.project_root(), timeout=60,
    ).stdout
    wallet = json.loads(out)
    assert wallet["recovered"] == AUTHORITY.address
    assert wallet["hash"] == "0x" + credential_hash(granted).hex()


@pytest.mark.parametrize(
    ("path", "value", "problem"),
    [
        (("credentialSubject", "id"), "did:ethr:0x7a69:0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65", "not by its issuer"),
        (("credentialSubject", "role"), "TSO", "not by its issuer"),
        (("credentialSubject", "role"), "KING", "bad party or role"),
        (("validUntil",), "2999-01-01T00:00:00Z", "not by its issuer"),
        (("validFrom",), "2020-01-01T00:00:00Z", "not by its issuer"),
        (("validFrom",), "yesterday", "UTC date-time"),
        (("proof", "created"), "2020-01-01T00:00:00Z", "not by its issuer"),
        (("credentialSubject", "market"), "did:ethr:0x7a69:0x000000000000000000000000000000000000dEaD", "market"),
        (("credentialSubject", "note"), "an unsigned addition", "does not cover"),
        (("name",), "an unsigned addition", "does not cover"),
        (("proof", "proofValue"), "0x1234", "not a valid signature"),
        (("proof", "eip712", "primaryType"), "Other", "types"),
    ],
)
def test_tampered_credentials_are_refused(
    roles: RoleRegistryClient, granted: dict[str, Any], path: tuple[str, ...], value: str, problem: str
) -> None:
    forged = copy.deepcopy(granted)
    target = forged
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(CredentialInvalidError, match=problem):
        verify_credential(forged, now=roles.conn.latest_timestamp())


def test_a_credential_signed_by_someone_else_is_refused(roles: RoleRegistryClient, dev_signers: list[Signer]) -> None:
    domain = read_domain(roles.conn, roles.address)
    now = roles.conn.latest_timestamp()
    forged = issue_role_credential(keys.dev_accounts()[5], dev_signers[5].address, Role.TSO, domain, valid_from=now)
    authority_did = str(did_for(AUTHORITY.address, roles.conn.chain_id))
    forged["issuer"] = authority_did
    with pytest.raises(CredentialInvalidError, match="verificationMethod"):
        verify_credential(forged, now=now)
    forged["proof"]["verificationMethod"] = authority_did + "#controller"
    with pytest.raises(CredentialInvalidError, match=f"signed by 0x.*not by its issuer {AUTHORITY.address}"):
        verify_credential(forged, now=now)


def test_expired_and_not_yet_valid_credentials_are_refused(roles: RoleRegistryClient, granted: dict[str, Any]) -> None:
    now = roles.conn.latest_timestamp()
    with pytest.raises(CredentialInvalidError, match="expired") as err:
        verify_credential(granted, now=now + 2 * DAY)
    assert err.value.hint == "ask the issuer to renew it"
    with pytest.raises(CredentialInvalidError, match="not valid yet"):
        verify_credential(granted, now=now - DAY)
    roles.conn.increase_time(2 * DAY)
    roles.conn.mine()
    with pytest.raises(CredentialInvalidError, match="expired"):
        verify_on_chain(granted, roles)  # judged at the chain's time
    assert not roles.has_market_role(granted["credentialSubject"]["id"].rsplit(":", 1)[1], Role.DSO.id)


def test_revoked_credentials_are_refused_on_chain(roles: RoleRegistryClient, granted: dict[str, Any]) -> None:
    subject = granted["credentialSubject"]["id"].rsplit(":", 1)[1]
    roles.revoke_credential(subject, Role.DSO.id)
    verify_credential(granted, now=roles.conn.latest_timestamp())  # offline it cannot know
    with pytest.raises(CredentialInvalidError, match="revoked"):
        verify_on_chain(granted, roles)
    assert not roles.has_market_role(subject, Role.DSO.id)
    with pytest.raises(revert_errors.RoleRegistryNotIssued):
        roles.revoke_credential(subject, Role.DSO.id)


def test_a_credential_whose_hash_is_not_anchored_is_refused(roles: RoleRegistryClient, dev_signers: list[Signer]) -> None:
    now = roles.conn.latest_timestamp()
    subject = dev_signers[6].address
    vc = issue_role_credential(AUTHORITY, subject, Role.AGGREGATOR, read_domain(roles.conn, roles.address), valid_from=now)
    with pytest.raises(CredentialInvalidError, match="anchors no AGGREGATOR credential"):
        verify_on_chain(vc, roles)
    roles.issue_credential(subject, Role.AGGREGATOR.id, now, NO_EXPIRY, b"\x99" * 32)
    with pytest.raises(CredentialInvalidError, match="anchors another"):
        verify_on_chain(vc, roles)


def test_a_credential_for_another_market_is_refused(roles: RoleRegistryClient, granted: dict[str, Any]) -> None:
    other = copy.deepcopy(granted)
    other["proof"]["eip712"]["domain"]["verifyingContract"] = "0x000000000000000000000000000000000000dEaD"
    other["credentialSubject"]["market"] = "did:ethr:0x7a69:0x000000000000000000000000000000000000dEaD"
    with pytest.raises(CredentialInvalidError, match="not this market's"):
        verify_on_chain(other, roles)


def test_issuers_are_appointed_by_the_market_authority(
    roles: RoleRegistryClient, manifest: Manifest, dev_signers: list[Signer]
) -> None:
    intruder = dev_signers[7]
    with pytest.raises(revert_errors.RoleRegistryNotIssuer) as err:
        grant_role(RoleRegistryClient(roles.conn, roles.address, signer=intruder), intruder.address, Role.TSO, valid_from=0)
    assert err.value.account == intruder.address
    authority = MarketAuthorityClient(roles.conn, manifest.address("MarketAuthority"), signer=dev_signers[0])
    issuer = dev_signers[4]
    authority.grant_role(keccak(text="ISSUER"), issuer.address)
    now = roles.conn.latest_timestamp()
    vc, _ = grant_role(RoleRegistryClient(roles.conn, roles.address, signer=issuer), dev_signers[8].address, Role.METER, valid_from=now)
    assert verify_on_chain(vc, roles).issuer == issuer.address
    authority.revoke_role(keccak(text="ISSUER"), issuer.address)
    with pytest.raises(CredentialInvalidError, match="no longer"):
        verify_on_chain(vc, roles)


def test_many_meters_are_granted_in_one_transaction(roles: RoleRegistryClient, dev_signers: list[Signer]) -> None:
    now = roles.conn.latest_timestamp()
    meters = [s.address for s in dev_signers[10:16]]
    vcs, tx = grant_roles(roles, [(m, Role.METER) for m in meters], valid_from=now, valid_until=now + 365 * DAY)
    assert len([e for e in tx.events if e.name == "CredentialIssued"]) == len(meters)
    assert [verify_on_chain(vc, roles).subject for vc in vcs] == meters


def test_bad_issue_arguments_are_refused(roles: RoleRegistryClient) -> None:
    domain = read_domain(roles.conn, roles.address)
    with pytest.raises(CredentialInvalidError, match="reversed"):
        issue_role_credential(AUTHORITY, AUTHORITY.address, Role.DSO, domain, valid_from=10, valid_until=5)
    with pytest.raises(UnknownRoleError):
        issue_role_credential(AUTHORITY, AUTHORITY.address, "king", domain, valid_from=0)


def test_role_names() -> None:
    assert Role.parse("dso") is Role.DSO and Role.parse(" Meter ") is Role.METER
    assert Role.DSO.id == keccak(text="DSO")
    assert Role.from_id(Role.METER.id) is Role.METER
    with pytest.raises(UnknownRoleError) as err:
        Role.parse("king")
    assert "DSO" in (err.value.hint or "")
    with pytest.raises(UnknownRoleError, match="no market role"):
        Role.from_id(b"\0" * 32)


def test_role_commands(
    conn: ChainConnection, manifest: Manifest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dev_signers: list[Signer]
) -> None:
    manifest.save(tmp_path / "manifest.json")
    monkeypatch.setenv("FLEXLEDGER_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("FLEXLEDGER_RPC_URL", conn.rpc_url)
    runner = CliRunner()
    subject = str(did_for(dev_signers[9].address, conn.chain_id))
    assert runner.invoke(app, ["role", "check", subject, "prosumer"]).exit_code == 3

    granted = runner.invoke(app, ["role", "grant", subject, "prosumer", "--valid-until", "+30d",
                                  "--out", str(tmp_path / "vc.json"), "--json"])
    assert granted.exit_code == 0, granted.output
    out = json.loads(granted.stdout)
    assert out["credential"] == json.loads((tmp_path / "vc.json").read_text())
    assert out["credential_hash"] == "0x" + credential_hash(out["credential"]).hex()

    check = runner.invoke(app, ["role", "check", dev_signers[9].address, "PROSUMER", "--json"])
    assert check.exit_code == 0, check.output
    assert json.loads(check.stdout)["credential_hash"] == out["credential_hash"]
    verified = runner.invoke(app, ["role", "verify", str(tmp_path / "vc.json"), "--json"])
    assert verified.exit_code == 0 and json.loads(verified.stdout)["role"] == "PROSUMER"

    assert runner.invoke(app, ["role", "revoke", subject, "prosumer"]).exit_code == 0
    assert runner.invoke(app, ["role", "check", subject, "prosumer"]).exit_code == 3
    with pytest.raises(CredentialInvalidError, match="revoked"):
        runner.invoke(app, ["role", "verify", str(tmp_path / "vc.json")], catch_exceptions=False)
    bad_date = runner.invoke(app, ["role", "grant", subject, "dso", "--valid-until", "next week"])
    assert bad_date.exit_code == 2 and "--valid-until" in bad_date.output
    with pytest.raises(UnknownRoleError):
        runner.invoke(app, ["role", "grant", subject, "king"], catch_exceptions=False)
