"""`flexledger dev` on a local development chain, its refusal elsewhere, and the message a
transaction gets when its account holds no ether."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_runner import run
from eth_account import Account

from flexledger.chain.bindings import SettlementTokenClient
from flexledger.chain.connection import ChainConnection
from flexledger.chain.errors import InsufficientFundsError
from flexledger.chain.manifest import Manifest
from flexledger.chain.node import free_port
from flexledger.chain.transactions import Signer
from flexledger.times import iso


@pytest.fixture
def own_node(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A local node of the test's own (warping the shared one would move every test's clock)."""
    env = {"FLEXLEDGER_NODE_PORT": str(free_port())}
    run("node", "start", "--json", data_dir=tmp_path, env=env)
    try:
        yield env
    finally:
        run("node", "stop", "--json", data_dir=tmp_path, check=False)


def test_fund_warp_mine(tmp_path: Path, own_node: dict[str, str]) -> None:
    newcomer = Account.create().address
    funded = json.loads(run("dev", "fund", newcomer, "--eth", "2.5", "--json", data_dir=tmp_path, env=own_node).stdout)
    assert funded == {"address": newcomer, "wei": 2_500_000_000_000_000_000}
    did = f"did:ethr:0x7a69:{newcomer}"
    run("dev", "fund", did, "--eth", "1", data_dir=tmp_path, env=own_node)

    mined = json.loads(run("dev", "mine", "3", "--json", data_dir=tmp_path, env=own_node).stdout)
    warped = json.loads(run("dev", "warp", "+1h30m", "--json", data_dir=tmp_path, env=own_node).stdout)
    assert warped["timestamp"] == warped["previous"] + 5400
    assert warped["previous"] >= mined["timestamp"]
    later = warped["timestamp"] + 86_400
    at = json.loads(run("dev", "warp", iso(later), "--json", data_dir=tmp_path, env=own_node).stdout)
    assert at["timestamp"] == later

    back = run("dev", "warp", iso(later - 60), data_dir=tmp_path, env=own_node, check=False)
    assert back.returncode == 1 and "not after it" in back.stderr and "what to do" in back.stderr
    bad = run("dev", "warp", "+soon", data_dir=tmp_path, env=own_node, check=False)
    assert bad.returncode == 2 and "1h30m or 2d" in bad.stderr
    nobody = run("dev", "fund", "0x1234", data_dir=tmp_path, env=own_node, check=False)
    assert nobody.returncode == 2 and "did:ethr" in nobody.stderr


def test_refused_on_a_chain_that_is_not_a_development_chain(tmp_path: Path) -> None:
    # anvil itself, on this machine, but with a production chain id: not ours to change
    env = {"FLEXLEDGER_NODE_PORT": str(free_port()), "FLEXLEDGER_NODE_CHAIN_ID": "1"}
    run("node", "start", data_dir=tmp_path, env=env)
    try:
        for args in (("fund", Account.create().address), ("warp", "+1h"), ("mine",)):
            refused = run("dev", *args, data_dir=tmp_path, env=env, check=False)
            assert refused.returncode == 1
            assert "is not a local development chain" in refused.stderr and "what to do" in refused.stderr
    finally:
        run("node", "stop", data_dir=tmp_path, check=False)


def test_an_account_without_ether_gets_a_message_and_the_fix(conn: ChainConnection, manifest: Manifest) -> None:
    poor = Signer(Account.create(), conn)
    token = SettlementTokenClient(conn, manifest.address("SettlementToken"), signer=poor)
    with pytest.raises(InsufficientFundsError) as caught:
        token.approve(poor.address, 1)
    assert caught.value.address == poor.address and caught.value.balance == 0
    assert caught.value.hint is not None and f"flexledger dev fund {poor.address}" in caught.value.hint


def test_a_command_before_deploy_says_so_and_starts_no_node(tmp_path: Path) -> None:
    env = {"FLEXLEDGER_NODE_PORT": str(free_port())}
    refused = run("bond", "show", Account.create().address, data_dir=tmp_path, env=env, check=False)
    assert refused.returncode == 1 and "nothing is deployed yet" in refused.stderr
    assert "flexledger deploy" in refused.stderr
    assert run("node", "status", data_dir=tmp_path, env=env, check=False).returncode == 3, "no node was started"
