"""What the agent asks the chain about an order, over plain JSON-RPC ``eth_call`` (no web3).

Only views are called, at a configurable block tag (``finalized`` where the node supports it):
the market's dispatcher and the registry's EIP-712 domain (ERC-5267), the offer's digest, a
result's day and finality, an award's Merkle proof, and, for a portfolio offer, the portfolio's
members at the day's gate closure.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any, Protocol

from eth_abi import decode, encode
from eth_utils import keccak, to_checksum_address

from .activation import OFFER_FIELDS, AwardProof, RegistryDomain

_OFFER_TUPLE = "(" + ",".join(kind for _, kind in OFFER_FIELDS) + ")"
_PROOF_TUPLE = "(uint32,uint64,uint64,uint32,uint32,bytes32[])"


class ChainUnavailableError(Exception):
    """The chain endpoint did not answer; an order cannot be judged now (it is not remembered)."""


class ChainView(Protocol):
    """The chain's answers the order check needs."""

    def registry_domain(self) -> RegistryDomain: ...

    def dispatcher(self, market: int) -> str: ...

    def offer_digest(self, offer: tuple[int | bytes, ...]) -> bytes: ...

    def result_day(self, result_id: int) -> tuple[int, int, bool]: ...

    def is_awarded(self, result_id: int, offer_digest: bytes, award: AwardProof) -> bool: ...

    def portfolio_members(self, market: int, portfolio: int, day_time: int) -> list[int]: ...


def _selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


class JsonRpcChain:
    """:class:`ChainView` over an EVM JSON-RPC endpoint."""

    def __init__(self, url: str, *, market_registry: str, clearing_commitment: str, asset_registry: str | None,
                 block_tag: str = "latest", timeout_s: float = 10.0, dispatcher_ttl_s: float = 60.0) -> None:
        self.url = url
        self.market_registry = to_checksum_address(market_registry)
        self.clearing_commitment = to_checksum_address(clearing_commitment)
        self.asset_registry = to_checksum_address(asset_registry) if asset_registry else None
        self.block_tag = block_tag
        self.timeout_s = timeout_s
        self._domain: RegistryDomain | None = None
        self._dispatchers: dict[int, tuple[float, str]] = {}
        self.dispatcher_ttl_s = dispatcher_ttl_s
        self._id = 0

    def _rpc(self, method: str, params: list[Any]) -> Any:
        self._id += 1
        body = json.dumps({"jsonrpc": "2.0", "id": self._id, "method": method, "params": params}).encode()
        request = urllib.request.Request(self.url, body, {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                answer = json.loads(response.read())
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise ChainUnavailableError(f"the chain endpoint did not answer: {exc}") from exc
        if not isinstance(answer, dict) or "error" in answer:
            raise ChainUnavailableError(f"the chain endpoint refused {method}: {answer.get('error') if isinstance(answer, dict) else answer}")
        return answer.get("result")

    def _call(self, to: str, signature: str, types: list[str], args: list[Any], returns: list[str]) -> tuple[Any, ...]:
        data = _selector(signature) + encode(types, args)
        raw = self._rpc("eth_call", [{"to": to, "data": "0x" + data.hex()}, self.block_tag])
        try:
            return tuple(decode(returns, bytes.fromhex(str(raw)[2:])))
        except Exception as exc:  # a contract without the function answers 0x
            raise ChainUnavailableError(f"{to} gave no answer to {signature}: {raw!r}") from exc

    def registry_domain(self) -> RegistryDomain:
        if self._domain is None:
            fields = self._call(self.market_registry, "eip712Domain()", [], [],
                                ["bytes1", "string", "string", "uint256", "address", "bytes32", "uint256[]"])
            self._domain = RegistryDomain(int(fields[3]), to_checksum_address(fields[4]))
        return self._domain

    def dispatcher(self, market: int) -> str:
        # Kept a minute: a flood of forged orders then costs the node nothing; a rotation holds within it.
        cached = self._dispatchers.get(market)
        if cached is not None and time.monotonic() - cached[0] < self.dispatcher_ttl_s:
            return cached[1]
        address = to_checksum_address(self._call(self.market_registry, "dispatcher(uint32)", ["uint32"], [market],
                                                 ["address"])[0])
        self._dispatchers[market] = (time.monotonic(), address)
        return address

    def offer_digest(self, offer: tuple[int | bytes, ...]) -> bytes:
        signature = f"offerDigest({_OFFER_TUPLE})"
        return bytes(self._call(self.clearing_commitment, signature, [_OFFER_TUPLE], [offer], ["bytes32"])[0])

    def result_day(self, result_id: int) -> tuple[int, int, bool]:
        market, day, final = self._call(self.clearing_commitment, "resultDay(uint64)", ["uint64"], [result_id],
                                        ["uint32", "uint64", "bool"])
        return int(market), int(day), bool(final)

    def is_awarded(self, result_id: int, offer_digest: bytes, award: AwardProof) -> bool:
        proof = (award.chunk, award.request_id, award.isp_start, award.power_w, award.level_w, list(award.proof))
        signature = f"isAwarded(uint64,bytes32,{_PROOF_TUPLE})"
        return bool(self._call(self.clearing_commitment, signature, ["uint64", "bytes32", _PROOF_TUPLE],
                               [result_id, offer_digest, proof], ["bool"])[0])

    def portfolio_members(self, market: int, portfolio: int, day_time: int) -> list[int]:
        if self.asset_registry is None:
            return []
        closure = int(self._call(self.market_registry, "gateClosure(uint32,uint64)", ["uint32", "uint64"],
                                 [market, day_time], ["uint64"])[0])
        members = self._call(self.asset_registry, "membersAt(uint32,uint64)", ["uint32", "uint64"],
                             [portfolio, closure], ["uint64[]"])[0]
        return [int(m) for m in members]
