"""A connection to one EVM node: web3.py underneath, flexledger's errors and gas record on top."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import requests
from web3 import HTTPProvider, Web3
from web3.exceptions import Web3RPCError

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
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ChainConnection:
    """One node, reached over HTTP JSON-RPC."""

    def __init__(self, rpc_url: str, *, timeout: float = 30.0) -> None:
        self.rpc_url = rpc_url
        self.w3 = Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
        self.gas_log = GasLog()
        self._chain_id: int | None = None
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

    @property
    def display_url(self) -> str:
        """The RPC URL fit to print or write (no password, no API key)."""
        return redact_url(self.rpc_url)

    def client_version(self) -> str:
        return str(self.request("web3_clientVersion"))

    def is_local_dev_chain(self) -> bool:
        """True only for a development chain id served from this machine."""
        return self.chain_id in DEV_CHAIN_IDS and is_loopback_url(self.rpc_url)

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

    def latest_timestamp(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])
