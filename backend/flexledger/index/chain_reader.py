"""What the indexer asks the node: block headers (many in one JSON-RPC batch), the tip it may index
up to, and one span's logs of every contract with the headers that vouch for them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from flexledger.chain.connection import ChainConnection
from flexledger.chain.errors import ChainError, RpcUnreachableError
from flexledger.errors import FlexledgerError

HEADER_BATCH = 500
Confirmations = int | Literal["finalized"]


class ChainMovedError(FlexledgerError):
    """The node's answers about one span disagree: its chain changed while the span was read."""


@dataclass(frozen=True)
class Header:
    number: int
    hash: str
    parent_hash: str
    timestamp: int


def _hex(value: Any) -> str:
    text = value.hex() if isinstance(value, bytes | bytearray) else str(value)
    return text if text.startswith("0x") else "0x" + text


def headers(conn: ChainConnection, numbers: list[int]) -> dict[int, Header]:
    """The headers of ``numbers``, in JSON-RPC batches (a block the node does not have is left out)."""
    out: dict[int, Header] = {}
    for first in range(0, len(numbers), HEADER_BATCH):
        part = numbers[first:first + HEADER_BATCH]
        requests = [("eth_getBlockByNumber", [hex(n), False]) for n in part]
        try:
            responses = conn.w3.provider.make_batch_request(requests)  # type: ignore[attr-defined]
        except OSError as exc:  # requests' connection errors and timeouts are OSErrors
            raise RpcUnreachableError(conn.rpc_url, type(exc).__name__) from exc
        if not isinstance(responses, list):
            raise ChainError(f"the node at {conn.display_url} refused a batch of block requests: {responses}")
        for response in responses:
            block = response.get("result")
            if block:
                header = Header(int(block["number"], 16), _hex(block["hash"]), _hex(block["parentHash"]),
                                int(block["timestamp"], 16))
                out[header.number] = header
    return out


def tip(conn: ChainConnection, confirmations: Confirmations) -> int:
    """The newest block to index: the head less ``confirmations`` blocks, or the node's finalized
    block (-1 while there is none)."""
    if confirmations == "finalized":
        block = conn.request("eth_getBlockByNumber", ["finalized", False])
        return int(block["number"], 16) if block else -1
    try:
        return int(conn.w3.eth.block_number) - confirmations
    except OSError as exc:
        raise RpcUnreachableError(conn.rpc_url, type(exc).__name__) from exc


@dataclass(frozen=True)
class Span:
    """Blocks ``first``..``last``: their logs of the contracts, and the headers of ``first``, of
    ``last`` and of every block with a log (each log's block hash checked against its header)."""

    first: int
    last: int
    logs: list[Any]
    headers: dict[int, Header]


def read_span(conn: ChainConnection, addresses: list[str], first: int, last: int) -> Span:
    """One span, read so that it describes one chain: ``last``'s header before and after the logs
    must be the same block, and each log's block hash its block's."""
    before = headers(conn, [last]).get(last)
    logs = conn.get_logs({"address": addresses}, first, last, raw=True)
    wanted = sorted({first, last, *(int(log["blockNumber"], 16) for log in logs)})
    found = headers(conn, wanted)
    if before is None or found.get(last) != before:
        raise ChainMovedError(f"block {last} changed while blocks {first}..{last} were read",
                              hint="the indexer reads the span again")
    for log in logs:
        number = int(log["blockNumber"], 16)
        header = found.get(number)
        if header is None or header.hash != log["blockHash"]:
            raise ChainMovedError(f"a log of block {number} names a block the node no longer has",
                                  hint="the indexer reads the span again")
    return Span(first, last, logs, found)
