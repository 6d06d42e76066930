"""EIP-712 typed data as values: the domain, a message in its types, their hashes, and the
signature rules OpenZeppelin's ECDSA applies. Pure: no chain, no network (DESIGN.md: the rules at
the bottom). Reading a contract's domain from the chain (ERC-5267) is
:func:`flexledger.identity.eip712.read_domain`.

The JSON built here is what any wallet signs with ``eth_signTypedData_v4``; hashing and
signing use eth-account's encoder (never a hand-written one), and tests/identity/test_eip712.py holds both
against ethers (npm) and against OpenZeppelin's ``EIP712`` on chain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from coincurve import PublicKey
from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address

from flexledger.errors import FlexledgerError

# The EIP712Domain fields in their canonical order; bit i of ERC-5267's `fields` marks field i.
DOMAIN_FIELDS = (
    ("name", "string"),
    ("version", "string"),
    ("chainId", "uint256"),
    ("verifyingContract", "address"),
    ("salt", "bytes32"),
)
_JS_SAFE = 2**53 - 1


class TypedDataError(FlexledgerError):
    """The contract publishes no usable EIP-712 domain, or typed data cannot be hashed or recovered."""


@dataclass(frozen=True)
class Eip712Domain:
    """A signing domain, as a contract reports it through ERC-5267 (absent fields are ``None``)."""

    name: str | None
    version: str | None
    chain_id: int | None
    verifying_contract: str | None
    salt: bytes | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``domain`` member of ``eth_signTypedData_v4`` (only the fields the domain has)."""
        values = {
            "name": self.name,
            "version": self.version,
            "chainId": self.chain_id,
            "verifyingContract": self.verifying_contract,
            "salt": "0x" + self.salt.hex() if self.salt is not None else None,
        }
        return {k: v for k, v in values.items() if v is not None}

    def types(self) -> list[dict[str, str]]:
        """The ``EIP712Domain`` type: the present fields, in canonical order."""
        present = self.to_json()
        return [{"name": n, "type": t} for n, t in DOMAIN_FIELDS if n in present]

    def separator(self) -> bytes:
        """``hashStruct(domain)``: the domain separator a contract's ``_domainSeparatorV4()`` returns."""
        try:
            return bytes(encode_typed_data(full_message={
                "types": {"EIP712Domain": self.types(), "Nothing": []}, "primaryType": "Nothing",
                "domain": self.to_json(), "message": {}}).header)
        except Exception as exc:  # eth-account raises several types for a domain that does not fit its type
            raise TypedDataError(f"the domain {self.to_json()} cannot be hashed: {exc}") from exc

    @classmethod
    def from_json(cls, domain: dict[str, Any]) -> Eip712Domain:
        """Read the ``domain`` member of typed-data JSON (``TypedDataError`` if it is malformed)."""
        unknown = set(domain) - {n for n, _ in DOMAIN_FIELDS}
        if unknown:
            raise TypedDataError(f"unknown EIP712Domain fields {sorted(unknown)}")
        try:
            salt = domain.get("salt")
            chain_id = domain.get("chainId")
            contract = domain.get("verifyingContract")
            return cls(
                domain.get("name"),
                domain.get("version"),
                int(chain_id, 0) if isinstance(chain_id, str) else chain_id,
                to_checksum_address(contract) if contract is not None else None,
                bytes.fromhex(salt.removeprefix("0x")) if salt is not None else None,
            )
        except (TypeError, ValueError, AttributeError) as exc:
            raise TypedDataError(f"malformed EIP712Domain {domain}: {exc}") from exc


def _jsonable(value: Any) -> Any:
    """Message values as wallets take them: bytes as 0x-hex, integers past 2^53 as decimal strings."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and abs(value) > _JS_SAFE:
        return str(value)  # a JavaScript number would round it
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


@dataclass(frozen=True)
class TypedData:
    """One typed-data message in one domain; ``types`` excludes ``EIP712Domain`` (the domain gives it)."""

    domain: Eip712Domain
    primary_type: str
    types: dict[str, list[dict[str, str]]]
    message: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """The ``eth_signTypedData_v4`` payload."""
        return {
            "types": {"EIP712Domain": self.domain.types(), **self.types},
            "primaryType": self.primary_type,
            "domain": self.domain.to_json(),
            "message": _jsonable(self.message),
        }

    def signable(self) -> SignableMessage:
        try:
            return encode_typed_data(full_message=self.to_json())
        except Exception as exc:  # eth-account raises several types for data that does not fit its types
            raise TypedDataError(f"the {self.primary_type} message does not fit its EIP-712 types: {exc}") from exc

    def domain_separator(self) -> bytes:
        """``hashStruct(domain)``, as OpenZeppelin's ``_domainSeparatorV4()`` computes it."""
        return bytes(self.signable().header)

    def struct_hash(self) -> bytes:
        """``hashStruct(message)``: what a contract passes to ``_hashTypedDataV4``."""
        return bytes(self.signable().body)

    def digest(self) -> bytes:
        """The 32-byte hash that is signed: ``keccak256(0x1901 || domainSeparator || hashStruct(message))``."""
        msg = self.signable()
        return keccak(b"\x19" + msg.version + msg.header + msg.body)

    def sign(self, account: LocalAccount) -> bytes:
        """A 65-byte signature (r || s || v, v in {27, 28}) by ``account``, as wallets return it."""
        return bytes(account.sign_message(self.signable()).signature)

    def recover(self, signature: bytes) -> str:
        """The checksummed address that made ``signature`` over this message."""
        if len(signature) != 65:
            raise TypedDataError(f"a signature has 65 bytes, this one {len(signature)}")
        try:
            return str(Account.recover_message(self.signable(), signature=signature))
        except TypedDataError:
            raise
        except Exception as exc:  # eth-keys raises several types for a signature off the curve
            raise TypedDataError(f"the signature does not recover to any address: {exc}") from exc


def typed_data_from_json(payload: dict[str, Any]) -> TypedData:
    """Read back an ``eth_signTypedData_v4`` payload (for example one a wallet signed)."""
    try:
        domain = Eip712Domain.from_json(payload["domain"])
        types = {k: v for k, v in payload["types"].items() if k != "EIP712Domain"}
        declared = payload["types"].get("EIP712Domain")
        if declared is not None and declared != domain.types():
            raise TypedDataError(f"the EIP712Domain type {declared} does not match the domain {domain.to_json()}")
        return TypedData(domain, str(payload["primaryType"]), types, dict(payload["message"]))
    except (KeyError, TypeError, AttributeError) as exc:
        raise TypedDataError(f"not an eth_signTypedData_v4 payload: missing or bad {exc}") from exc


SECP256K1_HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0


def typed_digest(domain_separator: bytes, struct_hash: bytes) -> bytes:
    """``keccak256(0x1901 || domainSeparator || hashStruct(message))``, for callers that hash a flat
    struct themselves because they hash many (offers, readings)."""
    return keccak(b"\x19\x01" + domain_separator + struct_hash)


def recover_strict(digest: bytes, signature: bytes) -> str | None:
    """Who signed ``digest``, by OpenZeppelin ECDSA's rules (65 bytes, v 27 or 28, no malleable high
    s), or None. Uses coincurve, about twice as fast as eth-account here."""
    if len(signature) != 65 or signature[64] not in (27, 28):
        return None
    if int.from_bytes(signature[32:64], "big") > SECP256K1_HALF_N:
        return None
    try:
        key = PublicKey.from_signature_and_message(signature[:64] + bytes([signature[64] - 27]), digest, hasher=None)
    except Exception:  # coincurve raises several types for a signature off the curve
        return None
    return to_checksum_address(keccak(key.format(compressed=False)[1:])[-20:])

