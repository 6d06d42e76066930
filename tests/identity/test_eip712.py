"""EIP-712: the domain read from the contract (ERC-5267), and hashes and signatures held against
eth-account, an ordinary wallet library (ethers, npm) and OpenZeppelin's EIP712 on chain."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data

from flexledger.chain.artifacts import Artifact
from flexledger.chain.compiler import compile_contracts
from flexledger.chain.connection import ChainConnection
from flexledger.chain.deploy import creation_data
from flexledger.chain.manifest import Manifest
from flexledger.chain.transactions import Signer
from flexledger.identity import keys
from flexledger.identity.eip712 import (
    Eip712Domain,
    TypedData,
    TypedDataError,
    read_domain,
    typed_data_from_json,
)

TYPES = {
    "Offer": [
        {"name": "asset", "type": "uint64"},
        {"name": "owner", "type": "address"},
        {"name": "baseline", "type": "bytes32"},
        {"name": "note", "type": "string"},
        {"name": "powers", "type": "uint32[]"},
        {"name": "price", "type": "uint256"},
    ]
}
MESSAGE: dict[str, Any] = {
    "asset": 7,
    "owner": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    "baseline": b"\x12" * 32,
    "note": "flex",
    "powers": [1000, 2000],
    "price": 2**200 + 1,  # past 2^53: travels as a decimal string
}
SALT = b"\x5a" * 32

# OpenZeppelin's EIP712 computes the digest of an Offer on chain, and recovers its signer; a
# hand-written ERC-5267 contract publishes a domain of name, chainId and salt only (fields 0x15).
CONTRACTS = """// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

bytes32 constant OFFER_TYPEHASH =
    keccak256("Offer(uint64 asset,address owner,bytes32 baseline,string note,uint32[] powers,uint256 price)");

function offerHash(uint64 asset, address owner, bytes32 baseline, string calldata note, uint32[] calldata powers, uint256 price)
    pure returns (bytes32)
{
    return keccak256(
        abi.encode(OFFER_TYPEHASH, asset, owner, baseline, keccak256(bytes(note)), keccak256(abi.encodePacked(powers)), price)
    );
}

contract OfferBook is EIP712 {
    constructor() EIP712("flexledger test book", "7") {}

    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    function digest(uint64 asset, address owner, bytes32 baseline, string calldata note, uint32[] calldata powers, uint256 price)
        public view returns (bytes32)
    {
        return _hashTypedDataV4(offerHash(asset, owner, baseline, note, powers, price));
    }

    function signer(
        uint64 asset, address owner, bytes32 baseline, string calldata note, uint32[] calldata powers, uint256 price,
        bytes calldata signature
    ) external view returns (address) {
        return ECDSA.recover(digest(asset, owner, baseline, note, powers, price), signature);
    }
}

contract SaltedDomain {
    bytes32 public constant SALT = 0x5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a;
    uint256[] private extra;

    constructor(uint256 extension) {
        if (extension != 0) extra.push(extension);
    }

    function eip712Domain() external view returns (
        bytes1, string memory, string memory, uint256, address, bytes32, uint256[] memory
    ) {
        return (hex"15", "salted", "ignored", block.chainid, address(this), SALT, extra);
    }

    function digest(uint64 asset, address owner, bytes32 baseline, string calldata note, uint32[] calldata powers, uint256 price)
        external view returns (bytes32)
    {
        bytes32 separator = keccak256(abi.encode(
            keccak256("EIP712Domain(string name,uint256 chainId,bytes32 salt)"), keccak256("salted"), block.chainid, SALT
        ));
        return keccak256(abi.encodePacked(hex"1901", separator, offerHash(asset, owner, baseline, note, powers, price)));
    }
}
"""


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Artifact]:
    src = tmp_path_factory.mktemp("eip712") / "src"
    src.mkdir()
    (src / "Eip712Test.sol").write_text(CONTRACTS)
    result = compile_contracts(src)
    return {
        name: Artifact(name, a["sourceName"], a["abi"], a["bytecode"], a["deployedBytecode"], a["sourceHash"])
        for name, a in result.artifacts.items()
    }


@pytest.fixture
def deploy(conn: ChainConnection, deployer: Signer, compiled: dict[str, Artifact]) -> Iterator[Any]:
    def _deploy(name: str, *args: Any) -> Any:
        artifact = compiled[name]
        tx = deployer.send(None, creation_data(artifact, list(args)), gas=3_000_000)
        receipt = conn.w3.eth.wait_for_transaction_receipt(tx)
        return conn.w3.eth.contract(address=receipt["contractAddress"], abi=artifact.abi)

    yield _deploy


def offer_args(message: dict[str, Any]) -> list[Any]:
    return [message[field["name"]] for field in TYPES["Offer"]]


def test_the_domain_is_read_from_the_role_registry(conn: ChainConnection, manifest: Manifest) -> None:
    domain = read_domain(conn, manifest.address("RoleRegistry"))
    assert domain == Eip712Domain("flexledger RoleRegistry", "1", conn.chain_id, manifest.address("RoleRegistry"))
    assert [t["name"] for t in domain.types()] == ["name", "version", "chainId", "verifyingContract"]


def test_digest_and_signature_match_openzeppelin_on_chain(conn: ChainConnection, deploy: Any) -> None:
    book = deploy("OfferBook")
    domain = read_domain(conn, book.address)
    assert domain == Eip712Domain("flexledger test book", "7", conn.chain_id, book.address)
    typed = TypedData(domain, "Offer", TYPES, MESSAGE)
    assert typed.domain_separator() == book.functions.domainSeparator().call()
    assert typed.digest() == book.functions.digest(*offer_args(MESSAGE)).call()
    account = keys.dev_accounts()[3]
    signature = typed.sign(account)
    assert book.functions.signer(*offer_args(MESSAGE), signature).call() == account.address
    assert typed.recover(signature) == account.address


def test_the_fields_bitmap_is_honoured(conn: ChainConnection, deploy: Any) -> None:
    salted = deploy("SaltedDomain", 0)
    domain = read_domain(conn, salted.address)
    assert domain == Eip712Domain("salted", None, conn.chain_id, None, SALT)  # version and contract left out
    assert [t["name"] for t in domain.types()] == ["name", "chainId", "salt"]
    typed = TypedData(domain, "Offer", TYPES, MESSAGE)
    assert typed.digest() == salted.functions.digest(*offer_args(MESSAGE)).call()
    with pytest.raises(TypedDataError, match="extensions"):
        read_domain(conn, deploy("SaltedDomain", 42).address)


def test_hash_and_signature_match_eth_account_and_ethers(
    conn: ChainConnection, manifest: Manifest, ethers: Callable[[dict[str, Any], str, str], dict[str, str]]
) -> None:
    domain = read_domain(conn, manifest.address("RoleRegistry"))
    typed = TypedData(domain, "Offer", TYPES, MESSAGE)
    payload = typed.to_json()
    assert payload["types"]["EIP712Domain"] == domain.types() and payload["primaryType"] == "Offer"
    assert payload["message"]["price"] == str(2**200 + 1) and payload["message"]["baseline"] == "0x" + "12" * 32
    account = keys.dev_accounts()[1]

    signature = typed.sign(account)
    assert signature == bytes(Account.sign_typed_data(account.key, full_message=payload).signature)
    assert encode_typed_data(full_message=payload).body == typed.struct_hash()
    assert typed.recover(signature) == account.address

    wallet = ethers(payload, "0x" + account.key.hex(), "0x" + signature.hex())
    assert wallet["hash"] == "0x" + typed.digest().hex()
    assert wallet["signature"] == "0x" + signature.hex()
    assert wallet["recovered"] == account.address


def test_json_round_trip_is_what_a_wallet_signs(conn: ChainConnection, manifest: Manifest) -> None:
    typed = TypedData(read_domain(conn, manifest.address("RoleRegistry")), "Offer", TYPES, MESSAGE)
    back = typed_data_from_json(json.loads(json.dumps(typed.to_json())))
    assert back.digest() == typed.digest()
    wrong = typed.to_json()
    wrong["types"]["EIP712Domain"] = list(reversed(wrong["types"]["EIP712Domain"]))
    with pytest.raises(TypedDataError, match="does not match"):
        typed_data_from_json(wrong)


def test_tampered_messages_and_bad_signatures(conn: ChainConnection, manifest: Manifest) -> None:
    domain = read_domain(conn, manifest.address("RoleRegistry"))
    account = keys.dev_accounts()[1]
    signature = TypedData(domain, "Offer", TYPES, MESSAGE).sign(account)
    assert TypedData(domain, "Offer", TYPES, {**MESSAGE, "asset": 8}).recover(signature) != account.address
    with pytest.raises(TypedDataError, match="65 bytes"):
        TypedData(domain, "Offer", TYPES, MESSAGE).recover(signature[:64])
    with pytest.raises(TypedDataError, match="does not fit"):
        TypedData(domain, "Offer", TYPES, {**MESSAGE, "asset": "seven"}).digest()


def test_contracts_without_erc5267_are_a_clear_error(conn: ChainConnection, manifest: Manifest) -> None:
    with pytest.raises(TypedDataError, match="ERC-5267"):
        read_domain(conn, manifest.address("DIDRegistry"))
    with pytest.raises(TypedDataError, match="no code"):
        read_domain(conn, "0x000000000000000000000000000000000000dEaD")
