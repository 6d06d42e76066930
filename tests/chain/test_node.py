"""The local node manager: free ports, state kept between runs, missing tools."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from flexledger.chain import paths
from flexledger.chain.connection import ChainConnection
from flexledger.chain.errors import ToolMissingError
from flexledger.chain.node import LocalNode, free_port, rpc_answers


def test_start_status_stop(tmp_path: Path) -> None:
    node = LocalNode(tmp_path, port=free_port(), persist=False)
    info = node.start()
    try:
        assert rpc_answers(info.rpc_url) == 31337
        assert node.status() == info
        assert node.start() == info  # starting twice finds the running node
    finally:
        assert node.stop()
    assert node.status() is None
    assert not node.stop()


def test_a_taken_port_makes_it_pick_another(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        node = LocalNode(tmp_path, port=taken, persist=False)
        info = node.start()
        try:
            assert info.port != taken
            assert rpc_answers(info.rpc_url) == 31337
        finally:
            node.stop()


def test_state_is_kept_between_runs(tmp_path: Path) -> None:
    node = LocalNode(tmp_path, port=free_port(), persist=True)
    info = node.start()
    try:
        conn = ChainConnection.connect(info.rpc_url)
        conn.mine()
        conn.mine()
        height = conn.w3.eth.block_number
    finally:
        node.stop()
    assert (tmp_path / "anvil-state.json").is_file()
    info = node.start()
    try:
        assert ChainConnection.connect(info.rpc_url).w3.eth.block_number == height
    finally:
        node.stop()


def test_missing_anvil_says_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FLEXLEDGER_PROJECT_ROOT", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolMissingError) as err:
        LocalNode(tmp_path / "data").start()
    assert "npm ci" in str(err.value)
    assert err.value.tool == "anvil"


def test_missing_solc_says_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FLEXLEDGER_PROJECT_ROOT", str(tmp_path))
    with pytest.raises(ToolMissingError, match="npm ci"):
        paths.solc_command()
