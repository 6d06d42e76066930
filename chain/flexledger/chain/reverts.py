"""Turning revert data into typed Python exceptions, by selector, never by string matching."""

from __future__ import annotations

from typing import Any

from web3.exceptions import ContractLogicError

from .abi import decode_values as decode
from .errors import (
    ContractCustomError,
    ContractRevertError,
    PanicError,
    RevertReasonError,
    UnknownRevertError,
)

ERROR_STRING = bytes.fromhex("08c379a0")  # Error(string)
PANIC = bytes.fromhex("4e487b71")  # Panic(uint256)


def _registry() -> dict[bytes, type[ContractCustomError]]:
    try:
        from .revert_errors import BY_SELECTOR
    except ImportError:  # before the first compile nothing is generated yet
        return {}
    table: dict[bytes, type[ContractCustomError]] = BY_SELECTOR
    return table


def decode_revert(data: bytes, *, contract: str | None = None, function: str | None = None) -> ContractRevertError:
    """The exception that revert ``data`` stands for."""
    context: dict[str, Any] = {"data": data, "contract": contract, "function": function}
    head, body = data[:4], data[4:]
    if head == ERROR_STRING:
        (reason,) = decode(["string"], body)
        return RevertReasonError(reason, **context)
    if head == PANIC:
        (code,) = decode(["uint256"], body)
        return PanicError(code, **context)
    cls = _registry().get(head)
    if cls is not None:
        try:
            values = decode(list(cls.ARG_TYPES), body)
        except Exception:  # malformed data under a known selector: keep it, say so
            return UnknownRevertError(f"revert data for {cls.SIGNATURE} does not decode: 0x{data.hex()}", **context)
        return cls(*values, **context)
    where = f"{contract}.{function}" if contract and function else "the call"
    if not data:
        return UnknownRevertError(f"{where} reverted without data (out of gas, or a require without message)", **context)
    return UnknownRevertError(f"{where} reverted with unknown error data 0x{data.hex()}", **context)


def revert_data(exc: ContractLogicError) -> bytes:
    """The raw revert bytes inside a web3 exception (they arrive as a hex string)."""
    raw: Any = exc.data
    if isinstance(raw, dict):
        raw = raw.get("data", "")
    if isinstance(raw, bytes):
        return raw
    if isinstance(raw, str) and raw.startswith("0x"):
        try:
            return bytes.fromhex(raw[2:])
        except ValueError:
            return b""
    return b""
