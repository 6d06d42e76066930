"""ABI values: decoding that hands back checksummed addresses (eth_abi returns them lower-case), and
the base of the generated struct dataclasses with their conversion to and from ABI tuples."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from typing import Any, ClassVar, Self, cast

from eth_abi import decode
from eth_abi.grammar import ABIType, parse
from eth_utils import to_checksum_address


def _normalise(typ: ABIType, value: Any) -> Any:
    if typ.is_array:
        return [_normalise(typ.item_type, v) for v in value]
    if getattr(typ, "components", None):
        return tuple(_normalise(t, v) for t, v in zip(typ.components, value, strict=True))  # type: ignore[attr-defined]
    if getattr(typ, "base", None) == "address":
        return to_checksum_address(value)
    return value


def decode_values(types: Sequence[str], data: bytes) -> tuple[Any, ...]:
    """Decode ``data`` as ``types``; addresses come back in EIP-55 checksum form."""
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
