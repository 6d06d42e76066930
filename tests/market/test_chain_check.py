"""`flexledger config --check`'s chain: it answers, and serves the manifest's chain."""

from __future__ import annotations

from flexledger.chain.node import NodeInfo, free_port
from flexledger.services import check_chain


def test_a_chain_that_answers_is_ok_with_its_id_and_head(anvil: NodeInfo) -> None:
    status = check_chain(anvil.rpc_url, manifest_chain_id=31337)
    assert status.ok and status.name == "chain" and "chain id 31337" in status.detail


def test_a_chain_other_than_the_manifests_is_not_ok(anvil: NodeInfo) -> None:
    status = check_chain(anvil.rpc_url, manifest_chain_id=1)
    assert not status.ok and "the manifest is for chain id 1" in status.detail


def test_an_unreachable_chain_is_reported_not_raised() -> None:
    status = check_chain(f"http://127.0.0.1:{free_port()}", timeout=2)
    assert not status.ok and "no EVM node answers" in status.detail
