"""ABI decoding that hands back checksummed addresses (eth_abi returns them lower-case)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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
