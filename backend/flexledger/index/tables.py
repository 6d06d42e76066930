"""The indexer's tables: the blocks it read, its checkpoint, every log decoded (``events``), and typed
tables for what the API serves.

Every row is a fact one log states, keyed by where it was logged (block hash, tx hash, log index,
and the entry in a packed log) and never updated afterwards: a later event that changes an entity
(a request cancelled, an asset mapped) is a row of its own. So rolling back a fork is deleting the
rows of the blocks after it, and an incremental run and a rebuild write the same rows.

Most typed tables take one event each, a column per argument (a struct argument spread into its
fields), their columns read from the contracts' ABIs (``EVENT_TABLES``); the migration states them,
and a test holds it to this metadata, so an ABI change that alters a table needs a migration. The
packed and nested events (offers, awards, lights, settlement lines) have tables written out here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Column, Index, Integer, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeEngine

from flexledger.chain.codegen import snake
from flexledger.chain.events import EventAbi, events_by_topic
from flexledger.database.engine import Base

from .columns import ADDRESS, HASH, U64, U256, position_columns


class Block(Base):
    """A block that holds an indexed log: its hash and parent, to find where a fork left the chain."""

    __tablename__ = "blocks"

    number: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(String(HASH), unique=True)
    parent_hash: Mapped[str] = mapped_column(String(HASH))
    timestamp: Mapped[int] = mapped_column(BigInteger)


class Checkpoint(Base):
    """The last block read (one row): a restart resumes after it, and its hash tells whether the
    chain still holds it."""

    __tablename__ = "checkpoint"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(HASH))


events = Table(
    "events", Base.metadata,
    *position_columns(entries=False),
    Column("contract", String(64), nullable=False),
    Column("address", String(ADDRESS), nullable=False),
    Column("name", String(64), nullable=False, index=True),
    Column("args", JSON, nullable=False),
)


def column_type(abi_type: str) -> TypeEngine[Any]:
    """The SQL type of an ABI value: exact for every width (see :mod:`.columns`)."""
    if abi_type.endswith("]") or abi_type.startswith("("):
        return JSON()
    if abi_type == "address":
        return String(ADDRESS)
    if abi_type == "bool":
        return Boolean()
    if abi_type == "bytes32":
        return String(HASH)
    if abi_type in ("bytes", "string"):
        return Text()
    bits = int(abi_type.removeprefix("u").removeprefix("int") or 256)
    if abi_type.startswith("int"):
        return Integer() if bits <= 32 else BigInteger() if bits <= 64 else U256()
    return Integer() if bits <= 16 else BigInteger() if bits <= 32 else U64() if bits <= 64 else U256()


@dataclass(frozen=True)
class EventTable:
    """A typed table with one row per log of one event: ``columns`` maps each column to its argument,
    and to the struct field when the argument is a struct."""

    table: Table
    contract: str
    event: str
    columns: tuple[tuple[str, str, str | None], ...]  # (column, argument, struct field or None)


def _event_abi(contract: str, name: str) -> EventAbi:
    found = [e for e in events_by_topic().values() if e.name == name and e.contract == contract]
    if len(found) != 1:
        raise KeyError(f"{contract} declares {len(found)} events called {name}")
    return found[0]


def _event_table(table: str, contract: str, event: str) -> EventTable:
    columns: list[Column[Any]] = []
    mapping: list[tuple[str, str, str | None]] = []
    for param in _event_abi(contract, event).inputs:
        if param["type"] == "tuple":  # a struct: its fields, a name the event already has kept once
            for field in param["components"]:
                name = snake(field["name"])
                if name not in {c for c, _, _ in mapping}:
                    columns.append(Column(name, column_type(field["type"])))
                    mapping.append((name, param["name"], name))
        else:
            name = snake(param["name"])
            columns.append(Column(name, column_type(param["type"])))
            mapping.append((name, param["name"], None))
    return EventTable(Table(table, Base.metadata, *position_columns(entries=False), *columns), contract, event,
                      tuple(mapping))


# table, contract, event: what the API serves of each contract, one event a table
EVENT_TABLES = tuple(_event_table(*spec) for spec in (
    ("markets", "MarketRegistry", "MarketCreated"),
    ("dispatchers", "MarketRegistry", "DispatcherSet"),
    ("zones", "GridZones", "ZoneAdded"),
    ("assets", "AssetRegistry", "AssetRegistered"),
    ("asset_mappings", "AssetRegistry", "AssetMapped"),
    ("portfolios", "AssetRegistry", "PortfolioCreated"),
    ("credentials", "RoleRegistry", "CredentialIssued"),
    ("credential_revocations", "RoleRegistry", "CredentialRevoked"),
    ("requests", "OrderBook", "RequestPosted"),
    ("request_cancellations", "OrderBook", "RequestCancelled"),
    ("escrow_payments", "OrderBook", "EscrowPaid"),
    ("offer_skips", "OrderBook", "OfferSkipped"),
    ("clearing_results", "ClearingCommitment", "ResultOpened"),
    ("result_closures", "ClearingCommitment", "ResultClosed"),
    ("result_challenges", "ClearingCommitment", "ResultVoided"),
    ("day_finalisations", "ClearingCommitment", "DayFinalised"),
    ("anchored_roots", "MeterOracle", "RootAnchored"),
    ("anchored_baselines", "MeterOracle", "BaselinesAnchored"),
    ("settlement_finals", "Settlement", "SettlementFinalised"),
    ("refunds", "Settlement", "Refunded"),
    ("withdrawals", "Settlement", "Withdrawn"),
    ("reading_disputes", "ReadingDisputes", "ReadingDisputed"),
    ("meter_equivocations", "ReadingDisputes", "MeterEquivocated"),
    ("baseline_disputes", "BaselineDisputes", "BaselineDisputed"),
    ("omission_claims", "OmissionClaims", "OmissionClaimed"),
    ("token_transfers", "SettlementToken", "Transfer"),
))

# An OffersAccepted entry: the seller, the offer field for field, its EIP-712 digest (how every
# later event names it) and the day's run it came in.
offers = Table(
    "offers", Base.metadata,
    *position_columns(entries=True),
    Column("digest", String(HASH), nullable=False, index=True),
    Column("seller", String(ADDRESS), nullable=False),
    Column("day_start", U64, nullable=False),
    Column("market", BigInteger, nullable=False),
    Column("asset", U64, nullable=False),
    Column("portfolio", BigInteger, nullable=False),
    Column("start", U64, nullable=False),
    Column("isps", Integer, nullable=False),
    Column("direction", Integer, nullable=False),
    Column("power_w", BigInteger, nullable=False),
    Column("price", U256, nullable=False),
    Column("mode", Integer, nullable=False),
    Column("min_power_w", BigInteger, nullable=False),
    Column("baseline_method", Integer, nullable=False),
    Column("baseline", String(HASH), nullable=False),
    Column("expiry", U64, nullable=False),
    Column("nonce", BigInteger, nullable=False),
    Index("ix_offers_subject", "market", "asset", "portfolio"),  # an asset's or portfolio's offers
)

# An OfferAwarded entry: one (request, ISP, power) of an offer's award in a clearing result.
awards = Table(
    "awards", Base.metadata,
    *position_columns(entries=True),
    Column("result_id", U64, nullable=False, index=True),
    Column("seller", String(ADDRESS), nullable=False),
    Column("offer_digest", String(HASH), nullable=False, index=True),
    Column("request_id", U64, nullable=False),
    Column("isp_start", U64, nullable=False),
    Column("power_w", BigInteger, nullable=False),
)

# One ISP's light of a zone: a static light (market 0, ISP 0), a dynamic one, or one of a day's
# published lights (DayLightsPublished, unpacked per zone, hour and ISP).
lights = Table(
    "lights", Base.metadata,
    *position_columns(entries=True),
    Column("market_id", BigInteger, nullable=False),
    Column("zone_id", BigInteger, nullable=False, index=True),
    Column("isp_start", U64, nullable=False),
    Column("direction", Integer, nullable=False),
    Column("colour", Integer, nullable=False),
    Column("capability_w", BigInteger, nullable=False),
)

# An OfferSettled record's line: what one ISP of one request paid and claimed.
settlements = Table(
    "settlements", Base.metadata,
    *position_columns(entries=True),
    Column("offer_digest", String(HASH), nullable=False, index=True),
    Column("result_id", U64, nullable=False),
    Column("seller", String(ADDRESS), nullable=False),
    Column("settled_at", U64, nullable=False),
    Column("request_id", U64, nullable=False),
    Column("isp_start", U64, nullable=False),
    Column("payment", U256, nullable=False),
    Column("claim", U256, nullable=False),
    Column("uncovered", U256, nullable=False),
)

# An offer replaced (rule 3) by a newer one of the same asset or portfolio whose window overlaps it:
# a fact of the newer offer's log, so keyed by its place, one row per offer it replaced.
offer_replacements = Table(
    "offer_replacements", Base.metadata,
    *position_columns(entries=True),
    Column("replaced_digest", String(HASH), primary_key=True),
    Column("by_digest", String(HASH), nullable=False, index=True),
)

# Every table whose rows come from logs, in the order a rollback or a rebuild empties them.
LOG_TABLES: tuple[Table, ...] = (events, *(t.table for t in EVENT_TABLES), offers, offer_replacements, awards,
                                 lights, settlements)
