"""W3C verifiable credentials for market roles, signed with EIP-712 by the market authority.

A credential says "subject S holds role R in this market from T1 until T2". It is signed off
chain as EIP-712 typed data in the RoleRegistry's own domain (read from the contract), so any
wallet can check it and it cannot be replayed on another market or chain. Its EIP-712 hash is
what the RoleRegistry stores as ``credentialHash``: the document stays off chain, the chain
anchors it. Verification needs no network; :func:`verify_on_chain` adds the revocation check.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address

from flexledger.chain.bindings import RoleRegistryClient
from flexledger.chain.client import TxResult
from flexledger.errors import FlexledgerError

from .did import did_for, parse_did
from .eip712 import Eip712Domain, TypedData, read_domain
from .roles import Role

VC_CONTEXT = "https://www.w3.org/ns/credentials/v2"
CREDENTIAL_TYPE = "FlexledgerRoleCredential"
PROOF_TYPE = "EthereumEip712Signature2021"
NO_EXPIRY = 2**64 - 1
ROLE_CREDENTIAL_TYPES = {
    "RoleCredential": [
        {"name": "issuer", "type": "address"},
        {"name": "subject", "type": "address"},
        {"name": "role", "type": "string"},
        {"name": "validFrom", "type": "uint64"},
        {"name": "validUntil", "type": "uint64"},
    ]
}


class CredentialInvalidError(FlexledgerError):
    """A credential whose signature, hash, issuer or validity does not hold."""


def _iso(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _seconds(text: str) -> int:
    return int(dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp())


def _typed(vc: dict[str, Any], domain: Eip712Domain) -> TypedData:
    """The typed data a credential's proof signs, rebuilt from the credential's own fields."""
    try:
        subject = vc["credentialSubject"]
        message = {
            "issuer": parse_did(vc["issuer"]).address,
            "subject": parse_did(subject["id"]).address,
            "role": Role.parse(subject["role"]).value,
            "validFrom": _seconds(vc["validFrom"]),
            "validUntil": _seconds(vc["validUntil"]) if "validUntil" in vc else NO_EXPIRY,
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise CredentialInvalidError(f"not a flexledger role credential: missing or bad {exc}") from exc
    return TypedData(domain, "RoleCredential", ROLE_CREDENTIAL_TYPES, message)


def _domain(vc: dict[str, Any]) -> Eip712Domain:
    try:
        d = vc["proof"]["eip712"]["domain"]
        return Eip712Domain(d.get("name"), d.get("version"), d.get("chainId"), d.get("verifyingContract"))
    except (KeyError, TypeError) as exc:
        raise CredentialInvalidError("the credential has no EIP-712 proof") from exc


def issue_role_credential(
    issuer: LocalAccount,
    subject: str,
    role: Role,
    domain: Eip712Domain,
    *,
    valid_from: int,
    valid_until: int = NO_EXPIRY,
    created: int | None = None,
) -> dict[str, Any]:
    """A signed role credential for ``subject`` (an address) in the RoleRegistry's ``domain``."""
    if domain.chain_id is None or domain.verifying_contract is None:
        raise CredentialInvalidError("the RoleRegistry's domain must name its chain and contract")
    if not valid_until > 0 or valid_until < valid_from:
        raise CredentialInvalidError(f"empty validity period {valid_from}..{valid_until}")
    chain = domain.chain_id
    vc: dict[str, Any] = {
        "@context": [VC_CONTEXT],
        "type": ["VerifiableCredential", CREDENTIAL_TYPE],
        "issuer": str(did_for(issuer.address, chain)),
        "validFrom": _iso(valid_from),
        "credentialSubject": {
            "id": str(did_for(subject, chain)),
            "role": role.value,
            "market": str(did_for(domain.verifying_contract, chain)),
        },
    }
    if valid_until != NO_EXPIRY:
        vc["validUntil"] = _iso(valid_until)
    typed = _typed(vc, domain)
    vc["proof"] = {
        "type": PROOF_TYPE,
        "created": _iso(created if created is not None else int(time.time())),
        "proofPurpose": "assertionMethod",
        "verificationMethod": f"{vc['issuer']}#controller",
        "proofValue": "0x" + typed.sign(issuer).hex(),
        "eip712": {"domain": domain.to_json(), "types": ROLE_CREDENTIAL_TYPES, "primaryType": "RoleCredential"},
    }
    return vc


def credential_hash(vc: dict[str, Any]) -> bytes:
    """The EIP-712 hash of the credential: the ``credentialHash`` anchored in the RoleRegistry."""
    return _typed(vc, _domain(vc)).digest()


def verify_credential(
    vc: dict[str, Any], *, expected_domain: Eip712Domain | None = None, now: int | None = None
) -> Role:
    """Check a credential offline: issuer's signature, domain, validity at ``now``; returns its role."""
    domain = _domain(vc)
    if expected_domain is not None and domain != expected_domain:
        raise CredentialInvalidError(f"the credential is for domain {domain.to_json()}, not {expected_domain.to_json()}")
    typed = _typed(vc, domain)
    try:
        signature = bytes.fromhex(str(vc["proof"]["proofValue"]).removeprefix("0x"))
    except (KeyError, ValueError) as exc:
        raise CredentialInvalidError("the credential's proofValue is missing or not hex") from exc
    try:
        signer = typed.recover(signature)
    except FlexledgerError as exc:
        raise CredentialInvalidError(f"the credential's signature is invalid: {exc.message}") from exc
    issuer = typed.message["issuer"]
    if signer != issuer:
        raise CredentialInvalidError(
            f"the credential was signed by {signer}, not by its issuer {issuer} (tampered or forged)"
        )
    moment = int(time.time()) if now is None else now
    if not typed.message["validFrom"] <= moment <= typed.message["validUntil"]:
        raise CredentialInvalidError(f"the credential is not valid at {_iso(moment)}")
    return Role.parse(typed.message["role"])


def verify_on_chain(vc: dict[str, Any], roles: RoleRegistryClient) -> Role:
    """Also check that the RoleRegistry anchors this very credential and has not revoked it."""
    role = verify_credential(vc, expected_domain=read_domain(roles.conn, roles.address),
                             now=roles.conn.latest_timestamp())
    subject = parse_did(vc["credentialSubject"]["id"]).address
    valid_from, valid_until, revoked, anchored = roles.credential_of(subject, role.id)
    if anchored != credential_hash(vc):
        raise CredentialInvalidError(
            f"the RoleRegistry anchors another credential for {subject} as {role.value} "
            f"(0x{anchored.hex()}), not this one"
        )
    if revoked:
        raise CredentialInvalidError(f"the {role.value} credential of {subject} was revoked")
    typed = _typed(vc, _domain(vc))
    if (valid_from, valid_until) != (typed.message["validFrom"], typed.message["validUntil"]):
        raise CredentialInvalidError("the RoleRegistry's validity period differs from the credential's")
    return role


def grant_role(
    roles: RoleRegistryClient,
    issuer: LocalAccount,
    subject: str,
    role: Role,
    *,
    valid_from: int,
    valid_until: int = NO_EXPIRY,
    wait: bool = True,
) -> tuple[dict[str, Any], TxResult]:
    """Issue the signed credential and anchor it: one call for the authority."""
    subject = to_checksum_address(subject)
    vc = issue_role_credential(issuer, subject, role, read_domain(roles.conn, roles.address),
                               valid_from=valid_from, valid_until=valid_until)
    tx = roles.issue_credential(subject, role.id, valid_from, valid_until, credential_hash(vc), wait=wait)
    return vc, tx
