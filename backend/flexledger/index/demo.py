"""The indexer's step of `flexledger demo` (mounted through the ``flexledger.demo_steps`` entry
points): the demo's whole chain read into a fresh SQLite index, then rebuilt to the same tables."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from flexledger.database.engine import make_engine, migrate

from .indexer import Indexer, row_counts

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from flexledger.deployment import Deployment


def demo_step(chain: Deployment, accounts: dict[str, LocalAccount], console: Console) -> dict[str, Any]:
    """The backend's index of the chain (`flexledger index run`)."""
    with tempfile.TemporaryDirectory(prefix="flexledger-index-") as folder:
        engine = make_engine(f"sqlite:///{Path(folder) / 'index.db'}")
        try:
            migrate(engine)
            indexer = Indexer(engine, chain.conn, chain.manifest)
            started = time.perf_counter()
            indexer.run()
            seconds = time.perf_counter() - started
            counts = row_counts(engine)
            status = indexer.status()
            indexer.clear()
            indexer.run()
            rebuilt = row_counts(engine) == counts
        finally:
            engine.dispose()
    events = counts.get("events", 0)
    console.print(f"the indexer read the demo chain's {status.head} blocks: {events:,} events, "
                  f"{counts.get('offers', 0):,} offers, {counts.get('awards', 0):,} awards and "
                  f"{counts.get('settlements', 0):,} settlements in {seconds:.1f} s; a rebuild from scratch "
                  + ("gave the same tables" if rebuilt else "gave OTHER tables"))
    line = (f"{events:,} events of {status.head} blocks indexed into SQL in {seconds:.1f} s "
            f"({events / seconds if seconds else 0:,.0f} a second), lag {status.lag} blocks; rebuilt from "
            f"scratch: {'the same tables' if rebuilt else 'OTHER TABLES'}")
    return {"events": events, "blocks": status.head, "seconds": round(seconds, 2), "rows": counts,
            "rebuilt_equal": rebuilt, "lag": status.lag, "line": line}
