"""EIP-4361 messages: our parser and formatter against the spec's grammar, our checks' reasons,
and both directions against the npm ``siwe`` package (an independent implementation, with ethers)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil
import subprocess
from types import SimpleNamespace
from typing import Any

import pytest
from eth_abi import encode
from eth_account import Account
from eth_account.messages import encode_defunct

from flexledger.api.auth import ERC1271_CALL, ERC1271_MAGIC, wallet_signed
from flexledger.api.siwe import (
    Expected,
    SiweError,
    SiweMessage,
    check_message,
    format_time,
    message_hash,
)
from flexledger.chain import paths

KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"  # anvil's second account
ACCOUNT = Account.from_key(KEY)
NOW = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)
EXPECTED = Expected(domain="api.flexledger.test", uri="https://api.flexledger.test", chain_id=31337)


def message(**changes: Any) -> SiweMessage:
    fields: dict[str, Any] = {
        "domain": EXPECTED.domain, "address": ACCOUNT.address, "uri": EXPECTED.uri, "chain_id": 31337,
        "nonce": "a1b2c3d4e5f6a7b8", "issued_at": format_time(NOW - dt.timedelta(seconds=5)),
        "statement": "Sign in to flexledger", "expiration_time": format_time(NOW + dt.timedelta(minutes=5))}
    return SiweMessage(**{**fields, **changes})


def sign(text: str, key: str = KEY) -> bytes:
    return bytes(Account.sign_message(encode_defunct(text=text), key).signature)


def check(text: str, signature: bytes, *, now: dt.datetime = NOW, nonces: set[str] | None = None) -> SiweMessage:
    issued = {"a1b2c3d4e5f6a7b8"} if nonces is None else nonces

    def consume(nonce: str, _now: dt.datetime) -> bool:
        if nonce not in issued:
            return False
        issued.discard(nonce)
        return True

    return check_message(text, signature, EXPECTED, now=now, signed_by=wallet_signed(None), consume_nonce=consume)


def npm_siwe(request: dict[str, Any]) -> dict[str, Any]:
    node = shutil.which("node")
    assert node, "Node.js is needed to hold our EIP-4361 to the npm siwe package"
    out = subprocess.run([node, str(paths.project_root() / "tests" / "backend" / "api" / "siwe.mjs")],
                         input=json.dumps(request), capture_output=True, text=True, check=True,
                         cwd=paths.project_root(), timeout=60).stdout
    result: dict[str, Any] = json.loads(out)
    return result


def test_the_message_round_trips_with_and_without_its_optional_fields() -> None:
    full = message(scheme="https", not_before=format_time(NOW - dt.timedelta(minutes=1)), request_id="req-42",
                   resources=("ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/",
                              "https://example.com/my-web2-claim.json"))
    bare = message(statement=None, expiration_time=None)
    for m in (full, bare):
        assert SiweMessage.parse(m.to_text()) == m
    # no statement: the address line, then two empty lines, then the URI (the ABNF's [statement LF])
    assert bare.to_text().split("\n")[1:4] == [ACCOUNT.address, "", ""]
    assert full.to_text().startswith("https://api.flexledger.test wants you to sign in")


@pytest.mark.parametrize("mangle", [
    lambda t: t.replace("\n", "\r\n"),  # CRLF
    lambda t: t + "\n",  # a trailing line
    lambda t: t.replace(ACCOUNT.address, ACCOUNT.address.lower()),  # not EIP-55
    lambda t: t.replace("Nonce: a1b2c3d4e5f6a7b8", "Nonce: a1b2c3"),  # under 8 characters
    lambda t: t.replace("Nonce: a1b2c3d4e5f6a7b8", "Nonce: a1b2c3d4-e5f6"),  # not alphanumeric
    lambda t: t.replace("Version: 1", "Version: 2"),
    lambda t: t.replace("Chain ID: 31337", "Chain ID: 0x7a69"),
    lambda t: t.replace("2026-12-07T11:59:55.000Z", "2026-13-07T11:59:55.000Z"),  # month 13
    lambda t: t.replace("2026-12-07T11:59:55.000Z", "2026-12-07 11:59:55"),  # not RFC 3339
    lambda t: t.replace("Sign in to flexledger", "Sign in\nto flexledger"),  # a statement over two lines
    lambda t: t.replace("URI: ", "Uri: "),
    lambda t: t.replace("URI: https://api.flexledger.test", "URI: not a uri"),
    lambda t: "\n".join(line for line in t.split("\n") if not line.startswith("Version")),  # a field missing
    lambda t: t.replace(" wants you to sign in", " wants you to log in"),
    lambda t: "",
], ids=["crlf", "trailing-lf", "lowercase-address", "short-nonce", "nonce-chars", "version", "hex-chain-id",
        "month-13", "not-rfc3339", "two-line-statement", "field-case", "bad-uri", "missing-field", "header",
        "empty"])
def test_a_malformed_message_is_refused_as_malformed(mangle: Any) -> None:
    text = mangle(message().to_text())
    with pytest.raises(SiweError) as refused:
        check(text, sign(text))
    assert refused.value.reason == "malformed"


def test_fields_out_of_order_are_malformed() -> None:
    lines = message(not_before=format_time(NOW - dt.timedelta(minutes=1))).to_text().split("\n")
    swapped = "\n".join([*lines[:-2], lines[-1], lines[-2]])  # Not Before before Expiration Time
    with pytest.raises(SiweError, match="unexpected line"):
        SiweMessage.parse(swapped)


def test_a_good_message_signs_in_and_its_nonce_is_spent() -> None:
    text = message().to_text()
    nonces = {"a1b2c3d4e5f6a7b8"}
    assert check(text, sign(text), nonces=nonces).address == ACCOUNT.address
    with pytest.raises(SiweError) as again:
        check(text, sign(text), nonces=nonces)
    assert again.value.reason == "nonce"


@pytest.mark.parametrize(("changes", "now", "reason"), [
    ({"domain": "evil.example"}, NOW, "domain"),
    ({"uri": "https://evil.example"}, NOW, "uri"),
    ({"chain_id": 1}, NOW, "chain_id"),
    ({}, NOW + dt.timedelta(minutes=6), "expired"),
    ({"not_before": format_time(NOW + dt.timedelta(minutes=1))}, NOW, "not_yet_valid"),
    ({"issued_at": format_time(NOW + dt.timedelta(minutes=10))}, NOW, "not_yet_valid"),
    ({"nonce": "ffffffffffffffff"}, NOW, "nonce"),  # never issued
])
def test_each_check_refuses_with_its_reason(changes: dict[str, Any], now: dt.datetime, reason: str) -> None:
    text = message(**changes).to_text()
    with pytest.raises(SiweError) as refused:
        check(text, sign(text), now=now)
    assert refused.value.reason == reason


def test_someone_elses_signature_is_refused() -> None:
    text = message().to_text()
    other = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"
    for signature in (sign(text, other), b"\x00" * 65, b"\x01" * 10):
        with pytest.raises(SiweError) as refused:
            check(text, signature)
        assert refused.value.reason == "signature"


def test_a_message_signed_by_npm_siwe_and_ethers_signs_in_here() -> None:
    now = dt.datetime.now(dt.UTC)
    fields = {"domain": EXPECTED.domain, "uri": EXPECTED.uri, "version": "1", "chainId": 31337,
              "nonce": "a1b2c3d4e5f6a7b8", "issuedAt": format_time(now), "statement": "Sign in to flexledger",
              "expirationTime": format_time(now + dt.timedelta(minutes=5)), "resources": ["https://example.com/a"]}
    signed = npm_siwe({"sign": {"key": KEY, "fields": fields}})
    parsed = check(signed["message"], bytes.fromhex(signed["signature"][2:]), now=now)
    assert (parsed.address, parsed.resources) == (ACCOUNT.address, ("https://example.com/a",))
    assert parsed.to_text() == signed["message"]  # we write what siwe writes
    # no statement (left out: siwe writes a null statement as one more empty line, off the grammar)
    bare = npm_siwe({"sign": {"key": KEY, "fields": {k: v for k, v in fields.items() if k != "statement"}}})
    parsed = check(bare["message"], bytes.fromhex(bare["signature"][2:]), now=now)
    assert parsed.statement is None and parsed.to_text() == bare["message"]


def test_our_message_and_signature_verify_in_npm_siwe() -> None:
    now = dt.datetime.now(dt.UTC)
    ours = dataclasses.replace(message(), issued_at=format_time(now),
                               expiration_time=format_time(now + dt.timedelta(minutes=5)),
                               request_id="r1", resources=("https://example.com/a",))
    text = ours.to_text()
    result = npm_siwe({"verify": {"message": text, "signature": "0x" + sign(text).hex(), "domain": EXPECTED.domain,
                                  "nonce": ours.nonce}})
    assert result["success"] is True, result
    assert result["fields"]["address"] == ACCOUNT.address and result["fields"]["chainId"] == 31337
    forged = npm_siwe({"verify": {"message": text.replace("r1", "r2"), "signature": "0x" + sign(text).hex(),
                                  "domain": EXPECTED.domain, "nonce": ours.nonce}})
    assert forged["success"] is False


def test_the_hash_is_eip191() -> None:
    text = message().to_text()
    assert Account._recover_hash(message_hash(text), signature=sign(text)) == ACCOUNT.address


def test_a_contract_wallet_is_asked_by_erc1271() -> None:
    # contracts/ holds no ERC-1271 wallet to deploy, so the node is stood in for: the call made and
    # the answers a wallet can give (yes, no, a revert, no code at all)
    text = message().to_text()
    digest, signature = message_hash(text), b"\x07" * 100  # a multisig's signatures: not 65 bytes
    asked: list[bytes] = []

    def node(code: bytes, answer: Any) -> Any:
        def call(tx: dict[str, Any]) -> bytes:
            asked.append(tx["data"])
            if isinstance(answer, Exception):
                raise answer
            return bytes(answer)

        return SimpleNamespace(w3=SimpleNamespace(eth=SimpleNamespace(get_code=lambda _address: code, call=call)))

    yes = ERC1271_MAGIC + bytes(28)
    assert wallet_signed(node(b"\x60\x80", yes))(ACCOUNT.address, digest, signature)
    assert asked[-1] == ERC1271_CALL + encode(["bytes32", "bytes"], [digest, signature])
    assert not wallet_signed(node(b"\x60\x80", bytes(32)))(ACCOUNT.address, digest, signature)
    assert not wallet_signed(node(b"\x60\x80", ValueError("execution reverted")))(ACCOUNT.address, digest, signature)
    assert not wallet_signed(node(b"", yes))(ACCOUNT.address, digest, signature)  # an EOA: recovery only
