"""The base of the typed contract clients generated into :mod:`flexledger.chain.bindings`."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar, Literal

from eth_abi import encode
from eth_utils import to_checksum_address
from hexbytes import HexBytes
from web3.exceptions import ContractLogicError, TimeExhausted

from .abi import decode_values as decode
from .abi import to_abi_value
from .artifacts import Artifact, load_artifact
from .codegen import canonical_type, selector, signature
from .connection import ChainConnection, GasRecord
from .errors import ChainError, ContractRevertError, TransactionError
from .events import DecodedEvent, decode_logs, event_topic
from .reverts import decode_revert, revert_data
from .transactions import Signer

BlockId = int | Literal["latest", "pending", "safe", "finalized", "earliest"]

GAS_MARGIN = 1.2  # estimates are exact on anvil; other nodes and state races want headroom
RECEIPT_TIMEOUT = 120.0


@dataclass(frozen=True)
class _Function:
    signature: str
    selector: bytes
    inputs: list[str]
    outputs: list[str]
    name: str


@dataclass
class TxResult:
    """A sent transaction; with ``wait=True`` it is mined and its events are decoded."""

    tx_hash: str
    contract: str
    function: str
    gas_used: int | None = None
    block_number: int | None = None
    events: list[DecodedEvent] = field(default_factory=list)

    def event(self, name: str) -> DecodedEvent:
        """The only event called ``name`` (``KeyError`` if none or several)."""
        found = [e for e in self.events if e.name == name]
        if len(found) != 1:
            raise KeyError(f"{len(found)} {name} events in {self.tx_hash}")
        return found[0]


class ContractClient:
    """One deployed contract on one connection."""

    CONTRACT: ClassVar[str] = ""

    def __init__(self, conn: ChainConnection, address: str, *, signer: Signer | None = None) -> None:
        self.conn = conn
        self.address = to_checksum_address(address)
        self.signer = signer

    @cached_property
    def artifact(self) -> Artifact:
        return load_artifact(self.CONTRACT)

    @cached_property
    def _functions(self) -> dict[str, _Function]:
        table = {}
        for item in self.artifact.abi:
            if item["type"] == "function":
                sig = signature(item)
                table[sig] = _Function(
                    sig,
                    selector(sig),
                    [canonical_type(p) for p in item["inputs"]],
                    [canonical_type(p) for p in item["outputs"]],
                    item["name"],
                )
        return table

    def with_signer(self, signer: Signer) -> ContractClient:
        return type(self)(self.conn, self.address, signer=signer)

    def encode(self, sig: str, *args: Any) -> bytes:
        fn = self._functions[sig]
        return fn.selector + encode(fn.inputs, [to_abi_value(a) for a in args])

    def _call(self, sig: str, *args: Any, block: BlockId = "latest", sender: str | None = None) -> Any:
        fn = self._functions[sig]
        tx: dict[str, Any] = {"to": self.address, "data": self.encode(sig, *args)}
        if sender:
            tx["from"] = sender
        try:
            raw = self.conn.w3.eth.call(tx, block)  # type: ignore[arg-type]
        except ContractLogicError as exc:
            raise decode_revert(revert_data(exc), contract=self.CONTRACT, function=fn.name) from None
        values = decode(fn.outputs, bytes(raw))
        if len(values) == 1:
            return values[0]
        return tuple(values) if values else None

    def call_many(self, sig: str, calls: list[tuple[Any, ...]], *, block: BlockId = "latest",
                  chunk: int = 500) -> list[Any]:
        """The view ``sig`` called with each of ``calls``, in JSON-RPC batches of ``chunk`` (one HTTP
        round trip each instead of one per call: an auditor reads hundreds of parties). A call the
        node answers with an error is made again on its own, so its revert is raised as it would be."""
        fn = self._functions[sig]
        tag = block if isinstance(block, str) else hex(block)
        out: list[Any] = []
        for first in range(0, len(calls), chunk):
            part = calls[first:first + chunk]
            requests = [("eth_call", [{"to": self.address, "data": "0x" + self.encode(sig, *args).hex()}, tag])
                        for args in part]
            responses = self.conn.w3.provider.make_batch_request(requests)  # type: ignore[attr-defined]
            if not isinstance(responses, list):  # the node refused the batch itself
                responses = [{"error": responses}] * len(part)
            for args, response in zip(part, responses, strict=True):
                if "error" in response or response.get("result") is None:
                    out.append(self._call(sig, *args, block=block))
                    continue
                values = decode(fn.outputs, bytes(HexBytes(response["result"])))
                out.append(values[0] if len(values) == 1 else (tuple(values) if values else None))
        return out

    def estimate_gas(self, sig: str, *args: Any, sender: Signer | None = None, value: int = 0) -> int:
        signer = self._signer(sender)
        fn = self._functions[sig]
        tx = {"from": signer.address, "to": self.address, "data": self.encode(sig, *args), "value": value}
        try:
            return int(self.conn.w3.eth.estimate_gas(tx))  # type: ignore[arg-type]
        except ContractLogicError as exc:
            raise decode_revert(revert_data(exc), contract=self.CONTRACT, function=fn.name) from None

    def _signer(self, sender: Signer | None) -> Signer:
        signer = sender or self.signer
        if signer is None:
            raise TransactionError(
                f"{self.CONTRACT}: no key to send the transaction with",
                hint="pass sender=... or build the client with a signer",
            )
        return signer

    def _transact(
        self, sig: str, *args: Any, sender: Signer | None = None, wait: bool = True, gas: int | None = None, value: int = 0
    ) -> TxResult:
        signer = self._signer(sender)
        fn = self._functions[sig]
        data = self.encode(sig, *args)
        if gas is None:
            gas = int(self.estimate_gas(sig, *args, sender=signer, value=value) * GAS_MARGIN)
        tx_hash = signer.send(self.address, data, gas=gas, value=value)
        result = TxResult(tx_hash="0x" + tx_hash.hex().removeprefix("0x"), contract=self.CONTRACT, function=fn.name)
        if wait:
            wait_for(self.conn, result, signer=signer, data=data, value=value)
        return result

    def events(
        self, name: str, *, from_block: int = 0, to_block: BlockId = "latest", topics: list[Any] | None = None
    ) -> list[DecodedEvent]:
        """Every ``name`` event this contract emitted in the block range."""
        topic0 = "0x" + event_topic(self.CONTRACT, name).hex()
        logs = self.conn.get_logs({"address": self.address, "topics": [topic0, *(topics or [])]}, from_block,
                                  to_block)
        return decode_logs(logs, {self.address.lower(): self.CONTRACT})


def wait_for(
    conn: ChainConnection, result: TxResult, *, signer: Signer | None = None, data: bytes = b"", value: int = 0,
    timeout: float = RECEIPT_TIMEOUT,
) -> TxResult:
    """Wait until ``result`` is mined; fill in gas, block and events; raise the revert if it failed."""
    try:
        receipt = conn.w3.eth.wait_for_transaction_receipt(HexBytes(result.tx_hash), timeout=timeout, poll_latency=0.05)
    except TimeExhausted as exc:
        raise TransactionError(
            f"{result.contract}.{result.function}: {result.tx_hash} was not mined within {timeout:.0f} s",
            hint="check that the node is mining and that the fee is high enough",
        ) from exc
    result.gas_used = int(receipt["gasUsed"])
    result.block_number = int(receipt["blockNumber"])
    if receipt["status"] != 1:
        raise _mined_revert(conn, result, receipt, signer, data, value)
    result.events = decode_logs(receipt["logs"])
    conn.gas_log.add(GasRecord(result.contract, result.function, result.gas_used, result.tx_hash, result.block_number))
    return result


def _mined_revert(
    conn: ChainConnection, result: TxResult, receipt: Any, signer: Signer | None, data: bytes, value: int
) -> ChainError:
    """Replay a failed transaction as a call to learn why it reverted.

    First on its own block (same timestamp; a reverted transaction left the state as it was, exact
    when it was alone in the block), then on the parent block's state.
    """
    if signer is not None and data:
        tx = {"from": signer.address, "to": receipt["to"], "data": data, "value": value}
        for block in (int(receipt["blockNumber"]), int(receipt["blockNumber"]) - 1):
            try:
                conn.w3.eth.call(tx, block)  # type: ignore[arg-type]
            except ContractLogicError as exc:
                return decode_revert(revert_data(exc), contract=result.contract, function=result.function)
    return ContractRevertError(
        f"{result.contract}.{result.function}: transaction {result.tx_hash} reverted "
        f"(gas used {receipt['gasUsed']} of its limit)",
        contract=result.contract,
        function=result.function,
    )


def wait_all(conn: ChainConnection, results: list[TxResult], *, timeout: float = RECEIPT_TIMEOUT) -> list[TxResult]:
    """Wait for transactions sent with ``wait=False`` (in order); the first failure raises."""
    for result in results:
        wait_for(conn, result, timeout=timeout)
    return results
