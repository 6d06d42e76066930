"""A connection to one EVM node: web3.py underneath, flexledger's errors and gas record on top."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url
from web3 import HTTPProvider, Web3
from web3.exceptions import Web3RPCError
from web3.types import BlockIdentifier

from flexledger.redaction import redact_url, scrub_urls

from .errors import ChainError, RpcUnreachableError

if TYPE_CHECKING:
    from .transactions import Signer

# Chain ids that only ever name a throwaway development chain (anvil, hardhat, ganache).
DEV_CHAIN_IDS = frozenset({31337, 1337})


@dataclass(frozen=True)
class GasRecord:
    """The gas one mined transaction used."""

    contract: str
    function: str
    gas_used: int
    tx_hash: str
    block: int


@dataclass
class GasLog:
    """Every transaction's gas, in the order they were mined."""

    records: list[GasRecord] = field(default_factory=list)

    def add(self, record: GasRecord) -> None:
        self.records.append(record)

    def by_function(self) -> dict[str, list[int]]:
        table: dict[str, list[int]] = {}
        for r in self.records:
            table.setdefault(f"{r.contract}.{r.function}", []).append(r.gas_used)
        return table

    def total(self) -> int:
        return sum(r.gas_used for r in self.records)


def is_loopback_url(url: str) -> bool:
    """Whether requests to ``url`` go to this machine. The host is read the way the HTTP library that
    sends them (requests, urllib3) reads it, and must be the one the standard parser reads too: a URL
    the two read differently (``http://HOST\\@127.0.0.1/`` goes to HOST) is not loopback."""
    try:
        sent = parse_url(requests.Request("POST", url).prepare().url or "").host or ""
        written = urlsplit(url).hostname or ""
    except (ValueError, requests.RequestException, LocationParseError):
        return False
    host = sent.strip("[]").lower()
    if host != written.lower():
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# A node refusing an eth_getLogs range says so in words of its own (Besu: "exceeds max block range",
# Infura/Alchemy: "query returned more than 10000 results", "block range is too large", Geth:
# "too many"); a code -32005 (limit exceeded) or such words mean: ask for a smaller range.
LOG_RANGE_REFUSALS = ("range", "too many", "too large", "limit", "exceed", "more than", "-32005", "response size")
FIRST_LOG_RANGE = 10_000


def is_log_range_refusal(exc: Exception) -> bool:
    text = str(exc).lower()
    if "rate limit" in text or "429" in text:  # asking smaller would only ask more often
        return False
    return any(words in text for words in LOG_RANGE_REFUSALS)


# What a development node says it is, and a method only that kind of node answers: a production
# node run on this machine with a development chain id (Besu tutorials use 1337) answers neither.
DEV_NODE_PROBES = (("anvil/", "anvil_nodeInfo"), ("hardhatnetwork/", "hardhat_metadata"))


class ChainConnection:
    """One node, reached over HTTP JSON-RPC."""

    def __init__(self, rpc_url: str, *, timeout: float = 30.0) -> None:
        self.rpc_url = rpc_url
        self.w3 = Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
        self.gas_log = GasLog()
        self._chain_id: int | None = None
        self._dev_chain: bool | None = None
        # eth_getLogs pages: the range the node last served (halved at each refusal, kept for the
        # next query) and each known contract's deployment block (no log of it lies before)
        self.log_range = FIRST_LOG_RANGE
        self.deployment_blocks: dict[str, int] = {}
        self.verified_manifests: set[str] = set()  # manifests whose code and wiring were verified here
        self._signers: list[Signer] = []

    @classmethod
    def connect(cls, rpc_url: str, *, timeout: float = 30.0) -> ChainConnection:
        """Connect and check that a node answers; :class:`RpcUnreachableError` names the URL if not."""
        conn = cls(rpc_url, timeout=timeout)
        conn.chain_id  # noqa: B018 - the first request proves the node answers
        return conn

    def request(self, method: str, params: list[Any] | None = None) -> Any:
        """A raw JSON-RPC request (for node-specific methods such as ``evm_snapshot``)."""
        try:
            response = self.w3.provider.make_request(method, params or [])  # type: ignore[arg-type]
        except (requests.ConnectionError, requests.Timeout, OSError) as exc:
            raise RpcUnreachableError(self.rpc_url, type(exc).__name__) from exc
        if "error" in response:
            raise ChainError(f"{method} failed at {self.display_url}: {scrub_urls(str(response['error']), self.rpc_url)}")
        return response.get("result")

    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            try:
                self._chain_id = int(self.w3.eth.chain_id)
            except (requests.ConnectionError, requests.Timeout, OSError) as exc:
                raise RpcUnreachableError(self.rpc_url, type(exc).__name__) from exc
            except Web3RPCError as exc:
                raise RpcUnreachableError(self.rpc_url, str(exc)) from exc
        return self._chain_id

    def get_logs(self, params: dict[str, Any], from_block: int, to_block: BlockIdentifier) -> list[Any]:
        """``eth_getLogs`` for ``params`` over ``from_block``..``to_block``, asked in pages: from the
        address's deployment block when known, in ranges the node accepts (halved on each refusal of
        a range or of a result too large, down to one block), in block order."""
        address = str(params.get("address", "")).lower()
        first = max(from_block, self.deployment_blocks.get(address, 0))
        if isinstance(to_block, int):
            last = to_block
        elif to_block == "latest":
            last = int(self.w3.eth.block_number)
        else:
            last = int(self.w3.eth.get_block(to_block)["number"])
        logs: list[Any] = []
        start = first
        while start <= last:
            end = min(last, start + self.log_range - 1)
            try:
                logs += self.w3.eth.get_logs({**params, "fromBlock": start, "toBlock": end})  # type: ignore[typeddict-item]
            except (requests.ConnectionError, requests.Timeout) as exc:
                raise RpcUnreachableError(self.rpc_url, type(exc).__name__) from exc
            except Exception as exc:
                if end == start or not is_log_range_refusal(exc):
                    raise
                self.log_range = max(1, (end - start + 1) // 2)
                continue
            start = end + 1
        return logs

    @property
    def display_url(self) -> str:
        """The RPC URL fit to print or write (no password, no API key)."""
        return redact_url(self.rpc_url)

    def client_version(self) -> str:
        return str(self.request("web3_clientVersion"))

    def is_local_dev_chain(self) -> bool:
        """True only for a development node (anvil, Hardhat: by its client version and a method only it
        answers) with a development chain id, served from this machine."""
        if self._dev_chain is None:
            self._dev_chain = (self.chain_id in DEV_CHAIN_IDS and is_loopback_url(self.rpc_url)
                               and self._is_dev_node())
        return self._dev_chain

    def _is_dev_node(self) -> bool:
        try:
            version = self.client_version().lower()
            for prefix, method in DEV_NODE_PROBES:
                if version.startswith(prefix):
                    self.request(method)
                    return True
        except ChainError:
            return False
        return False

    def register_signer(self, signer: Signer) -> None:
        if signer not in self._signers:
            self._signers.append(signer)

    # --- development-chain controls (anvil) -------------------------------------------------

    def snapshot(self) -> str:
        return str(self.request("evm_snapshot"))

    def revert(self, snapshot_id: str) -> None:
        """Go back to a snapshot; the signers' cached nonces are forgotten with it."""
        if not self.request("evm_revert", [snapshot_id]):
            raise ChainError(f"the node at {self.display_url} has no snapshot {snapshot_id}")
        for signer in self._signers:
            signer.forget_nonce()

    def increase_time(self, seconds: int) -> None:
        self.request("evm_increaseTime", [seconds])
        self.mine()

    def set_next_block_timestamp(self, timestamp: int) -> None:
        self.request("evm_setNextBlockTimestamp", [timestamp])

    def mine(self) -> None:
        self.request("evm_mine")

    def set_balance(self, address: str, wei: int) -> None:
        hardhat = self.client_version().lower().startswith("hardhatnetwork/")
        self.request("hardhat_setBalance" if hardhat else "anvil_setBalance", [address, hex(wei)])

    def latest_timestamp(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])
