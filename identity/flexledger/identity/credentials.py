"""W3C verifiable credentials for market roles, signed with EIP-712 by a market issuer.

A credential says "subject S holds role R in market M from T1 until T2" (VC data model 2.0).
Its proof is an ``EthereumEip712Signature2021``: the credential itself, with the proof's
options and without ``proofValue``, signed as EIP-712 typed data whose types and domain travel
in ``proof.eip712``, so any verifier of that suite (or a wallet) can check it. The domain is
the RoleRegistry's own, read from the contract (ERC-5267), which ties a credential to one
market on one chain: it cannot be replayed elsewhere.

The EIP-712 hash of the credential is what the RoleRegistry stores as ``credentialHash``: the
document stays off chain (it names parties), the chain anchors it and can revoke it.
:func:`verify_credential` needs no network; :func:`verify_on_chain` adds the anchor, the
revocation and the issuer's appointment.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from flexledger.chain.bindings import MarketAuthorityClient, RoleRegistryClient
from flexledger.chain.client import TxResult
from flexledger.errors import FlexledgerError

from .did import MalformedDIDError, did_for, parse_did, subject_address
from .eip712 import Eip712Domain, TypedData, TypedDataError, read_domain
from .roles import Role, UnknownRoleError

VC_CONTEXT = "https://www.w3.org/ns/credentials/v2"
CREDENTIAL_TYPE = "MarketRoleCredential"
PROOF_TYPE = "EthereumEip712Signature2021"
PRIMARY_TYPE = "VerifiableCredential"
PROOF_PURPOSE = "assertionMethod"
NO_EXPIRY = 2**64 - 1  # the RoleRegistry's "never expires"; such a credential has no validUntil
ISSUER_ROLE = keccak(text="ISSUER")
_SIGNED_PROOF_MEMBERS = ("type", "created", "proofPurpose", "verificationMethod")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


class CredentialInvalidError(FlexledgerError):
    """A credential whose shape, signature, issuer, anchor or validity period does not hold."""


@dataclass(frozen=True)
class RoleCredential:
    """What a verified credential states, with the hash the RoleRegistry anchors."""

    issuer: str  # address
    subject: str  # address
    role: Role
    valid_from: int
    valid_until: int  # NO_EXPIRY when the credential has no validUntil
    credential_hash: bytes
    domain: Eip712Domain


def credential_types(*, expires: bool) -> dict[str, list[dict[str, str]]]:
    """The EIP-712 types of a role credential (``validUntil`` only when it expires)."""
    until = [{"name": "validUntil", "type": "string"}] if expires else []
    return {
        PRIMARY_TYPE: [
            {"name": "@context", "type": "string[]"},
            {"name": "type", "type": "string[]"},
            {"name": "issuer", "type": "string"},
            {"name": "validFrom", "type": "string"},
            *until,
            {"name": "credentialSubject", "type": "CredentialSubject"},
            {"name": "proof", "type": "Proof"},
        ],
        "CredentialSubject": [
            {"name": "id", "type": "string"},
            {"name": "role", "type": "string"},
            {"name": "market", "type": "string"},
        ],
        "Proof": [{"name": name, "type": "string"} for name in _SIGNED_PROOF_MEMBERS],
    }


def iso(timestamp: int) -> str:
    """Unix seconds as the XML Schema dateTime the VC data model uses (UTC, whole seconds)."""
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _seconds(member: str, text: Any) -> int:
    if not isinstance(text, str) or not _DATE.match(text):
        raise CredentialInvalidError(f"{member} {text!r} is not a UTC date-time like 2026-01-01T00:00:00Z")
    return int(dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp())


def _exact_members(where: str, data: Any, expected: set[str]) -> dict[str, Any]:
    """Refuse missing members, and members the signature would not cover (they could be added freely)."""
    if not isinstance(data, dict):
        raise CredentialInvalidError(f"{where} is not a JSON object")
    missing, extra = expected - set(data), set(data) - expected
    if missing:
        raise CredentialInvalidError(f"{where} lacks {sorted(missing)}")
    if extra:
        raise CredentialInvalidError(f"{where} has members that the signature does not cover: {sorted(extra)}")
    return data


def _typed(vc: dict[str, Any]) -> TypedData:
    """The typed data a credential's proof signs: the credential, with the proof's options but not its value."""
    expires = isinstance(vc, dict) and "validUntil" in vc
    top = {"@context", "type", "issuer", "validFrom", "credentialSubject", "proof"} | ({"validUntil"} if expires else set())
    _exact_members("the credential", vc, top)
    _exact_members("credentialSubject", vc["credentialSubject"], {"id", "role", "market"})
    proof = _exact_members("proof", vc["proof"], {*_SIGNED_PROOF_MEMBERS, "proofValue", "eip712"})
    eip712 = _exact_members("proof.eip712", proof["eip712"], {"domain", "types", "primaryType"})
    types = credential_types(expires=expires)
    try:
        domain = Eip712Domain.from_json(eip712["domain"])
    except (TypedDataError, AttributeError) as exc:
        raise CredentialInvalidError(f"proof.eip712.domain is not an EIP-712 domain: {exc}") from exc
    declared = {k: v for k, v in eip712["types"].items() if k != "EIP712Domain"} if isinstance(eip712["types"], dict) else None
    if eip712["primaryType"] != PRIMARY_TYPE or declared != types:
        raise CredentialInvalidError("proof.eip712 does not declare the role credential's EIP-712 types")
    message = {k: v for k, v in vc.items() if k != "proof"}
    message["proof"] = {k: proof[k] for k in _SIGNED_PROOF_MEMBERS}
    return TypedData(domain, PRIMARY_TYPE, types, message)


def credential_hash(vc: dict[str, Any]) -> bytes:
    """The credential's EIP-712 hash (what its issuer signs): the ``credentialHash`` anchored on chain."""
    try:
        return _typed(vc).digest()
    except TypedDataError as exc:
        raise CredentialInvalidError(f"the credential does not fit its EIP-712 types: {exc.message}") from exc


def issue_role_credential(
    issuer: LocalAccount,
    subject: str,
    role: Role | str,
    domain: Eip712Domain,
    *,
    valid_from: int,
    valid_until: int = NO_EXPIRY,
    created: int | None = None,
) -> dict[str, Any]:
    """A role credential for ``subject`` (address or did:ethr), signed by ``issuer`` in the RoleRegistry's ``domain``."""
    if domain.chain_id is None or domain.verifying_contract is None:
        raise CredentialInvalidError(
            "the signing domain must name its chain and contract",
            hint="read it from the RoleRegistry with read_domain()",
        )
    if not 0 <= valid_from <= valid_until or valid_until == 0:
        raise CredentialInvalidError(f"the validity period {valid_from}..{valid_until} is empty or reversed")
    chain = domain.chain_id
    role = Role.parse(role) if isinstance(role, str) else role
    issuer_did = str(did_for(issuer.address, chain))
    vc: dict[str, Any] = {
        "@context": [VC_CONTEXT],
        "type": ["VerifiableCredential", CREDENTIAL_TYPE],
        "issuer": issuer_did,
        "validFrom": iso(valid_from),
        "credentialSubject": {
            "id": str(did_for(subject_address(subject, chain), chain)),
            "role": role.value,
            "market": str(did_for(domain.verifying_contract, chain)),
        },
    }
    if valid_until != NO_EXPIRY:
        vc["validUntil"] = iso(valid_until)
    vc["proof"] = {
        "type": PROOF_TYPE,
        "created": iso(int(time.time()) if created is None else created),
        "proofPurpose": PROOF_PURPOSE,
        "verificationMethod": f"{issuer_did}#controller",
        "proofValue": "",
        "eip712": {
            "domain": domain.to_json(),
            "types": {"EIP712Domain": domain.types(), **credential_types(expires=valid_until != NO_EXPIRY)},
            "primaryType": PRIMARY_TYPE,
        },
    }
    vc["proof"]["proofValue"] = "0x" + _typed(vc).sign(issuer).hex()
    return vc


def verify_credential(
    vc: dict[str, Any], *, domain: Eip712Domain | None = None, now: int | None = None
) -> RoleCredential:
    """Check a credential offline: its shape, its issuer's signature, its market and its validity at ``now``.

    ``domain`` (the RoleRegistry's, from :func:`read_domain`) pins the market; without it any
    market's credential verifies. ``now`` defaults to this machine's clock.
    """
    typed = _typed(vc)
    if vc["@context"] != [VC_CONTEXT] or vc["type"] != ["VerifiableCredential", CREDENTIAL_TYPE]:
        raise CredentialInvalidError(f"not a {CREDENTIAL_TYPE} (VC data model 2.0): @context or type differ")
    proof = vc["proof"]
    if proof["type"] != PROOF_TYPE or proof["proofPurpose"] != PROOF_PURPOSE:
        raise CredentialInvalidError(f"the proof is not an {PROOF_TYPE} for {PROOF_PURPOSE}")
    if domain is not None and typed.domain != domain:
        raise CredentialInvalidError(
            f"the credential was signed for the domain {typed.domain.to_json()}, not this market's {domain.to_json()}"
        )
    chain, contract = typed.domain.chain_id, typed.domain.verifying_contract
    try:
        issuer, subject = parse_did(vc["issuer"]), parse_did(vc["credentialSubject"]["id"])
        role = Role.parse(vc["credentialSubject"]["role"])
        if chain is None or contract is None or vc["credentialSubject"]["market"] != str(did_for(contract, chain)):
            raise CredentialInvalidError("credentialSubject.market is not the contract that the signature's domain names")
    except (MalformedDIDError, UnknownRoleError, AttributeError) as exc:
        raise CredentialInvalidError(f"the credential names a bad party or role: {exc}") from exc
    if issuer.chain_id != chain or subject.chain_id != chain:
        raise CredentialInvalidError(f"the issuer's and the subject's DIDs must be DIDs of chain {chain}")
    if proof["verificationMethod"] != f"{issuer}#controller":
        raise CredentialInvalidError("proof.verificationMethod is not the issuer's #controller")
    valid_from = _seconds("validFrom", vc["validFrom"])
    valid_until = _seconds("validUntil", vc["validUntil"]) if "validUntil" in vc else NO_EXPIRY
    try:
        signature = bytes.fromhex(str(proof["proofValue"]).removeprefix("0x"))
        signer = typed.recover(signature)
    except (ValueError, TypedDataError) as exc:
        raise CredentialInvalidError(f"the credential's proofValue is not a valid signature: {exc}") from exc
    if signer != issuer.address:
        raise CredentialInvalidError(
            f"the credential was signed by {signer}, not by its issuer {issuer.address}: it was altered or forged",
            hint="ask the issuer for the credential as issued",
        )
    moment = int(time.time()) if now is None else now
    if moment < valid_from:
        raise CredentialInvalidError(f"the credential is not valid yet at {iso(moment)} (valid from {vc['validFrom']})")
    if moment > valid_until:
        raise CredentialInvalidError(
            f"the credential expired at {vc['validUntil']} (checked at {iso(moment)})", hint="ask the issuer to renew it"
        )
    return RoleCredential(issuer.address, subject.address, role, valid_from, valid_until, typed.digest(), typed.domain)


def verify_on_chain(vc: dict[str, Any], roles: RoleRegistryClient) -> RoleCredential:
    """Verify offline in this RoleRegistry's domain at the chain's time, then check that the registry
    anchors this very credential, has not revoked it, and that its issuer is an appointed issuer."""
    checked = verify_credential(vc, domain=read_domain(roles.conn, roles.address), now=roles.conn.latest_timestamp())
    valid_from, valid_until, revoked, anchored = roles.credential_of(checked.subject, checked.role.id)
    if anchored != checked.credential_hash:
        raise CredentialInvalidError(
            f"the RoleRegistry anchors {'no' if not any(anchored) else 'another'} {checked.role.value} credential "
            f"for {checked.subject} (0x{anchored.hex()}), not this one (0x{checked.credential_hash.hex()})",
            hint="a credential that was reissued or never anchored is no longer the valid one",
        )
    if revoked:
        raise CredentialInvalidError(f"the {checked.role.value} credential of {checked.subject} was revoked")
    if (valid_from, valid_until) != (checked.valid_from, checked.valid_until):
        raise CredentialInvalidError("the RoleRegistry's validity period differs from the credential's")
    authority = MarketAuthorityClient(roles.conn, roles.authority())
    if not authority.has_role(ISSUER_ROLE, checked.issuer):
        raise CredentialInvalidError(f"{checked.issuer} is not (or no longer) an issuer of the MarketAuthority")
    return checked


def _issuer_of(roles: RoleRegistryClient, issuer: LocalAccount | None) -> LocalAccount:
    if issuer is not None:
        return issuer
    if roles.signer is None:
        raise CredentialInvalidError(
            "no issuer key to sign the credential", hint="build the RoleRegistryClient with the issuer's signer"
        )
    return roles.signer.account


def grant_role(
    roles: RoleRegistryClient,
    subject: str,
    role: Role,
    *,
    valid_from: int,
    valid_until: int = NO_EXPIRY,
    issuer: LocalAccount | None = None,
    wait: bool = True,
) -> tuple[dict[str, Any], TxResult]:
    """Sign the credential and anchor its hash, in one call.

    ``issuer`` signs (default: ``roles``' signer, which sends the transaction and must be an
    issuer of the MarketAuthority, or the registry reverts with ``RoleRegistryNotIssuer``).
    """
    domain = read_domain(roles.conn, roles.address)
    vc = issue_role_credential(
        _issuer_of(roles, issuer), subject, role, domain, valid_from=valid_from, valid_until=valid_until
    )
    address = subject_address(subject, domain.chain_id)
    tx = roles.issue_credential(address, role.id, valid_from, valid_until, credential_hash(vc), wait=wait)
    return vc, tx


def grant_roles(
    roles: RoleRegistryClient,
    grants: list[tuple[str, Role]],
    *,
    valid_from: int,
    valid_until: int = NO_EXPIRY,
    issuer: LocalAccount | None = None,
    wait: bool = True,
) -> tuple[list[dict[str, Any]], TxResult]:
    """Many credentials (say, the METER role of a thousand meters) anchored in one transaction."""
    domain = read_domain(roles.conn, roles.address)
    key = _issuer_of(roles, issuer)
    vcs = [
        issue_role_credential(key, subject, role, domain, valid_from=valid_from, valid_until=valid_until)
        for subject, role in grants
    ]
    tx = roles.issue_credentials(
        [subject_address(subject, domain.chain_id) for subject, _ in grants],
        [role.id for _, role in grants],
        [valid_from] * len(grants),
        [valid_until] * len(grants),
        [credential_hash(vc) for vc in vcs],
        wait=wait,
    )
    return vcs, tx
