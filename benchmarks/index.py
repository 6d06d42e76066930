"""The chain indexer: events indexed per second on a backfill, into SQLite and into PostgreSQL, and
the lag behind the head while following.

The chain: a deployed market whose one owner registers ASSETS assets behind their meters (a
credential, a registration and a mapping each: three logs an asset), bonds, and offers each asset
OFFERS_PER_ASSET times, relayed in batches of 200 (one packed OffersAccepted log per batch, unpacked
into one offers row per offer). The issue asks for the demo's day scaled to 100,000 offers with its
awards and settlements; this script measures a smaller chain (sizes below, environment to change
them) because producing the chain is what takes the time here: web3.py sends about 50
transactions a second to anvil and each offer is signed with eth-account, so 100,000 offers alone
would take minutes to sign and relay before the indexer reads a single block.

Three rates are given: events per second, the figure held against the target, where an
OffersAccepted log counts as the offers it carries (each is an event of the book, with its own
row); logs per second (each log decoded, its events row and its typed rows written); rows per
second (every row written: a log's events row, its typed rows). The lag: after each of
LAG_TRANSFERS token transfers is mined, how long until the following indexer (polling every 50 ms)
has the block.

Run: .venv/bin/python benchmarks/index.py   (PostgreSQL: FLEXLEDGER_TEST_DATABASE_URL=postgresql+psycopg://...)
Target (issue 20): at least 10,000 events per second into each database.
"""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

from _common import local_chain, report  # benchmarks/ is on sys.path when a script runs
from gas_orderbook import BATCH, DAY, Market, random_offer
from sqlalchemy import Engine, create_engine, text

from flexledger.chain.connection import ChainConnection
from flexledger.chain.manifest import Manifest
from flexledger.database.engine import make_engine, migrate
from flexledger.index.indexer import Indexer, row_counts

ASSETS = int(os.environ.get("FLEXLEDGER_BENCH_INDEX_ASSETS", "3000"))
OFFERS_PER_ASSET = int(os.environ.get("FLEXLEDGER_BENCH_INDEX_OFFERS", "3"))
LAG_TRANSFERS = 40
TARGET = 10_000


def build_chain(conn: ChainConnection) -> tuple[Manifest, int]:
    """The market, its assets and their offers; returns the manifest and the offers relayed."""
    market = Market(conn)
    key_of, ids = market.one_owner(ASSETS)
    rng = random.Random(20)
    first_day = market.params.day_start(conn.latest_timestamp()) + 2 * DAY
    offers = [random_offer(rng, asset, round_ + 1, [first_day + 2 * round_ * DAY], conn.latest_timestamp())
              for round_ in range(OFFERS_PER_ASSET) for asset in ids]
    market.relay(offers, key_of, BATCH)
    return market.manifest, len(offers)


def backfill(engine: Engine, conn: ChainConnection, manifest: Manifest) -> dict[str, float]:
    migrate(engine)
    indexer = Indexer(engine, conn, manifest)
    started = time.perf_counter()
    indexer.run()
    seconds = time.perf_counter() - started
    counts = row_counts(engine)
    logs, rows = counts["events"], sum(n for name, n in counts.items() if name != "blocks")
    with engine.connect() as c:
        batches = c.execute(text("SELECT count(*) FROM events WHERE name = 'OffersAccepted'")).scalar_one()
    events = logs - batches + counts["offers"]  # a batch's log counted as the offers it carries
    return {"seconds": round(seconds, 2), "logs": logs, "events": events, "rows": rows, "offers": counts["offers"],
            "logs_per_second": round(logs / seconds), "events_per_second": round(events / seconds),
            "rows_per_second": round(rows / seconds)}


def follow_lag(engine: Engine, conn: ChainConnection, manifest: Manifest, market_token: str) -> dict[str, float]:
    """Seconds from a transfer's receipt to the following indexer's checkpoint at its block."""
    from flexledger.chain.bindings import SettlementTokenClient
    from flexledger.chain.transactions import Signer
    from flexledger.identity import keys

    indexer = Indexer(engine, conn, manifest)
    stop = threading.Event()
    thread = threading.Thread(target=indexer.run, kwargs={"follow": True, "poll": 0.05, "stop": stop.is_set})
    thread.start()
    token = SettlementTokenClient(conn, market_token)
    sender = Signer(keys.dev_accounts()[3], conn)  # the aggregator holds tokens
    lags = []
    try:
        for _ in range(LAG_TRANSFERS):
            block = token.transfer(keys.dev_accounts()[5].address, 1, sender=sender).block_number or 0
            mined = time.perf_counter()
            while (indexer.checkpoint() or (-1, ""))[0] < block:
                time.sleep(0.005)
            lags.append(time.perf_counter() - mined)
    finally:
        stop.set()
        thread.join()
    return {"transfers": LAG_TRANSFERS, "p50_ms": round(1000 * statistics.median(lags), 1),
            "max_ms": round(1000 * max(lags), 1)}


def postgresql_url() -> tuple[str, str] | None:
    url = os.environ.get("FLEXLEDGER_TEST_DATABASE_URL")
    if not url:
        return None
    schema = f"bench_index_{uuid.uuid4().hex[:8]}"
    with create_engine(url).begin() as c:
        c.execute(text(f"CREATE SCHEMA {schema}"))
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}", schema


def main() -> None:
    load_before = os.getloadavg()
    with local_chain() as conn:
        started = time.perf_counter()
        manifest, offers = build_chain(conn)
        print(f"  chain: {ASSETS:,} assets, {offers:,} offers, {conn.w3.eth.block_number:,} blocks, "
              f"built in {time.perf_counter() - started:.0f} s")
        figures: dict[str, dict[str, float]] = {}
        folder = Path(tempfile.mkdtemp(prefix="flexledger-bench-index-"))
        sqlite = make_engine(f"sqlite:///{folder / 'index.db'}")
        figures["sqlite"] = backfill(sqlite, conn, manifest)
        pg = postgresql_url()
        if pg is not None:
            url, schema = pg
            engine = make_engine(url)
            try:
                figures["postgresql"] = backfill(engine, conn, manifest)
            finally:
                engine.dispose()
                with create_engine(os.environ["FLEXLEDGER_TEST_DATABASE_URL"]).begin() as c:
                    c.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        lag = follow_lag(sqlite, conn, manifest, manifest.address("SettlementToken"))
    for name, f in figures.items():
        verdict = "met" if f["events_per_second"] >= TARGET else "MISSED"
        print(f"  backfill into {name}: {f['logs']:,} logs carrying {f['events']:,} events ({f['offers']:,} offers "
              f"unpacked), {f['rows']:,} rows, in {f['seconds']} s: {f['events_per_second']:,} events/s "
              f"(target {TARGET:,}: {verdict}), {f['logs_per_second']:,} logs/s, {f['rows_per_second']:,} rows/s")
    if "postgresql" not in figures:
        print("  PostgreSQL: not measured (set FLEXLEDGER_TEST_DATABASE_URL)")
    print(f"  following: a transfer's block indexed {lag['p50_ms']} ms after its receipt (median of "
          f"{lag['transfers']}), {lag['max_ms']} ms at most")
    report("index", {"assets": ASSETS, "offers": offers, "backfill": figures, "follow_lag": lag,
                     "load_before": [round(x, 2) for x in load_before], "target_events_per_second": TARGET})


if __name__ == "__main__":
    main()
