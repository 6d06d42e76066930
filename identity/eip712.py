"""EIP-712 typed data whose signing domain is read from the contract (ERC-5267), never hard-coded.

The JSON produced here is what any wallet signs with ``eth_signTypedData_v4``; hashing and
signing use eth-account's encoder, and the tests hold both against ethers (npm).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from web3.exceptions import ContractLogicError

from flexledger.chain.abi import decode_values
from flexledger.chain.connection import ChainConnection
from flexledger.errors import FlexledgerError

ERC5267_SELECTOR = keccak(text="eip712Domain()")[:4]
_DOMAIN_FIELDS = (
    ("name", "string"),
    ("version", "string"),
    ("chainId", "uint256"),
    ("verifyingContract", "address"),
    ("salt", "bytes32"),
)


class TypedDataError(FlexledgerError):
    """The contract publishes no usable EIP-712 domain, or a signature does not fit."""


@dataclass(frozen=True)
class Eip712Domain:
    """A signing domain as a contract reports it through ERC-5267."""

    name: str | None
    version: str | None
    chain_id: int | None
    verifying_contract: str | None
    salt: bytes | None = None

    def to_json(self) -> dict[str, Any]:
        values = {
            "name": self.name,
            "version": self.version,
            "chainId": self.chain_id,
            "verifyingContract": self.verifying_contract,
            "salt": "0x" + self.salt.hex() if self.salt is not None else None,
        }
        return {k: v for k, v in values.items() if v is not None}

    def types(self) -> list[dict[str, str]]:
        present = self.to_json()
        return [{"name": n, "type": t} for n, t in _DOMAIN_FIELDS if n in present]


def read_domain(conn: ChainConnection, address: str) -> Eip712Domain:
    """The domain of the contract at ``address``, from its ``eip712Domain()`` (ERC-5267)."""
    try:
        raw = conn.w3.eth.call({"to": to_checksum_address(address), "data": ERC5267_SELECTOR})
    except ContractLogicError as exc:
        raise TypedDataError(f"{address} does not implement ERC-5267 eip712Domain(): {exc}") from exc
    if not raw:
        raise TypedDataError(f"{address} has no code or no eip712Domain() on chain {conn.chain_id}")
    fields, name, version, chain_id, contract, salt, extensions = decode_values(
        ["bytes1", "string", "string", "uint256", "address", "bytes32", "uint256[]"], bytes(raw)
    )
    if extensions:
        raise TypedDataError(f"{address} uses EIP-712 extensions {extensions}, which flexledger does not know")
    bits = fields[0]
    return Eip712Domain(
        name=name if bits & 1 else None,
        version=version if bits & 2 else None,
        chain_id=chain_id if bits & 4 else None,
        verifying_contract=contract if bits & 8 else None,
        salt=salt if bits & 16 else None,
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


@dataclass(frozen=True)
class TypedData:
    """One typed-data message in one domain."""

    domain: Eip712Domain
    primary_type: str
    types: dict[str, list[dict[str, str]]]
    message: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """The ``eth_signTypedData_v4`` payload (integers as JSON numbers, bytes as 0x-hex)."""
        return {
            "types": {"EIP712Domain": self.domain.types(), **self.types},
            "primaryType": self.primary_type,
            "domain": self.domain.to_json(),
            "message": _jsonable(self.message),
        }

    def signable(self) -> SignableMessage:
        return encode_typed_data(full_message=self.to_json())

    def digest(self) -> bytes:
        """The 32-byte hash that is signed (``keccak256(0x1901 || domainSeparator || hashStruct)``)."""
        msg = self.signable()
        return keccak(b"\x19" + msg.version + msg.header + msg.body)

    def sign(self, account: LocalAccount) -> bytes:
        """A 65-byte signature (r || s || v) by ``account``."""
        return bytes(account.sign_message(self.signable()).signature)

    def recover(self, signature: bytes) -> str:
        try:
            return str(Account.recover_message(self.signable(), signature=signature))
        except Exception as exc:
            raise TypedDataError(f"the signature does not recover: {exc}") from exc


def typed_data_from_json(payload: dict[str, Any]) -> TypedData:
    """Read back an ``eth_signTypedData_v4`` payload (for example one a wallet signed)."""
    domain = payload["domain"]
    salt = domain.get("salt")
    types = {k: v for k, v in payload["types"].items() if k != "EIP712Domain"}
    return TypedData(
        Eip712Domain(
            domain.get("name"),
            domain.get("version"),
            int(domain["chainId"]) if "chainId" in domain else None,
            domain.get("verifyingContract"),
            bytes.fromhex(salt[2:]) if salt else None,
        ),
        payload["primaryType"],
        types,
        payload["message"],
    )
