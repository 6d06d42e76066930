"""EIP-712: the domain read from the contract (ERC-5267), hashes and signatures held against
eth-account and against an ordinary wallet library (ethers, npm)."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data

from flexledger.chain import paths
from flexledger.chain.connection import ChainConnection
from flexledger.chain.manifest import Manifest
from flexledger.identity import keys
from flexledger.identity.eip712 import Eip712Domain, TypedData, read_domain, typed_data_from_json

TYPES = {
    "Offer": [
        {"name": "asset", "type": "uint64"},
        {"name": "owner", "type": "address"},
        {"name": "baseline", "type": "bytes32"},
        {"name": "note", "type": "string"},
        {"name": "powers", "type": "uint32[]"},
    ]
}
MESSAGE = {
    "asset": 7,
    "owner": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    "baseline": b"\x12" * 32,
    "note": "flex",
    "powers": [1000, 2000],
}


def ethers(payload: dict[str, Any], key: str, signature: str) -> dict[str, str]:
    node = shutil.which("node")
    assert node
    out = subprocess.run(
        [node, str(paths.project_root() / "tests" / "js" / "typed-data.mjs"), key, signature],
        input=json.dumps(payload), capture_output=True, text=True, check=True, cwd=paths.project_root(), timeout=60,
    ).stdout
    result: dict[str, str] = json.loads(out)
    return result


def test_the_domain_is_read_from_the_contract(conn: ChainConnection, manifest: Manifest) -> None:
    domain = read_domain(conn, manifest.address("RoleRegistry"))
    assert domain == Eip712Domain("flexledger RoleRegistry", "1", conn.chain_id, manifest.address("RoleRegistry"))
    assert [t["name"] for t in domain.types()] == ["name", "version", "chainId", "verifyingContract"]


def test_hash_and_signature_match_eth_account_and_ethers(conn: ChainConnection, manifest: Manifest) -> None:
    domain = read_domain(conn, manifest.address("RoleRegistry"))
    typed = TypedData(domain, "Offer", TYPES, MESSAGE)
    payload = typed.to_json()
    account = keys.dev_accounts()[1]

    signature = typed.sign(account)
    expected = Account.sign_typed_data(account.key, full_message=payload)
    assert signature == bytes(expected.signature)
    assert typed.recover(signature) == account.address
    assert Account.recover_message(encode_typed_data(full_message=payload), signature=signature) == account.address

    wallet = ethers(payload, "0x" + account.key.hex(), "0x" + signature.hex())
    assert wallet["hash"] == "0x" + typed.digest().hex()
    assert wallet["signature"] == "0x" + signature.hex()
    assert wallet["recovered"] == account.address


def test_json_round_trip_is_what_a_wallet_signs(conn: ChainConnection, manifest: Manifest) -> None:
    typed = TypedData(read_domain(conn, manifest.address("RoleRegistry")), "Offer", TYPES, MESSAGE)
    wire = json.loads(json.dumps(typed.to_json()))
    back = typed_data_from_json(wire)
    assert back.digest() == typed.digest()


def test_a_tampered_message_recovers_someone_else(conn: ChainConnection, manifest: Manifest) -> None:
    domain = read_domain(conn, manifest.address("RoleRegistry"))
    account = keys.dev_accounts()[1]
    signature = TypedData(domain, "Offer", TYPES, MESSAGE).sign(account)
    tampered = TypedData(domain, "Offer", TYPES, {**MESSAGE, "asset": 8})
    assert tampered.recover(signature) != account.address


def test_a_contract_without_erc5267_is_a_clear_error(conn: ChainConnection, manifest: Manifest) -> None:
    import pytest

    from flexledger.identity.eip712 import TypedDataError

    with pytest.raises(TypedDataError):
        read_domain(conn, manifest.address("DIDRegistry"))
