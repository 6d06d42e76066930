"""did:ethr parsing and formatting, and every malformed form."""

from __future__ import annotations

import pytest

from flexledger.identity.did import (
    MalformedDIDError,
    did_for,
    format_did,
    parse_did,
    subject_address,
)
from flexledger.identity.keys import dev_accounts

ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


def test_format_and_parse_round_trip() -> None:
    text = format_did(ADDRESS.lower(), 31337)
    assert text == f"did:ethr:0x7a69:{ADDRESS}"
    did = parse_did(text)
    assert (did.address, did.chain_id, did.network, str(did)) == (ADDRESS, 31337, "0x7a69", text)
    assert str(did_for(ADDRESS, 31337)) == text


def test_network_forms() -> None:
    assert parse_did(f"did:ethr:{ADDRESS}").chain_id == 1
    assert parse_did(f"did:ethr:sepolia:{ADDRESS}").chain_id == 11155111
    assert parse_did(f"did:ethr:somechain:{ADDRESS}").chain_id is None
    assert parse_did(f"did:ethr:0x7a69:{ADDRESS}#controller").address == ADDRESS


def test_public_key_identifier() -> None:
    account = dev_accounts()[0]
    from eth_keys import keys as eth_keys

    compressed = eth_keys.PrivateKey(account.key).public_key.to_compressed_bytes()
    did = parse_did(f"did:ethr:0x7a69:0x{compressed.hex()}")
    assert did.address == account.address
    assert did.public_key == compressed


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("did:web:example.org", "does not start"),
        ("ethr:0x7a69:" + ADDRESS, "does not start"),
        ("did:ethr:0x7a69:" + ADDRESS[:-2], "hex digits"),
        ("did:ethr:0x7a69:xyz", "not 0x-prefixed hex"),
        ("did:ethr:0x7a69:0xZZ9Fd6e51aad88F6F4ce6aB8827279cffFb92266", "not 0x-prefixed hex"),
        ("did:ethr:a:b:" + ADDRESS, "too many"),
        ("did:ethr:!!:" + ADDRESS, "bad network"),
        ("did:ethr:0x7a69:0xF39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "checksum"),
        ("did:ethr:0x7a69:0x04" + "11" * 32, "compressed"),
    ],
)
def test_malformed_dids_say_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(MalformedDIDError, match=problem) as err:
        parse_did(text)
    assert "did:ethr:0x" in (err.value.hint or "")


def test_subject_may_be_an_address_or_a_did() -> None:
    assert subject_address(ADDRESS.lower()) == ADDRESS
    assert subject_address(f"did:ethr:0x7a69:{ADDRESS}", 31337) == ADDRESS
    with pytest.raises(MalformedDIDError, match="chain 31337"):
        subject_address(f"did:ethr:0x1:{ADDRESS}", 31337)
    with pytest.raises(MalformedDIDError):
        subject_address("alice")
