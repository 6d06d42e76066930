"""Column types for chain values that SQL integers cannot hold, and the columns every indexed row
carries: where on the chain its fact was logged."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Column, Integer, String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

HASH = 66  # "0x" and 32 bytes in hex
ADDRESS = 42
U64_WRAP = 1 << 64


class U64(TypeDecorator[int]):
    """A uint64 in a signed 64-bit column: values from 2**63 up (an offer's expiry "never") are kept as
    their two's complement and read back exactly; the smaller ones (ids, times) stay as they are, so
    filters and ordering on them work."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: int | None, dialect: Dialect) -> int | None:
        return None if value is None else (value - U64_WRAP if value >= U64_WRAP // 2 else value)

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        return None if value is None else (int(value) + U64_WRAP if int(value) < 0 else int(value))


class U256(TypeDecorator[int]):
    """A uint256 (token amounts, prices) as its decimal digits: exact on SQLite and PostgreSQL alike
    (SQLite's integers stop at 2**63, its NUMERIC at a double's precision)."""

    impl = String(78)
    cache_ok = True

    def process_bind_param(self, value: int | None, dialect: Dialect) -> str | None:
        return None if value is None else str(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        return None if value is None else int(value)


def position_columns(*, entries: bool) -> list[Column[Any]]:
    """Where a row's fact was logged: its block (the number, to roll back after a fork), the log's
    (block hash, tx hash, log index) as the key, and with ``entries`` the entry's place in a packed
    log (one ``OffersAccepted`` carries a batch of offers)."""
    columns: list[Column[Any]] = [
        Column("block_number", BigInteger, nullable=False, index=True),
        Column("block_hash", String(HASH), primary_key=True),
        Column("tx_hash", String(HASH), primary_key=True),
        Column("log_index", Integer, primary_key=True),
    ]
    if entries:
        columns.append(Column("entry", Integer, primary_key=True))
    return columns
