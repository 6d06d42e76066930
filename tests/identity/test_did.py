"""did:ethr parsing and formatting, every malformed form, and `flexledger identity new`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_keys import keys as eth_keys
from typer.testing import CliRunner

from flexledger.cli.app import app
from flexledger.errors import ConfigurationError
from flexledger.identity.did import (
    EthrDID,
    MalformedDIDError,
    did_for,
    format_did,
    parse_did,
    subject_address,
)
from flexledger.identity.keys import KeystoreError, dev_accounts, load_keystore

ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


def test_format_and_parse_round_trip() -> None:
    text = format_did(ADDRESS.lower(), 31337)
    assert text == f"did:ethr:0x7a69:{ADDRESS}"
    did = parse_did(text)
    assert did == EthrDID(ADDRESS, "0x7a69", 31337, None, text)
    assert str(did) == text and did.identifier == ADDRESS
    assert did_for(ADDRESS, 31337) == did


def test_network_forms() -> None:
    assert (parse_did(f"did:ethr:{ADDRESS}").chain_id, parse_did(f"did:ethr:{ADDRESS}").network) == (1, "mainnet")
    assert parse_did(f"did:ethr:sepolia:{ADDRESS}").chain_id == 11155111
    assert parse_did(f"did:ethr:rsk:testnet:{ADDRESS}").network == "rsk:testnet"
    assert parse_did(f"did:ethr:rsk:testnet:{ADDRESS}").chain_id == 31
    assert parse_did(f"did:ethr:somechain:{ADDRESS}").chain_id is None
    assert parse_did(f"did:ethr:0x01:{ADDRESS}").chain_id == 1


def test_did_urls_and_letter_case_keep_the_did_as_written() -> None:
    lower = f"did:ethr:0x7a69:{ADDRESS.lower()}"
    did = parse_did(lower + "/path?versionId=3#controller")
    assert str(did) == lower  # a DID document's id is the DID as asked for
    assert did.address == ADDRESS
    assert parse_did(f"did:ethr:0x7a69:0x{ADDRESS[2:].upper()}").address == ADDRESS


def test_public_key_identifier() -> None:
    account = dev_accounts()[0]
    compressed = eth_keys.PrivateKey(account.key).public_key.to_compressed_bytes()
    did = parse_did(f"did:ethr:0x7a69:0x{compressed.hex()}")
    assert did.address == account.address
    assert did.public_key == compressed


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("did:web:example.org", "does not start"),
        ("ethr:0x7a69:" + ADDRESS, "does not start"),
        ("did:ethr:", "missing"),
        ("did:ethr:0x7a69:", "missing"),
        ("did:ethr::" + ADDRESS, "network before the identifier is empty"),
        ("did:ethr:0x7a69:" + ADDRESS[:-2], "38 hex digits"),
        ("did:ethr:0x7a69:" + ADDRESS + "00", "42 hex digits"),
        ("did:ethr:0x7a69:xyz", "not 0x-prefixed hex"),
        ("did:ethr:0x7a69:0xZZ9Fd6e51aad88F6F4ce6aB8827279cffFb92266", "not 0x-prefixed hex"),
        ("did:ethr:!!:" + ADDRESS, "bad network"),
        ("did:ethr:a::b:" + ADDRESS, "bad network"),
        ("did:ethr:0x0:" + ADDRESS, "chain id 0x0"),
        ("did:ethr:0x7a69:0xF39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "checksum"),
        ("did:ethr:0x7a69:0x04" + "11" * 32, "compressed"),
        ("did:ethr:0x7a69:0x02" + "ff" * 32, "not a point"),
    ],
)
def test_malformed_dids_say_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(MalformedDIDError, match=problem) as err:
        parse_did(text)
    assert "did:ethr:0x" in (err.value.hint or "")


def test_did_for_refuses_what_is_not_an_address() -> None:
    with pytest.raises(MalformedDIDError, match="40 hex digits"):
        did_for("0x1234", 31337)
    with pytest.raises(MalformedDIDError, match="not positive"):
        did_for(ADDRESS, 0)


def test_subject_may_be_an_address_or_a_did() -> None:
    assert subject_address(ADDRESS.lower()) == ADDRESS
    assert subject_address(f"did:ethr:0x7a69:{ADDRESS}", 31337) == ADDRESS
    with pytest.raises(MalformedDIDError, match="0x7a69"):
        subject_address(f"did:ethr:0x1:{ADDRESS}", 31337)
    with pytest.raises(MalformedDIDError, match="checksum"):
        subject_address("0xF39Fd6e51aad88F6F4ce6aB8827279cffFb92266")
    with pytest.raises(MalformedDIDError, match="neither"):
        subject_address("alice")


def test_identity_new_writes_a_keystore_and_prints_the_did(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEXLEDGER_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("FLEXLEDGER_KEY_PASSWORD", "correct horse")
    runner = CliRunner()
    result = runner.invoke(app, ["identity", "new", "--name", "alice", "--json"])
    assert result.exit_code == 0, result.output
    made = json.loads(result.stdout)
    assert made["did"] == f"did:ethr:0x7a69:{made['address']}"  # the embedded chain's id, no chain needed
    assert made["keystore"] == str(tmp_path / "keys" / "alice.json")
    assert load_keystore(Path(made["keystore"]), "correct horse").address == made["address"]

    with pytest.raises(KeystoreError, match="exists already"):  # the CLI's main prints it as a message
        runner.invoke(app, ["identity", "new", "--name", "alice"], catch_exceptions=False)

    (tmp_path / "pw").write_text("from a file\n")
    monkeypatch.delenv("FLEXLEDGER_KEY_PASSWORD")
    result = runner.invoke(app, ["identity", "new", "--password-file", str(tmp_path / "pw"), "--chain-id", "246"])
    assert result.exit_code == 0, result.output
    assert "did:ethr:0xf6:0x" in result.stdout
    address = result.stdout.split()[1]
    assert load_keystore(tmp_path / "keys" / f"{address}.json", "from a file").address == address

    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigurationError, match="empty"):
        runner.invoke(app, ["identity", "new", "--password-file", str(tmp_path / "empty")], catch_exceptions=False)

    monkeypatch.delenv("FLEXLEDGER_KEY_PASSWORD", raising=False)
    with pytest.raises(ConfigurationError, match="no terminal to ask for one") as caught:  # stdin is no TTY here
        runner.invoke(app, ["identity", "new", "--name", "bob"], catch_exceptions=False)
    assert caught.value.hint is not None and "--password-file" in caught.value.hint
    assert not (tmp_path / "keys" / "bob.json").exists()
