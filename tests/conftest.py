"""Shared fixtures: one anvil for the session, the contracts deployed once, a snapshot per test."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from flexledger.chain import paths
from flexledger.chain.connection import ChainConnection
from flexledger.chain.deploy import deploy_all
from flexledger.chain.manifest import Manifest
from flexledger.chain.node import LocalNode, NodeInfo, free_port
from flexledger.chain.transactions import Signer
from flexledger.identity import keys


@pytest.fixture(autouse=True)
def _one_service_test_at_a_time(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The service tests share one PostgreSQL database and one MQTT broker: under pytest-xdist they
    take a lock in the run's shared temporary folder, so they run one at a time. (An xdist_group
    would not hold: pytest 9.2 ignores the node ids --dist loadgroup rewrites, pytest-xdist#1386.)"""
    if request.node.get_closest_marker("services") is None:
        yield
        return
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # the workers' common parent
    with open(shared / "services.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        yield


@pytest.fixture(autouse=True)
def _isolated_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's own config file, keys or data directory."""
    for name in list(os.environ):
        if name.startswith("FLEXLEDGER_") and not name.startswith(("FLEXLEDGER_TEST_", "FLEXLEDGER_PROJECT_ROOT")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@pytest.fixture(scope="session")
def anvil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeInfo]:
    node = LocalNode(tmp_path_factory.mktemp("anvil"), port=free_port(), persist=False)
    info = node.start()
    yield info
    node.stop()


@pytest.fixture(scope="session")
def session_conn(anvil: NodeInfo) -> ChainConnection:
    return ChainConnection.connect(anvil.rpc_url)


@pytest.fixture(scope="session")
def deployer(session_conn: ChainConnection) -> Signer:
    return keys.signer(keys.dev_accounts()[0], session_conn)


@pytest.fixture(scope="session")
def manifest(session_conn: ChainConnection, deployer: Signer) -> Manifest:
    return deploy_all(session_conn, deployer)


@pytest.fixture
def conn(session_conn: ChainConnection, manifest: Manifest) -> Iterator[ChainConnection]:
    """The session's chain with the contracts deployed, rolled back after the test."""
    snapshot = session_conn.snapshot()
    yield session_conn
    session_conn.revert(snapshot)


@pytest.fixture
def dev_signers(session_conn: ChainConnection) -> list[Signer]:
    return [keys.signer(a, session_conn) for a in keys.dev_accounts()]


@pytest.fixture(scope="session")
def ethers() -> Callable[[dict[str, Any], str, str], dict[str, str]]:
    """An ordinary wallet library (ethers, Node.js) on an eth_signTypedData_v4 payload: its hash, its
    signature with a key, and the address it recovers from a given signature."""
    node = shutil.which("node")
    assert node, "Node.js is needed to hold typed data against ethers"

    def run(payload: dict[str, Any], key: str, signature: str) -> dict[str, str]:
        out = subprocess.run(
            [node, str(paths.project_root() / "tests" / "js" / "typed-data.mjs"), key, signature],
            input=json.dumps(payload), capture_output=True, text=True, check=True, cwd=paths.project_root(), timeout=60,
        ).stdout
        result: dict[str, str] = json.loads(out)
        return result

    return run
