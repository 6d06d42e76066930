"""`flexledger demo`: the whole market flow, as far as it is built, on a fresh local chain.

Each capability adds a step here so that a newcomer sees it work, and the run ends with a
readable summary. The demo uses anvil's well-known development keys, so it refuses to run
against any chain that is not a local development chain.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.rule import Rule
from rich.table import Table

from flexledger.chain.connection import ChainConnection
from flexledger.chain.deploy import deploy_all
from flexledger.chain.node import LocalNode
from flexledger.config import Settings
from flexledger.identity import keys


@contextlib.contextmanager
def demo_chain(settings: Settings, *, keep: bool, console: Console) -> Iterator[ChainConnection]:
    """A fresh local chain of its own (or the configured chain), stopped afterwards unless ``keep``."""
    if settings.rpc_url:
        yield ChainConnection.connect(settings.rpc_url, timeout=settings.rpc_timeout)
        return
    folder = Path(tempfile.mkdtemp(prefix="flexledger-demo-")) if not keep else settings.data_dir / "demo"
    node = LocalNode(folder, port=settings.node_port, chain_id=settings.node_chain_id, persist=keep)
    node.stop()
    info = node.start()
    console.print(f"local chain started at {info.rpc_url} (chain id {info.chain_id})")
    try:
        yield ChainConnection.connect(info.rpc_url)
    finally:
        if keep:
            console.print(f"the demo chain keeps running at {info.rpc_url} (its data is in {folder})")
        else:
            node.stop()


def run_demo(settings: Settings, *, keep: bool = False, quiet: bool = False) -> dict[str, Any]:
    console = Console(quiet=quiet)
    started = time.perf_counter()
    summary: dict[str, Any] = {}
    with demo_chain(settings, keep=keep, console=console) as conn:
        deployer = keys.signer(keys.dev_accounts()[0], conn)

        console.print(Rule("1. Contracts"))
        manifest = deploy_all(conn, deployer)
        table = Table("contract", "address", "gas")
        for name, c in manifest.contracts.items():
            table.add_row(name, c.address, f"{c.gas_used:,}")
        console.print(table)
        summary["chain_id"] = conn.chain_id
        summary["contracts"] = {n: c.address for n, c in manifest.contracts.items()}
        summary["deploy_gas"] = {n: c.gas_used for n, c in manifest.contracts.items()}

    summary["seconds"] = round(time.perf_counter() - started, 1)
    console.print(Rule("Summary"))
    console.print(
        f"deployed {len(summary['contracts'])} contracts on chain {summary['chain_id']} "
        f"in {summary['seconds']} s"
    )
    return summary
