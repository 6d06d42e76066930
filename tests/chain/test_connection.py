"""Connecting: unreachable nodes, manifests of another chain, development keys elsewhere."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flexledger.chain.connection import ChainConnection, is_loopback_url
from flexledger.chain.errors import (
    DevKeyRefusedError,
    ManifestChainMismatchError,
    ManifestError,
    RpcUnreachableError,
)
from flexledger.chain.manifest import Manifest
from flexledger.chain.node import LocalNode, NodeInfo, free_port
from flexledger.identity import keys


@pytest.fixture(scope="module")
def other_chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeInfo]:
    """A node that is not a development chain: Energy Web's Volta test network id."""
    node = LocalNode(tmp_path_factory.mktemp("volta"), port=free_port(), chain_id=73799, persist=False)
    yield node.start()
    node.stop()


def test_unreachable_rpc_names_the_url_and_what_to_do() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(RpcUnreachableError) as err:
        ChainConnection.connect(url, timeout=2)
    assert url in str(err.value)
    assert "flexledger node start" in (err.value.hint or "")


def test_manifest_of_another_chain_is_refused(
    manifest: Manifest, other_chain: NodeInfo, tmp_path: Path
) -> None:
    path = tmp_path / "manifest.json"
    manifest.save(path)
    with pytest.raises(ManifestChainMismatchError) as err:
        Manifest.load(path).check(ChainConnection.connect(other_chain.rpc_url), path)
    assert "31337" in str(err.value) and "73799" in str(err.value)


def test_manifest_of_a_reset_chain_is_refused(manifest: Manifest, tmp_path: Path) -> None:
    node = LocalNode(tmp_path / "fresh", port=free_port(), persist=False)
    info = node.start()
    try:
        with pytest.raises(ManifestError, match="no code"):
            manifest.check(ChainConnection.connect(info.rpc_url))
    finally:
        node.stop()


def test_manifest_round_trip(manifest: Manifest, tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    manifest.save(path)
    assert Manifest.load(path) == manifest


def test_missing_manifest_says_to_deploy(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as err:
        Manifest.load(tmp_path / "none.json")
    assert "flexledger deploy" in (err.value.hint or "")


def test_dev_key_is_refused_on_a_non_dev_chain(other_chain: NodeInfo) -> None:
    conn = ChainConnection.connect(other_chain.rpc_url)
    assert not conn.is_local_dev_chain()
    with pytest.raises(DevKeyRefusedError, match="development key"):
        keys.signer(keys.dev_accounts()[0], conn)


def test_a_fresh_key_is_accepted_on_a_non_dev_chain(other_chain: NodeInfo) -> None:
    conn = ChainConnection.connect(other_chain.rpc_url)
    assert keys.signer(keys.new_account(), conn).address


def test_dev_keys_are_anvils() -> None:
    assert keys.dev_accounts()[0].address == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


@pytest.mark.parametrize(
    ("url", "loopback"),
    [("http://127.0.0.1:8545", True), ("http://localhost:1", True), ("http://[::1]:8545", True),
     ("https://rpc.example.org", False), ("http://10.0.0.5:8545", False)],
)
def test_loopback_detection(url: str, loopback: bool) -> None:
    assert is_loopback_url(url) is loopback
