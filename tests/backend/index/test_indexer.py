"""The indexer against a settled market day: every table filled, an incremental run equal to a
rebuild, and equal again after a run killed mid-span, a fork of 1 and of 20 blocks, and a node
that stopped answering for a while."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from index_tables import column, columns, dump, new_engine, rebuilt
from oracle_stores import postgresql_schema
from settlement_world import SettlementWorld
from sqlalchemy import Connection, Engine, Table, create_engine, text
from sqlalchemy.exc import OperationalError

from flexledger.book.order_book import SignedOffer, relay_offers
from flexledger.chain.connection import ChainConnection
from flexledger.chain.errors import ChainError
from flexledger.chain.manifest import Manifest
from flexledger.identity.eip712 import read_domain
from flexledger.index import indexer as indexer_module
from flexledger.index.indexer import Indexer
from flexledger.rules.orders import unpack_accepted

pytestmark = pytest.mark.slow


def test_a_settled_day_fills_every_kind_of_table_and_equals_its_rebuild(
    day: SettlementWorld, engines: Callable[[], Engine],
) -> None:
    incremental = engines()
    indexer = Indexer(incremental, day.conn, day.manifest, span=7)  # many small spans, as a follower reads
    indexer.run()
    tables = dump(incremental)
    for name in ("blocks", "events", "markets", "zones", "assets", "asset_mappings", "credentials", "requests",
                 "offers", "clearing_results", "result_closures", "day_finalisations", "awards", "anchored_roots",
                 "settlements", "token_transfers"):
        assert tables[name], f"no rows in {name}"
    digests = {"0x" + d.hex() for d in day.digests}
    assert set(column(incremental, "offers", "digest")) == digests
    assert set(column(incremental, "awards", "offer_digest")) == digests
    assert set(column(incremental, "settlements", "offer_digest")) == digests
    assert tables == rebuilt(engines(), day.conn, day.manifest)
    status = indexer.status()
    assert status.indexed == status.head and status.lag == 0


def test_offers_are_unpacked_from_their_batches(day: SettlementWorld, engines: Callable[[], Engine]) -> None:
    engine = engines()
    Indexer(engine, day.conn, day.manifest).run()
    (accepted,) = [e for e in day.book.events("OffersAccepted")]
    entries = unpack_accepted(bytes(accepted.args["offers"]))
    assert len(entries) == 2
    assert sorted(columns(engine, "offers", "seller", "asset")) == sorted((s, o.asset) for s, o in entries)


def test_a_run_killed_mid_span_resumes_and_equals_a_rebuild(
    day: SettlementWorld, engines: Callable[[], Engine], monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = engines()
    real_insert = indexer_module._insert
    calls = {"n": 0}

    def dies_on_the_40th_table(connection: Connection, table: Table, rows: list[dict[str, object]]) -> None:
        calls["n"] += 1
        if calls["n"] == 40:  # in the middle of a span's transaction: rows of it are written, not committed
            raise KeyboardInterrupt
        real_insert(connection, table, rows)

    monkeypatch.setattr(indexer_module, "_insert", dies_on_the_40th_table)
    indexer = Indexer(engine, day.conn, day.manifest, span=5)
    with pytest.raises(KeyboardInterrupt):
        indexer.run()
    interrupted = indexer.checkpoint()
    assert interrupted is not None and interrupted[0] < day.conn.w3.eth.block_number
    monkeypatch.setattr(indexer_module, "_insert", real_insert)
    Indexer(engine, day.conn, day.manifest, span=5).run()  # a new process would start just so
    assert dump(engine) == rebuilt(engines(), day.conn, day.manifest)


def _token_transfer(day: SettlementWorld) -> dict[str, str]:
    """A transaction anvil may put in a replacement block: the buyer pays the deployer a token unit."""
    data = day.token.encode("transfer(address,uint256)", day.anyone.address, 1)
    return {"from": day.dso.address, "to": day.token.address, "data": "0x" + data.hex()}


@pytest.mark.parametrize("depth", [1, 20])
def test_a_fork_is_rolled_back_and_read_again(
    private_day: SettlementWorld, engines: Callable[[], Engine], depth: int,
) -> None:
    day = private_day
    engine = engines()
    conn = day.conn
    indexer = Indexer(engine, conn, day.manifest)
    indexer.run()
    before = dump(engine)
    head = conn.w3.eth.block_number
    assert [b for b in column(engine, "events", "block_number") if b > head - depth], "the fork replaces logs"
    conn.request("anvil_reorg", [depth, [[_token_transfer(day), 0]]])
    assert conn.w3.eth.block_number == head
    steps = []
    indexer.run(report=steps.append)
    assert steps[0].rolled_back_to is not None and steps[0].rolled_back_to <= head - depth
    after = dump(engine)
    assert after == rebuilt(engines(), conn, day.manifest)
    assert after != before
    fork_hashes = {conn.w3.eth.get_block(n)["hash"].to_0x_hex() for n in range(head - depth + 1, head + 1)}
    assert {h for n, h in columns(engine, "events", "block_number", "block_hash") if n > head - depth} <= fork_hashes


class Relay:
    """A TCP relay to the node that can be cut and restored: the node unreachable for a while."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.open = threading.Event()
        self.open.set()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            if not self.open.is_set():
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while self.open.is_set() and (data := source.recv(65536)):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            source.close()
            sink.close()


@contextmanager
def following(indexer: Indexer, problems: list[Exception]) -> Iterator[None]:
    stop = threading.Event()
    thread = threading.Thread(target=indexer.run, kwargs={
        "follow": True, "poll": 0.05, "stop": stop.is_set, "trouble": lambda exc, _wait: problems.append(exc)})
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=60)


def _wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_node_away_for_a_while_is_waited_for(
    conn: ChainConnection, manifest: Manifest, day: SettlementWorld, engines: Callable[[], Engine],
) -> None:
    from urllib.parse import urlsplit

    relay = Relay(urlsplit(conn.rpc_url).port or 0)
    far = ChainConnection.connect(f"http://127.0.0.1:{relay.port}", timeout=2)
    engine = engines()
    indexer = Indexer(engine, far, manifest)
    problems: list[Exception] = []
    with following(indexer, problems):
        _wait_until(lambda: indexer.checkpoint() is not None and indexer.checkpoint()[0] == conn.w3.eth.block_number)
        relay.open.clear()  # the node goes away; the chain goes on
        for _ in range(3):
            day.pass_time(60)
        _wait_until(lambda: len(problems) >= 2)
        relay.open.set()
        _wait_until(lambda: indexer.checkpoint()[0] == conn.w3.eth.block_number)  # type: ignore[index]
    assert problems
    assert dump(engine) == rebuilt(engines(), conn, manifest)


def test_a_node_that_caps_log_ranges_is_read_in_smaller_pages(
    day: SettlementWorld, engines: Callable[[], Engine], monkeypatch: pytest.MonkeyPatch,
) -> None:
    conn = day.conn
    real_page = conn._logs_page
    asked: list[tuple[int, int]] = []

    def capped(params: dict[str, object], start: int, end: int) -> list[object]:
        asked.append((start, end))
        if end - start + 1 > 4:  # as Besu words it
            raise ChainError("eth_getLogs failed: {'code': -32005, 'message': 'exceeds max block range 4'}")
        return real_page(params, start, end)

    monkeypatch.setattr(conn, "_logs_page", capped)
    monkeypatch.setattr(conn, "log_range", 10_000)
    engine = engines()
    Indexer(engine, conn, day.manifest, span=50).run()
    assert conn.log_range <= 4 and all(hi - lo + 1 <= 4 for lo, hi in asked[-3:])
    monkeypatch.undo()
    assert dump(engine) == rebuilt(engines(), conn, day.manifest)


def test_an_offer_replaced_by_a_newer_overlapping_one_is_recorded(
    day: SettlementWorld, engines: Callable[[], Engine],
) -> None:
    later = day.day + 3 * 86_400 + 40 * 900
    first = replace(day.offers[0], start=later, isps=2, nonce=5, expiry=later + 86_400)
    apart = replace(first, start=later + 4 * 900, nonce=6)  # no overlap: both stay in force
    newer = replace(first, start=later + 900, isps=1, nonce=7)  # overlaps `first` only
    domain = read_domain(day.conn, day.book.address)
    engine = engines()
    indexer = Indexer(engine, day.conn, day.manifest)
    assert relay_offers(day.book, [SignedOffer(o, o.sign(day.owner, domain)) for o in (first, apart)]).accepted == 2
    indexer.run()
    assert column(engine, "offer_replacements", "replaced_digest") == []
    assert relay_offers(day.book, [SignedOffer(newer, newer.sign(day.owner, domain))]).accepted == 1
    indexer.run()
    separator = domain.separator()
    assert columns(engine, "offer_replacements", "replaced_digest", "by_digest") == [
        ("0x" + first.digest(separator).hex(), "0x" + newer.digest(separator).hex())]
    assert dump(engine) == rebuilt(engines(), day.conn, day.manifest)


def test_confirmations_keep_the_indexer_behind_the_head(day: SettlementWorld, engines: Callable[[], Engine]) -> None:
    engine = engines()
    head = day.conn.w3.eth.block_number
    indexer = Indexer(engine, day.conn, day.manifest, confirmations=5)
    indexer.run()
    status = indexer.status()
    assert (status.indexed, status.tip, status.lag) == (head - 5, head - 5, 5)
    for _ in range(5):
        day.conn.mine()
    indexer.run()
    assert indexer.status().indexed == head


def test_finalized_reads_up_to_the_nodes_finalized_block(day: SettlementWorld, engines: Callable[[], Engine]) -> None:
    engine = engines()
    indexer = Indexer(engine, day.conn, day.manifest, confirmations="finalized")
    indexer.run()
    finalized = int(day.conn.request("eth_getBlockByNumber", ["finalized", False])["number"], 16)
    status = indexer.status()
    assert status.tip == finalized < status.head
    # anvil calls only its genesis final (without --slots-in-an-epoch): nothing deployed is read yet
    assert status.indexed is None if finalized < min(c.block for c in day.manifest.contracts.values()) \
        else status.indexed == finalized


@pytest.mark.services
def test_postgresql_dropping_the_indexers_connections_is_recovered_from(
    day: SettlementWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As a PostgreSQL restart looks to a client: every connection of the indexer killed by the server
    (pg_terminate_backend, on this test's connections only: the database is shared) while it follows."""
    name = f"flexledger-index-{uuid.uuid4().hex[:8]}"
    with postgresql_schema() as url:
        engine = new_engine(f"{url}&application_name={name}")
        indexer = Indexer(engine, day.conn, day.manifest)
        watcher = Indexer(new_engine(url), day.conn, day.manifest)  # reads the checkpoint on connections of its own
        problems: list[Exception] = []
        admin = create_engine(os.environ["FLEXLEDGER_TEST_DATABASE_URL"])
        with following(indexer, problems):
            _wait_until(lambda: (watcher.checkpoint() or (0, ""))[0] == day.conn.w3.eth.block_number)
            with admin.begin() as c:
                killed = c.execute(text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                        "WHERE application_name = :name"), {"name": name}).scalar_one()
            assert killed >= 1
            day.token.transfer(day.anyone.address, 1, sender=day.dso)  # a log to write on new connections
            _wait_until(lambda: (watcher.checkpoint() or (0, ""))[0] == day.conn.w3.eth.block_number)
        admin.dispose()
        assert any(isinstance(p, OperationalError) for p in problems)
        fresh = new_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
        assert dump(engine) == rebuilt(fresh, day.conn, day.manifest)
        engine.dispose()
        watcher.engine.dispose()
