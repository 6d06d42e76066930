"""EIP-712 typed data whose signing domain is read from the contract (ERC-5267), never hard-coded.

A domain copied into the code goes stale the day a contract is redeployed or renamed, and a
signature made in a stale domain fails on chain with no hint why. Reading ``eip712Domain()``
from the contract itself keeps the wallet, this code and the contract in one domain.

The typed data itself (domain, message, hashes, signature rules) is pure and sits with the rules
in :mod:`flexledger.rules.typed_data`, so that the rules and the optimiser load no web3; it is
re-exported here for the callers that also read a domain from the chain.
"""

from __future__ import annotations

from eth_utils import keccak, to_checksum_address
from web3.exceptions import ContractLogicError, Web3RPCError

from flexledger.chain.abi import decode_values
from flexledger.chain.connection import ChainConnection
from flexledger.rules.typed_data import (
    DOMAIN_FIELDS,
    SECP256K1_HALF_N,
    Eip712Domain,
    TypedData,
    TypedDataError,
    recover_strict,
    typed_data_from_json,
    typed_digest,
)

__all__ = [
    "DOMAIN_FIELDS",
    "ERC5267_SELECTOR",
    "ERC5267_TYPES",
    "SECP256K1_HALF_N",
    "Eip712Domain",
    "TypedData",
    "TypedDataError",
    "read_domain",
    "recover_strict",
    "typed_data_from_json",
    "typed_digest",
]

ERC5267_SELECTOR = keccak(text="eip712Domain()")[:4]
ERC5267_TYPES = ["bytes1", "string", "string", "uint256", "address", "bytes32", "uint256[]"]


def read_domain(conn: ChainConnection, address: str, *, block: int | str = "latest") -> Eip712Domain:
    """The signing domain of the contract at ``address``, from its ERC-5267 ``eip712Domain()``."""
    target = to_checksum_address(address)
    try:
        raw = bytes(conn.w3.eth.call({"to": target, "data": ERC5267_SELECTOR}, block))  # type: ignore[arg-type]
    except (ContractLogicError, Web3RPCError) as exc:
        raise TypedDataError(
            f"{target} on chain {conn.chain_id} does not answer ERC-5267 eip712Domain(): {exc}",
            hint="check the address: the contract must inherit OpenZeppelin's EIP712 (or implement ERC-5267)",
        ) from exc
    if not raw:
        raise TypedDataError(
            f"{target} on chain {conn.chain_id} has no code or no eip712Domain()",
            hint="check the address and that the contracts are deployed on this chain",
        )
    try:
        fields, name, version, chain_id, contract, salt, extensions = decode_values(ERC5267_TYPES, raw)
    except Exception as exc:  # eth-abi raises several decoding errors
        raise TypedDataError(f"{target}'s eip712Domain() answer is not ERC-5267: {exc}") from exc
    if extensions:
        raise TypedDataError(f"{target} declares EIP-712 extensions {list(extensions)}, which flexledger does not know")
    bits = fields[0]
    if bits & ~0x1F:
        raise TypedDataError(f"{target}'s eip712Domain() sets unknown field bits 0x{bits:02x}")
    return Eip712Domain(
        name=name if bits & 0x01 else None,
        version=version if bits & 0x02 else None,
        chain_id=chain_id if bits & 0x04 else None,
        verifying_contract=to_checksum_address(contract) if bits & 0x08 else None,
        salt=bytes(salt) if bits & 0x10 else None,
    )
