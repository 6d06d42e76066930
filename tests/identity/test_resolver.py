"""DID documents from the ERC-1056 registry, held against the npm reference resolver, and every refusal."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from eth_keys import keys as eth_keys
from eth_utils import keccak
from typer.testing import CliRunner

from flexledger.chain import paths, revert_errors
from flexledger.chain.bindings import DIDRegistryClient
from flexledger.chain.connection import ChainConnection
from flexledger.chain.manifest import Manifest
from flexledger.chain.transactions import Signer
from flexledger.cli.app import app
from flexledger.identity import keys
from flexledger.identity.did import MalformedDIDError, did_for
from flexledger.identity.resolver import DIDResolutionError, DIDResolver

YEAR = 365 * 86400
ZERO = "0x0000000000000000000000000000000000000000"
PEM = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAq\n-----END PUBLIC KEY-----\n"


def b32(text: str) -> bytes:
    return text.encode().ljust(32, b"\0")


def reference(conn: ChainConnection, registry: str, *dids: str) -> list[dict[str, Any]]:
    """The npm ethr-did-resolver's resolution results for ``dids`` (one Node process)."""
    node = shutil.which("node")
    assert node, "Node.js is needed for the interoperability test"
    script = paths.project_root() / "tests" / "js" / "resolve-ethr.mjs"
    out = subprocess.run(
        [node, str(script), dids[0], conn.rpc_url, registry, str(conn.chain_id), *dids[1:]],
        capture_output=True, text=True, check=True, cwd=paths.project_root(), timeout=60,
    ).stdout
    result = json.loads(out)
    return result if isinstance(result, list) else [result]


def assert_same_as_reference(resolver: DIDResolver, *dids: str) -> None:
    theirs = reference(resolver.conn, resolver.registry.address, *dids)
    for did, their in zip(dids, theirs, strict=True):
        assert "error" not in their["didResolutionMetadata"], their
        ours = resolver.resolve(did)
        assert ours.to_json() == their, did
        assert str(ours.pydid_document.id) == did.split("?")[0]


def signed_hash(registry: DIDRegistryClient, identity: str, tail: bytes) -> bytes:
    """The ERC-1056 digest an owner signs for a relayed change (``tail``: function name and arguments)."""
    owner = registry.identity_owner(identity)
    return keccak(
        b"\x19\x00" + bytes.fromhex(registry.address[2:]) + registry.nonce(owner).to_bytes(32, "big")
        + bytes.fromhex(identity[2:]) + tail
    )


def sign_raw(account: LocalAccount, digest: bytes) -> tuple[int, bytes, bytes]:
    signed = account.unsafe_sign_hash(digest)
    return signed.v, signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big")


def compressed_key(account: LocalAccount) -> str:
    return "0x" + eth_keys.PrivateKey(account.key).public_key.to_compressed_bytes().hex()


@pytest.fixture
def registry(conn: ChainConnection, manifest: Manifest) -> DIDRegistryClient:
    return DIDRegistryClient(conn, manifest.address("DIDRegistry"))


@pytest.fixture
def resolver(conn: ChainConnection, registry: DIDRegistryClient) -> DIDResolver:
    return DIDResolver(conn, registry.address)


def test_documents_match_the_reference_resolver(
    conn: ChainConnection, registry: DIDRegistryClient, resolver: DIDResolver, dev_signers: list[Signer]
) -> None:
    alice, bob, carol, erin, relayer = (dev_signers[i] for i in (1, 2, 3, 4, 5))
    ident = alice.address
    registry.add_delegate(ident, b32("veriKey"), bob.address, YEAR, sender=alice)
    registry.add_delegate(ident, b32("sigAuth"), carol.address, YEAR, sender=alice)
    registry.set_attribute(ident, b32("did/pub/Secp256k1/veriKey/hex"), bytes.fromhex("02" + "ab" * 32), YEAR, sender=alice)
    registry.set_attribute(ident, b32("did/pub/Ed25519/veriKey/base58"), b"\0" + b"\x01" * 31, YEAR, sender=alice)
    registry.set_attribute(ident, b32("did/pub/X25519/enc/base64"), b"\x02" * 32, YEAR, sender=alice)
    registry.set_attribute(ident, b32("did/pub/RSA/veriKey/pem"), PEM.encode(), YEAR, sender=alice)
    registry.set_attribute(ident, b32("did/pub/Secp256k1/sigAuth"), bytes.fromhex("03" + "cd" * 32), YEAR, sender=alice)
    before_revocations = registry.set_attribute(
        ident, b32("did/svc/FlexledgerAPI"), b"https://api.flex.example/v1", YEAR, sender=alice
    ).block_number
    registry.set_attribute(ident, b32("did/svc/Revoked"), b"https://old.example", YEAR, sender=alice)
    registry.set_attribute(ident, b32("flexledger/note"), b"not a DID attribute", YEAR, sender=alice)
    registry.set_attribute(ident, b"\xff" * 32, b"a name that is not text", YEAR, sender=alice)  # skipped, still walked
    registry.revoke_attribute(ident, b32("did/svc/Revoked"), b"https://old.example", sender=alice)
    registry.revoke_delegate(ident, b32("veriKey"), bob.address, sender=alice)
    registry.change_owner(ident, erin.address, sender=alice)  # an owner change ...
    tail = b"changeOwner" + bytes.fromhex(carol.address[2:])  # ... and a signed one, relayed by someone else
    v, r, s = sign_raw(keys.dev_accounts()[4], signed_hash(registry, ident, tail))
    registry.change_owner_signed(ident, v, r, s, carol.address, sender=relayer)
    last = registry.set_attribute(ident, b32("did/svc/Messaging"), b'{"uri":"mqtts://broker.example","n":[1,2.5]}', YEAR, sender=carol)
    for name, value in (  # what the registry may hold beyond the common cases, on erin's DID
        ("did/svc/Count", b"42"),
        ("did/svc/Nothing", b"null"),
        ("did/svc/NotJson", b"NaN"),
        ("did/svc/Binary", b"\xff\xfe"),  # not UTF-8: skipped, still numbered
        ("did/pub/Secp256k1/veriKey/pem", b"\xff"),  # likewise
        ("did/pub/Ed25519", b"\x05" * 32),  # no purpose, no encoding
        ("did/pub/Secp256k1/veriKey/raw", b"\x06" * 33),  # an unknown encoding
        ("did/pub/X25519/enc/hex", b"\x07" * 32),
    ):
        registry.set_attribute(erin.address, b32(name), value, YEAR, sender=erin)
    registry.add_delegate(erin.address, b32("enc"), bob.address, YEAR, sender=erin)  # neither veriKey nor sigAuth
    registry.revoke_attribute(erin.address, b32("did/pub/X25519/enc/hex"), b"\x07" * 32, sender=erin)

    # the reference judges validity by this machine's clock, ours by the latest block: step past
    # the second of the revocations, so that both see them as past
    time.sleep(max(0.0, conn.latest_timestamp() + 1.05 - time.time()))

    chain = conn.chain_id
    dids = [
        str(did_for(alice.address, chain)),  # changed many times, controlled by carol now
        str(did_for(alice.address, chain)).lower(),  # written in lower case
        f"did:ethr:{hex(chain)}:{compressed_key(keys.dev_accounts()[1])}",  # alice as a public key: owner moved away
        f"did:ethr:{hex(chain)}:{compressed_key(keys.dev_accounts()[4])}",  # erin as a public key: controllerKey
        str(did_for(bob.address, chain)),  # a delegate elsewhere, never changed itself
        str(did_for(dev_signers[9].address, chain)),  # never touched
        f"{did_for(alice.address, chain)}?versionId={before_revocations}",  # a past version
    ]
    assert_same_as_reference(resolver, *dids)

    doc = resolver.resolve(dids[0])
    assert doc.pydid_document.verification_method[0].blockchain_account_id == f"eip155:{chain}:{carol.address}"
    assert {s.type for s in doc.pydid_document.service} == {"FlexledgerAPI", "Messaging"}
    assert doc.pydid_document.dereference(f"{dids[0]}#delegate-6").public_key_pem == PEM
    assert doc.metadata["versionId"] == str(last.block_number)
    past = resolver.resolve(dids[0], version_id=before_revocations)
    assert past.metadata["nextVersionId"] == str(before_revocations + 1)
    assert past.pydid_document.verification_method[0].blockchain_account_id.endswith(alice.address)


def test_expired_entries_match_the_reference_at_a_block(
    conn: ChainConnection, registry: DIDRegistryClient, resolver: DIDResolver, dev_signers: list[Signer]
) -> None:
    """Expiry needs time to pass: the chain's clock is moved, and both sides judge at a block."""
    alice, bob = dev_signers[1], dev_signers[2]
    ident = alice.address
    added = registry.add_delegate(ident, b32("sigAuth"), bob.address, 100, sender=alice).block_number
    registry.set_attribute(ident, b32("did/svc/Short"), b"https://short.example", 100, sender=alice)
    registry.set_attribute(ident, b32("did/svc/Long"), b"https://long.example", YEAR, sender=alice)
    conn.increase_time(200)
    conn.mine()
    latest = conn.w3.eth.block_number
    did = str(did_for(ident, conn.chain_id))
    assert_same_as_reference(resolver, f"{did}?versionId={latest}", f"{did}?versionId={added}")
    now = resolver.resolve(did, version_id=latest).pydid_document
    assert [s.id.fragment for s in now.service] == ["service-2"]  # the expired one keeps its number
    assert now.authentication == [now.verification_method[0].id]


def test_deactivated_document_matches_the_reference(
    conn: ChainConnection, registry: DIDRegistryClient, resolver: DIDResolver, dev_signers: list[Signer]
) -> None:
    dave = dev_signers[6]
    registry.set_attribute(dave.address, b32("did/svc/X"), b"https://x.example", YEAR, sender=dave)
    gone = registry.change_owner(dave.address, ZERO, sender=dave).block_number
    # ERC-1056 gives control back to the identity's own key, but did:ethr reads this as the end:
    assert registry.identity_owner(dave.address) == dave.address
    registry.set_attribute(dave.address, b32("did/svc/After"), b"https://after.example", YEAR, sender=dave)
    did = str(did_for(dave.address, conn.chain_id))
    pub = f"did:ethr:{hex(conn.chain_id)}:{compressed_key(keys.dev_accounts()[6])}"
    assert_same_as_reference(resolver, did, pub)
    resolution = resolver.resolve(did)
    assert resolution.deactivated and resolution.metadata["versionId"] == str(gone)
    assert resolution.document["verificationMethod"] == []


def test_dids_that_cannot_be_resolved_here_are_refused(resolver: DIDResolver, conn: ChainConnection) -> None:
    address = keys.dev_accounts()[1].address
    with pytest.raises(MalformedDIDError, match="40"):
        resolver.resolve(f"did:ethr:{hex(conn.chain_id)}:0x1234")
    with pytest.raises(MalformedDIDError, match="does not start"):
        resolver.resolve(f"did:web:{address}")
    with pytest.raises(DIDResolutionError, match="network '0x1'") as err:
        resolver.resolve(f"did:ethr:0x1:{address}")
    assert "0x7a69" in (err.value.hint or "")
    with pytest.raises(DIDResolutionError, match="network 'mainnet'"):
        resolver.resolve(f"did:ethr:{address}")
    with pytest.raises(DIDResolutionError, match="not a block"):
        resolver.resolve(str(did_for(address, conn.chain_id)), version_id=10**9)


def test_non_owner_cannot_change_attributes_or_delegates(
    registry: DIDRegistryClient, dev_signers: list[Signer]
) -> None:
    owner, intruder = dev_signers[1], dev_signers[7]
    with pytest.raises(revert_errors.DIDRegistryNotOwner) as err:
        registry.set_attribute(owner.address, b32("did/svc/X"), b"https://evil.example", YEAR, sender=intruder)
    assert (err.value.identity, err.value.actor) == (owner.address, intruder.address)
    with pytest.raises(revert_errors.DIDRegistryNotOwner):
        registry.revoke_attribute(owner.address, b32("did/svc/X"), b"x", sender=intruder)
    with pytest.raises(revert_errors.DIDRegistryNotOwner):
        registry.add_delegate(owner.address, b32("veriKey"), intruder.address, YEAR, sender=intruder)
    with pytest.raises(revert_errors.DIDRegistryNotOwner):
        registry.revoke_delegate(owner.address, b32("veriKey"), intruder.address, sender=intruder)
    with pytest.raises(revert_errors.DIDRegistryNotOwner):
        registry.change_owner(owner.address, intruder.address, sender=intruder)
    registry.change_owner(owner.address, dev_signers[2].address, sender=owner)
    with pytest.raises(revert_errors.DIDRegistryNotOwner):  # the former owner has lost control
        registry.set_attribute(owner.address, b32("did/svc/X"), b"https://x.example", YEAR, sender=owner)


def test_signed_changes_with_a_wrong_signer_or_a_replayed_nonce_revert(
    registry: DIDRegistryClient, dev_signers: list[Signer]
) -> None:
    owner, new_owner, relayer = dev_signers[1], dev_signers[2], dev_signers[3]
    digest = signed_hash(registry, owner.address, b"changeOwner" + bytes.fromhex(new_owner.address[2:]))
    v, r, s = sign_raw(keys.dev_accounts()[8], digest)  # somebody else's key
    with pytest.raises(revert_errors.DIDRegistryInvalidSignature) as err:
        registry.change_owner_signed(owner.address, v, r, s, new_owner.address, sender=relayer)
    assert (err.value.identity, err.value.signer) == (owner.address, keys.dev_accounts()[8].address)
    v, r, s = sign_raw(keys.dev_accounts()[1], digest)
    registry.change_owner_signed(owner.address, v, r, s, new_owner.address, sender=relayer)
    assert registry.identity_owner(owner.address) == new_owner.address
    with pytest.raises(revert_errors.DIDRegistryInvalidSignature):  # replayed: the nonce has moved on
        registry.change_owner_signed(owner.address, v, r, s, new_owner.address, sender=relayer)
    name, value = b32("did/svc/X"), b"https://x.example"
    tail = b"setAttribute" + name + value + YEAR.to_bytes(32, "big")
    v, r, s = sign_raw(keys.dev_accounts()[1], signed_hash(registry, owner.address, tail))  # no longer the owner
    with pytest.raises(revert_errors.DIDRegistryInvalidSignature):
        registry.set_attribute_signed(owner.address, v, r, s, name, value, YEAR, sender=relayer)


def test_did_show_prints_the_document(
    conn: ChainConnection, manifest: Manifest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest.save(tmp_path / "manifest.json")
    monkeypatch.setenv("FLEXLEDGER_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("FLEXLEDGER_RPC_URL", conn.rpc_url)
    did = str(did_for(keys.dev_accounts()[9].address, conn.chain_id))
    runner = CliRunner()
    shown = runner.invoke(app, ["did", "show", did, "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout) == DIDResolver(conn, manifest.address("DIDRegistry")).resolve(did).to_json()
    readable = runner.invoke(app, ["did", "show", did])
    assert "#controller" in readable.stdout and "EcdsaSecp256k1RecoveryMethod2020" in readable.stdout
    with pytest.raises(MalformedDIDError, match="hex digits"):
        runner.invoke(app, ["did", "show", "did:ethr:0x7a69:0x12"], catch_exceptions=False)
