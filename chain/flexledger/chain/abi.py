"""ABI values: decoding that hands back checksummed addresses (eth_abi returns them lower-case), and
the base of the generated struct dataclasses with their conversion to and from ABI tuples."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from typing import Any, ClassVar, Self, cast

from eth_abi import decode
from eth_abi.grammar import ABIType, parse

from flexledger.addresses import checksum


def _normalise(typ: ABIType, value: Any) -> Any:
    if typ.is_array:
        return [_normalise(typ.item_type, v) for v in value]
    if getattr(typ, "components", None):
        return tuple(_normalise(t, v) for t, v in zip(typ.components, value, strict=True))  # type: ignore[attr-defined]
    if getattr(typ, "base", None) == "address":
        return checksum(value)
    return value


def _word(typ: str, word: bytes) -> Any:
    """One static elementary value from its 32-byte word, as eth_abi decodes it; :data:`NOT_A_WORD`
    for any other type, or a word eth_abi would refuse (it then decodes it, and raises)."""
    if "[" in typ or "(" in typ:
        return NOT_A_WORD
    if typ == "address":
        return checksum("0x" + word[12:].hex()) if not any(word[:12]) else NOT_A_WORD
    if typ.startswith("uint"):
        value = int.from_bytes(word, "big")
        return value if value >> int(typ[4:] or 256) == 0 else NOT_A_WORD
    if typ.startswith("int"):
        bits = int(typ[3:] or 256)
        value = int.from_bytes(word, "big", signed=True)
        return value if -(1 << (bits - 1)) <= value < 1 << (bits - 1) else NOT_A_WORD
    if typ == "bool":
        return word[31] == 1 if not any(word[:31]) and word[31] < 2 else NOT_A_WORD
    if typ.startswith("bytes") and typ != "bytes":
        size = int(typ[5:])
        return word[:size] if not any(word[size:]) else NOT_A_WORD
    return NOT_A_WORD


NOT_A_WORD = object()


def decode_values(types: Sequence[str], data: bytes) -> tuple[Any, ...]:
    """Decode ``data`` as ``types``; addresses come back in EIP-55 checksum form.

    Values that each fill one word (uint, int, address, bool, bytes1..32) are read straight from
    their words: an indexer decodes millions of them, and eth_abi's machinery costs more than the
    rest of a log's handling. Anything else, or a malformed word, goes through eth_abi."""
    if len(data) == 32 * len(types):
        fast = tuple(_word(t, data[32 * k:32 * k + 32]) for k, t in enumerate(types))
        if NOT_A_WORD not in fast:
            return fast
    values = decode(list(types), data)
    return tuple(_normalise(parse(t), v) for t, v in zip(types, values, strict=True))


class AbiStruct:
    """The base of the dataclasses generated for the contracts' structs (:mod:`flexledger.chain.structs`):
    each converts itself to the tuple the ABI encoder takes and back from the one the decoder gives."""

    __slots__ = ()
    ABI_TYPE: ClassVar[str] = ""

    def to_abi(self) -> tuple[Any, ...]:
        raise NotImplementedError

    @classmethod
    def from_abi(cls, raw: Sequence[Any]) -> Self:
        raise NotImplementedError

    @classmethod
    def like(cls, source: object) -> Self:
        """The struct made of ``source``'s attributes of the same names: the bridge from a domain object
        that mirrors the struct field for field (``flexledger.rules.orders.Offer``), which the pure
        rules cannot build from this chain-side type themselves."""
        names = [f.name for f in fields(cast(Any, cls))]  # every subclass is a dataclass
        return cls(**{name: getattr(source, name) for name in names})


def to_abi_value(value: Any) -> Any:
    """``value`` as the ABI encoder takes it: structs (also inside lists and tuples) become tuples."""
    if isinstance(value, AbiStruct):
        return value.to_abi()
    if isinstance(value, list | tuple):
        return [to_abi_value(v) for v in value] if isinstance(value, list) else tuple(to_abi_value(v) for v in value)
    return value
