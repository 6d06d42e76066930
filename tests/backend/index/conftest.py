"""Fixtures of the indexer's tests: a database of each kind (SQLite in the test's folder, PostgreSQL
in a schema of its own when FLEXLEDGER_TEST_DATABASE_URL names one), a settled market day on the
session's chain, and the tables as rows to compare."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from index_tables import new_engine
from oracle_stores import STORES, store_url
from settlement_world import SettlementWorld, build_world
from sqlalchemy import Engine

from flexledger.chain.connection import ChainConnection
from flexledger.chain.deploy import deploy_all
from flexledger.chain.manifest import Manifest
from flexledger.chain.node import LocalNode, free_port
from flexledger.chain.transactions import Signer
from flexledger.identity import keys


@pytest.fixture(params=STORES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    folder = tmp_path / "index"  # the day's oracle keeps its own store in tmp_path
    folder.mkdir()
    with store_url(request.param, folder) as url:
        yield url


@pytest.fixture
def engines(database_url: str, tmp_path: Path) -> Iterator[Callable[[], Engine]]:
    """Fresh migrated databases of the test's kind, each emptied of the previous one's rows: the first
    for the run under test, the next ones for rebuilds to compare it with (one schema serves both on
    PostgreSQL, so a rebuild's database is a SQLite file beside it)."""
    made: list[Engine] = []

    def make() -> Engine:
        url = database_url if not made else f"sqlite:///{tmp_path / f'rebuild{len(made)}.db'}"
        made.append(new_engine(url))
        return made[-1]

    yield make
    for engine in made:
        engine.dispose()


@pytest.fixture
def day(conn: ChainConnection, manifest: Manifest, deployer: Signer, dev_signers: list[Signer],
        tmp_path: Path) -> SettlementWorld:
    """A market day cleared, final, anchored and settled: every kind of table gets rows."""
    world = build_world(conn, manifest, deployer, dev_signers, tmp_path)
    world.settle_all()
    return world


@pytest.fixture
def private_day(tmp_path: Path) -> Iterator[SettlementWorld]:
    """The settled day on a chain of the test's own: anvil_reorg on the session's chain, which the
    other tests move back and forth with evm_snapshot/evm_revert, once took blocks from below the
    contracts' deployment, and a fork test must never change the chain other tests run on."""
    node = LocalNode(tmp_path / "anvil", port=free_port(), persist=False)
    info = node.start()
    try:
        conn = ChainConnection.connect(info.rpc_url)
        deployer = keys.signer(keys.dev_accounts()[0], conn)
        manifest = deploy_all(conn, deployer)
        world = build_world(conn, manifest, deployer, [keys.signer(a, conn) for a in keys.dev_accounts()], tmp_path)
        world.settle_all()
        yield world
    finally:
        node.stop()
