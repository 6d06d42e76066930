"""DID documents from the ERC-1056 registry, held against the npm reference resolver."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from flexledger.chain import paths, revert_errors
from flexledger.chain.bindings import DIDRegistryClient
from flexledger.chain.connection import ChainConnection
from flexledger.chain.manifest import Manifest
from flexledger.chain.transactions import Signer
from flexledger.identity import keys
from flexledger.identity.did import did_for
from flexledger.identity.resolver import DIDResolver

YEAR = 365 * 86400


def b32(text: str) -> bytes:
    return text.encode().ljust(32, b"\0")


def reference(did: str, conn: ChainConnection, registry: str) -> dict[str, Any]:
    node = shutil.which("node")
    assert node, "Node.js is needed for the interoperability test"
    out = subprocess.run(
        [node, str(paths.project_root() / "tests" / "js" / "resolve-ethr.mjs"), did, conn.rpc_url, registry, str(conn.chain_id)],
        capture_output=True, text=True, check=True, cwd=paths.project_root(), timeout=60,
    ).stdout
    result: dict[str, Any] = json.loads(out)
    return result


@pytest.fixture
def registry(conn: ChainConnection, manifest: Manifest) -> DIDRegistryClient:
    return DIDRegistryClient(conn, manifest.address("DIDRegistry"))


def signed_hash(registry: DIDRegistryClient, identity: str, tail: bytes) -> bytes:
    owner = registry.identity_owner(identity)
    return keccak(
        b"\x19\x00" + bytes.fromhex(registry.address[2:]) + registry.nonce(owner).to_bytes(32, "big")
        + bytes.fromhex(identity[2:]) + tail
    )


def sign_raw(account: LocalAccount, digest: bytes) -> tuple[int, bytes, bytes]:
    signed = account.unsafe_sign_hash(digest)
    return signed.v, signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big")


def test_documents_match_the_reference_resolver(
    conn: ChainConnection, registry: DIDRegistryClient, dev_signers: list[Signer]
) -> None:
    alice, bob, carol, relayer = dev_signers[1], dev_signers[2], dev_signers[3], dev_signers[4]
    ident = alice.address
    registry.add_delegate(ident, b32("veriKey"), bob.address, YEAR, sender=alice)
    registry.add_delegate(ident, b32("sigAuth"), carol.address, YEAR, sender=alice)
    pub = bytes.fromhex("02" + "ab" * 32)
    registry.set_attribute(ident, b32("did/pub/Secp256k1/veriKey/hex"), pub, YEAR, sender=alice)
    registry.set_attribute(ident, b32("did/pub/Ed25519/veriKey/base58"), b"\x01" * 32, YEAR, sender=alice)
    registry.set_attribute(ident, b32("did/pub/X25519/enc/base64"), b"\x02" * 32, YEAR, sender=alice)
    registry.set_attribute(ident, b32("did/svc/FlexledgerAPI"), b"https://api.flex.example/v1", YEAR, sender=alice)
    registry.set_attribute(ident, b32("did/svc/Revoked"), b"https://old.example", YEAR, sender=alice)
    registry.revoke_attribute(ident, b32("did/svc/Revoked"), b"https://old.example", sender=alice)
    registry.revoke_delegate(ident, b32("veriKey"), bob.address, sender=alice)
    # a signed owner change, relayed by someone else
    v, r, s = sign_raw(keys.dev_accounts()[1], signed_hash(registry, ident, b"changeOwner" + bytes.fromhex(carol.address[2:])))
    registry.change_owner_signed(ident, v, r, s, carol.address, sender=relayer)
    registry.set_attribute(ident, b32("did/svc/Messaging"), b'{"uri":"mqtts://broker.example"}', YEAR, sender=carol)

    time.sleep(1.1)  # the reference judges validity by the wall clock: step past the revocation second
    resolver = DIDResolver(conn, registry.address)
    for account in (alice, bob, dev_signers[9]):  # changed, never changed (bob's own DID), untouched
        did = str(did_for(account.address, conn.chain_id))
        ours = resolver.resolve(did)
        theirs = reference(did, conn, registry.address)
        assert ours.document == theirs["didDocument"], did
        assert ours.metadata == theirs["didDocumentMetadata"], did
        assert ours.pydid_document().id == did
    doc = resolver.resolve(did_for(alice.address, conn.chain_id)).document
    assert doc["verificationMethod"][0]["blockchainAccountId"].endswith(carol.address)
    assert {s["type"] for s in doc["service"]} == {"FlexledgerAPI", "Messaging"}


def test_deactivated_and_public_key_dids_match(
    conn: ChainConnection, registry: DIDRegistryClient, dev_signers: list[Signer]
) -> None:
    from eth_keys import keys as eth_keys

    dave, erin = dev_signers[5], dev_signers[6]
    registry.set_attribute(dave.address, b32("did/svc/X"), b"https://x.example", YEAR, sender=dave)
    registry.change_owner(dave.address, "0x0000000000000000000000000000000000000000", sender=dave)
    compressed = eth_keys.PrivateKey(keys.dev_accounts()[6].key).public_key.to_compressed_bytes()
    resolver = DIDResolver(conn, registry.address)
    for did in (str(did_for(dave.address, conn.chain_id)), f"did:ethr:{hex(conn.chain_id)}:0x{compressed.hex()}"):
        ours = resolver.resolve(did)
        theirs = reference(did, conn, registry.address)
        assert ours.document == theirs["didDocument"], did
        assert ours.metadata == theirs["didDocumentMetadata"], did
    assert resolver.resolve(did_for(dave.address, conn.chain_id)).deactivated
    assert erin.address  # erin's key is the public-key DID above


def test_non_owner_cannot_change_attributes_or_delegates(
    registry: DIDRegistryClient, dev_signers: list[Signer]
) -> None:
    owner, intruder = dev_signers[1], dev_signers[7]
    with pytest.raises(revert_errors.DIDRegistryNotOwner) as err:
        registry.set_attribute(owner.address, b32("did/svc/X"), b"evil", YEAR, sender=intruder)
    assert (err.value.identity, err.value.actor) == (owner.address, intruder.address)
    with pytest.raises(revert_errors.DIDRegistryNotOwner):
        registry.add_delegate(owner.address, b32("veriKey"), intruder.address, YEAR, sender=intruder)
    with pytest.raises(revert_errors.DIDRegistryNotOwner):
        registry.revoke_delegate(owner.address, b32("veriKey"), intruder.address, sender=intruder)
    with pytest.raises(revert_errors.DIDRegistryNotOwner):
        registry.change_owner(owner.address, intruder.address, sender=intruder)


def test_signed_owner_change_with_wrong_signer_or_replayed_nonce(
    registry: DIDRegistryClient, dev_signers: list[Signer]
) -> None:
    owner, new_owner, relayer = dev_signers[1], dev_signers[2], dev_signers[3]
    tail = b"changeOwner" + bytes.fromhex(new_owner.address[2:])
    digest = signed_hash(registry, owner.address, tail)
    v, r, s = sign_raw(keys.dev_accounts()[8], digest)  # somebody else's key
    with pytest.raises(revert_errors.DIDRegistryInvalidSignature) as err:
        registry.change_owner_signed(owner.address, v, r, s, new_owner.address, sender=relayer)
    assert err.value.signer == keys.dev_accounts()[8].address
    v, r, s = sign_raw(keys.dev_accounts()[1], digest)
    registry.change_owner_signed(owner.address, v, r, s, new_owner.address, sender=relayer)
    assert registry.identity_owner(owner.address) == new_owner.address
    with pytest.raises(revert_errors.DIDRegistryInvalidSignature):  # replay: the nonce has moved on
        registry.change_owner_signed(owner.address, v, r, s, new_owner.address, sender=relayer)
