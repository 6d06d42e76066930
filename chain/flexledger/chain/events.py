"""Decoding event logs with the ABIs of every compiled contract (a struct argument becomes its
generated dataclass, :mod:`flexledger.chain.structs`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from eth_utils import keccak

from flexledger.addresses import checksum

from .abi import decode_values as decode
from .artifacts import all_artifacts
from .codegen import canonical_type
from .struct_codegen import struct_key


@dataclass(frozen=True)
class DecodedEvent:
    """One log, decoded: which event, its arguments by name, and where it was emitted."""

    contract: str
    name: str
    args: dict[str, Any]
    address: str
    block_number: int
    tx_hash: str
    log_index: int


@dataclass(frozen=True)
class EventAbi:
    contract: str
    name: str
    inputs: tuple[dict[str, Any], ...]

    @property
    def signature(self) -> str:
        return f"{self.name}(" + ",".join(canonical_type(p) for p in self.inputs) + ")"

    @property
    def topic(self) -> bytes:
        return keccak(text=self.signature)


@cache
def events_by_topic() -> dict[bytes, EventAbi]:
    table: dict[bytes, EventAbi] = {}
    for artifact in all_artifacts().values():
        for item in artifact.abi:
            if item["type"] == "event" and not item.get("anonymous"):
                event = EventAbi(artifact.name, item["name"], tuple(item["inputs"]))
                table.setdefault(event.topic, event)
    return table


def event_topic(contract: str, name: str) -> bytes:
    for topic, event in events_by_topic().items():
        if event.name == name and event.contract == contract:
            return topic
    for topic, event in events_by_topic().items():  # declared in a base contract
        if event.name == name:
            return topic
    raise KeyError(f"no event {name} in the ABI of {contract}")


def _hex(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    return str(value) if str(value).startswith("0x") else "0x" + str(value)


def _int(value: Any) -> int:
    return int(value, 16) if isinstance(value, str) else int(value)


def _typed(param: dict[str, Any], value: Any) -> Any:
    """A struct argument as its generated dataclass (an array of them as a list); others as decoded."""
    key = struct_key(param)
    if key is None:
        return value
    from .structs import BY_INTERNAL_TYPE  # generated: absent before the first compile

    cls = BY_INTERNAL_TYPE["struct " + key]
    return [cls.from_abi(v) for v in value] if param["type"].endswith("]") else cls.from_abi(value)


def decode_log(log: Mapping[str, Any], names: Mapping[str, str] | None = None) -> DecodedEvent | None:
    """Decode one log; ``None`` for a log no known ABI describes.

    ``names`` maps lower-case addresses to contract names, to report which deployment emitted it.
    """
    topics = [bytes.fromhex(t[2:]) if isinstance(t, str) else bytes(t) for t in log["topics"]]  # raw or web3's
    if not topics:
        return None
    event = events_by_topic().get(topics[0])
    if event is None:
        return None
    indexed = [p for p in event.inputs if p.get("indexed")]
    plain = [p for p in event.inputs if not p.get("indexed")]
    args: dict[str, Any] = {}
    for param, topic in zip(indexed, topics[1:], strict=False):
        typ = canonical_type(param)
        if typ in ("string", "bytes") or typ.endswith("]") or typ.startswith("("):
            args[param["name"]] = topic  # dynamic values are indexed by their hash only
        else:
            (args[param["name"]],) = decode([typ], topic)
    data = log["data"]
    raw = bytes.fromhex(data[2:]) if isinstance(data, str) else bytes(data)
    values = decode([canonical_type(p) for p in plain], raw)
    for param, value in zip(plain, values, strict=True):
        args[param["name"]] = _typed(param, value)
    address = checksum(log["address"])
    contract = (names or {}).get(address.lower(), event.contract)
    return DecodedEvent(
        contract=contract,
        name=event.name,
        args=args,
        address=address,
        block_number=_int(log["blockNumber"]),
        tx_hash=_hex(log["transactionHash"]),
        log_index=_int(log["logIndex"]),
    )


def decode_logs(logs: Iterable[Mapping[str, Any]], names: Mapping[str, str] | None = None) -> list[DecodedEvent]:
    return [e for e in (decode_log(log, names) for log in logs) if e is not None]
