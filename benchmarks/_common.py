"""What every benchmark shares: a throwaway local chain and the one-JSON-line report."""

from __future__ import annotations

import contextlib
import json
import platform
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flexledger.chain.connection import ChainConnection
from flexledger.chain.node import LocalNode, free_port


@contextlib.contextmanager
def local_chain() -> Iterator[ChainConnection]:
    node = LocalNode(Path(tempfile.mkdtemp(prefix="flexledger-bench-")), port=free_port(), persist=False)
    info = node.start()
    try:
        yield ChainConnection.connect(info.rpc_url)
    finally:
        node.stop()


def machine() -> str:
    import os

    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def report(name: str, figures: dict[str, Any]) -> None:
    """The benchmark's last line: one JSON object with its figures."""
    print(json.dumps({"benchmark": name, "machine": machine(), **figures}, sort_keys=True))
