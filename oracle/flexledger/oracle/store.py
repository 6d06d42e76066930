"""The oracle's store (SQLAlchemy 2): readings, one per meter and ISP, the conflicting signed
readings kept as evidence, the messages quarantined, their anchors, the standard baselines
anchored for settlement, and the count of readings refused per reason. SQLite by default,
PostgreSQL by URL.

A store serves one market: its readings carry no market (a meter signs for none), so the
anchored/late marks on them are that market's. ``bind_market`` records the market on first use
and refuses another. ``open_store`` brings a store written by an earlier version up to date
(``_migrate``): there are no Alembic migrations, the schema changes in place, once."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Dialect,
    Index,
    Integer,
    LargeBinary,
    String,
    TypeDecorator,
    create_engine,
    func,
    inspect,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from flexledger.errors import ConfigurationError

from .readings import UINT64, Reading

log = logging.getLogger(__name__)
INT64 = 2**63


class UInt64(TypeDecorator[int]):
    """A uint64 (what a meter signs) in a signed BIGINT column: values of 2^63 and above are
    stored as their two's complement, so every legal value fits on SQLite and PostgreSQL alike and
    every value an earlier version stored (all below 2^63) reads back unchanged. Comparisons in SQL
    order such values below zero: the store compares ISP starts only, which the verifier bounds."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: int | None, dialect: Dialect) -> int | None:
        if value is None:
            return None
        if not 0 <= value < UINT64:
            raise ValueError(f"{value} is not a uint64")
        return value - UINT64 if value >= INT64 else value

    def process_result_value(self, value: int | None, dialect: Dialect) -> int | None:
        if value is None:
            return None
        return value + UINT64 if value < 0 else value


class Base(DeclarativeBase):
    pass


class StoredReading(Base):
    """A verified reading: the first one kept of its meter and ISP, the only one that can go into
    the ISP's root. ``sequence`` is informative (it restarts when a gateway loses its outbox)."""

    __tablename__ = "readings"
    meter: Mapped[str] = mapped_column(String(42), primary_key=True)
    isp_start: Mapped[int] = mapped_column(UInt64, primary_key=True)
    sequence: Mapped[int] = mapped_column(UInt64)
    import_wh: Mapped[int] = mapped_column(UInt64)
    export_wh: Mapped[int] = mapped_column(UInt64)
    signature: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[int] = mapped_column(BigInteger)
    late: Mapped[bool] = mapped_column(Boolean, default=False)  # arrived after its ISP was anchored
    anchored: Mapped[bool] = mapped_column(Boolean, default=False)
    __table_args__ = (Index("ix_readings_isp", "isp_start"),)

    def reading(self) -> Reading:
        return Reading(self.meter, self.isp_start, self.sequence, self.import_wh, self.export_wh)


class ConflictingReading(Base):
    """A signed reading of a meter and ISP that differs from the one kept (other energies or another
    sequence): the meter signed two things for one ISP. Kept once each, as evidence; in no root."""

    __tablename__ = "reading_conflicts"
    meter: Mapped[str] = mapped_column(String(42), primary_key=True)
    isp_start: Mapped[int] = mapped_column(UInt64, primary_key=True)
    sequence: Mapped[int] = mapped_column(UInt64, primary_key=True)
    import_wh: Mapped[int] = mapped_column(UInt64, primary_key=True)
    export_wh: Mapped[int] = mapped_column(UInt64, primary_key=True)
    signature: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[int] = mapped_column(BigInteger)

    def reading(self) -> Reading:
        return Reading(self.meter, self.isp_start, self.sequence, self.import_wh, self.export_wh)


class QuarantinedMessage(Base):
    """A message that could not be stored even alone (the error says why): kept aside, counted as
    ``quarantined`` and acknowledged, so that it never holds up the messages after it."""

    __tablename__ = "quarantine"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    received_at: Mapped[int] = mapped_column(BigInteger)
    error: Mapped[str] = mapped_column(String(200))
    payload: Mapped[bytes] = mapped_column(LargeBinary)


PENDING, CONFIRMED, FOREIGN = "pending", "confirmed", "foreign"


class StoredAnchor(Base):
    """An ISP's anchor. ``pending`` from its transaction until it is deep enough in the chain (or
    final); ``confirmed`` then; ``foreign`` when another oracle anchored a different root first (the
    fields are the chain's: this store's readings of the ISP cannot be proven against it)."""

    __tablename__ = "anchors"
    market: Mapped[int] = mapped_column(Integer, primary_key=True)
    isp_start: Mapped[int] = mapped_column(UInt64, primary_key=True)
    root: Mapped[bytes] = mapped_column(LargeBinary)
    leaf_count: Mapped[int] = mapped_column(Integer)
    oracle: Mapped[str] = mapped_column(String(42))
    anchored_at: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str] = mapped_column(String(66))
    status: Mapped[str] = mapped_column(String(16), default=CONFIRMED, server_default=CONFIRMED)
    block_number: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class StoredBaseline(Base):
    """A meter's standard (ROLLING_AVERAGE) baseline for an ISP, as anchored in the ISP's baselines root."""

    __tablename__ = "standard_baselines"
    market: Mapped[int] = mapped_column(Integer, primary_key=True)
    isp_start: Mapped[int] = mapped_column(UInt64, primary_key=True)
    meter: Mapped[str] = mapped_column(String(42), primary_key=True)
    baseline_wh: Mapped[int] = mapped_column(BigInteger)
    # its inputs (flexledger.rules.baselines.BaselineInputs), committed in the leaf: the days used
    # as a bit set of days back, and their net consumption, comma-separated, most recent first
    days_back: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    nets: Mapped[str] = mapped_column(String(240), default="", server_default="")


class StoredBaselineAnchor(Base):
    __tablename__ = "baseline_anchors"
    market: Mapped[int] = mapped_column(Integer, primary_key=True)
    isp_start: Mapped[int] = mapped_column(UInt64, primary_key=True)
    root: Mapped[bytes] = mapped_column(LargeBinary)
    leaf_count: Mapped[int] = mapped_column(Integer)
    oracle: Mapped[str] = mapped_column(String(42))
    tx_hash: Mapped[str] = mapped_column(String(66))


class Rejection(Base):
    __tablename__ = "rejections"
    reason: Mapped[str] = mapped_column(String(40), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)


class AnchoringLease(Base):
    """Which oracle sharing this store anchors its market, and until when (``oracle.lease``)."""

    __tablename__ = "anchoring_lease"
    market: Mapped[int] = mapped_column(Integer, primary_key=True)
    holder: Mapped[str] = mapped_column(String(160))
    expires_at: Mapped[int] = mapped_column(BigInteger)


class StoreInfo(Base):
    """Facts about the store itself (``market``: the one market it serves)."""

    __tablename__ = "store_info"
    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))


class StoreMarketError(ConfigurationError):
    """The store already serves another market."""


def open_store(url: str) -> Engine:
    engine = create_engine(url, future=True)
    with engine.begin() as c:
        _migrate(c)
        Base.metadata.create_all(c)
    return engine


def _migrate(c: Connection) -> None:
    """Bring a store of an earlier version up to date (nothing to do for a new or current one)."""
    tables = set(inspect(c).get_table_names())
    if "readings" in tables and inspect(c).get_pk_constraint("readings")["constrained_columns"] == ["meter", "sequence"]:
        _rekey_readings(c)
    if "anchors" in tables and "status" not in {col["name"] for col in inspect(c).get_columns("anchors")}:
        # anchors of an earlier version were counted once mined: taken as confirmed, as they were
        c.execute(text(f"ALTER TABLE anchors ADD COLUMN status VARCHAR(16) NOT NULL DEFAULT '{CONFIRMED}'"))
        c.execute(text("ALTER TABLE anchors ADD COLUMN block_number BIGINT"))
    if "standard_baselines" in tables and "days_back" not in {
            col["name"] for col in inspect(c).get_columns("standard_baselines")}:
        # baselines of an earlier version were anchored without their inputs (a leaf they no longer prove)
        c.execute(text("ALTER TABLE standard_baselines ADD COLUMN days_back BIGINT NOT NULL DEFAULT 0"))
        c.execute(text("ALTER TABLE standard_baselines ADD COLUMN nets VARCHAR(240) NOT NULL DEFAULT ''"))


def _rekey_readings(c: Connection) -> None:
    """Readings keyed by (meter, sequence) become keyed by (meter, ISP): the first one received of a
    meter and ISP stays, any other goes to the conflicts (the evidence it is). An ISP anchored with
    two readings of one meter (what the old key let through) can no longer be proven from the store."""
    c.execute(text("DROP INDEX ix_readings_isp"))
    c.execute(text("ALTER TABLE readings RENAME TO readings_v1"))
    if c.dialect.name == "postgresql":  # the primary key's index keeps its name across the rename
        c.execute(text("ALTER INDEX readings_pkey RENAME TO readings_v1_pkey"))
    Base.metadata.create_all(c, tables=[StoredReading.__table__, ConflictingReading.__table__])  # type: ignore[list-item]
    columns = "meter, isp_start, sequence, import_wh, export_wh, signature, received_at"
    ranked = (f"SELECT {columns}, late, anchored, ROW_NUMBER() OVER (PARTITION BY meter, isp_start "
              "ORDER BY received_at, sequence) AS rank FROM readings_v1")
    c.execute(text(f"INSERT INTO readings ({columns}, late, anchored) "
                   f"SELECT {columns}, late, anchored FROM ({ranked}) AS r WHERE rank = 1"))
    moved = c.execute(text(f"INSERT INTO reading_conflicts ({columns}) SELECT {columns} FROM ({ranked}) AS r "
                           "WHERE rank > 1"))
    c.execute(text("DROP TABLE readings_v1"))
    log.warning("the store's readings are now keyed by meter and ISP; %s second readings of a meter for one ISP "
                "moved to the conflicts", moved.rowcount)


@contextmanager
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine) as s, s.begin():
        yield s


def _insert(s: Session):  # type: ignore[no-untyped-def]
    return pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert


def bind_market(s: Session, market: int) -> None:
    """Record the market this store serves, or refuse another one (``StoreMarketError``)."""
    bound = s.scalar(select(StoreInfo.value).where(StoreInfo.key == "market"))
    if bound is None:  # written only once: a read after that takes no write lock (SQLite)
        s.execute(_insert(s)(StoreInfo).values(key="market", value=str(market)).on_conflict_do_nothing())
        bound = s.scalar(select(StoreInfo.value).where(StoreInfo.key == "market"))
    if bound != str(market):
        raise StoreMarketError(
            f"this oracle store serves market {bound}, not market {market}",
            hint="readings carry no market: give each market's oracle its own FLEXLEDGER_DATABASE_URL")


NEW, DUPLICATE, CONFLICTING = "new", "duplicate", "conflicting"
MAX_CONFLICTS = 4  # conflicting readings kept per meter and ISP


def store_reading(s: Session, reading: Reading, signature: bytes, received_at: int, *, late: bool) -> str:
    """Keep a verified reading: ``new``, ``duplicate`` or ``conflicting`` (see ``store_readings``)."""
    return store_readings(s, [(reading, signature, late)], received_at)[0]


def store_readings(s: Session, items: list[tuple[Reading, bytes, bool]], received_at: int) -> list[str]:
    """Keep many verified readings, for each what became of it: ``new`` (the first of its meter and
    ISP), ``duplicate`` (the same signed values again: a redelivery), or ``conflicting`` (other
    values for a meter and ISP already kept: kept apart as evidence, counted once)."""
    if not items:
        return []
    first: dict[tuple[str, int], int] = {}  # the first of a meter and ISP in this batch
    for k, (r, _sig, _late) in enumerate(items):
        first.setdefault((r.meter, r.isp_start), k)
    values = [dict(meter=r.meter, isp_start=r.isp_start, sequence=r.sequence, import_wh=r.import_wh,
                   export_wh=r.export_wh, signature=sig, received_at=received_at, late=late, anchored=False)
              for k, (r, sig, late) in enumerate(items) if first[(r.meter, r.isp_start)] == k]
    statement = _insert(s)(StoredReading).values(values).on_conflict_do_nothing().returning(
        StoredReading.meter, StoredReading.isp_start)
    inserted = {(m, t) for m, t in s.execute(statement)}
    kept: dict[tuple[str, int], tuple[int, int, int]] = {
        (r.meter, r.isp_start): (r.sequence, r.import_wh, r.export_wh)
        for k, (r, _sig, _late) in enumerate(items) if first[(r.meter, r.isp_start)] == k}
    earlier = [key for key in first if key not in inserted]
    for chunk in range(0, len(earlier), 400):
        keys = earlier[chunk:chunk + 400]
        for m, t, q, i, e in s.execute(select(StoredReading.meter, StoredReading.isp_start, StoredReading.sequence,
                                              StoredReading.import_wh, StoredReading.export_wh)
                                       .where(tuple_(StoredReading.meter, StoredReading.isp_start).in_(keys))):
            kept[(m, t)] = (q, i, e)
    outcomes: list[str] = []
    conflicts: dict[tuple[str, int, int, int, int], tuple[int, bytes]] = {}
    for k, (r, sig, _late) in enumerate(items):
        key = (r.meter, r.isp_start)
        if first[key] == k and key in inserted:
            outcomes.append(NEW)
        elif kept[key] == (r.sequence, r.import_wh, r.export_wh):
            outcomes.append(DUPLICATE)
        else:
            outcomes.append(CONFLICTING)
            conflicts.setdefault((r.meter, r.isp_start, r.sequence, r.import_wh, r.export_wh), (k, sig))
    if conflicts:
        _keep_conflicts(s, conflicts, outcomes, received_at)
    return outcomes


def _keep_conflicts(s: Session, found: dict[tuple[str, int, int, int, int], tuple[int, bytes]], outcomes: list[str],
                    received_at: int) -> None:
    """Keep the batch's conflicting readings (each once, at most ``MAX_CONFLICTS`` per meter and ISP:
    one proves the meter signed two things; a meter signing thousands must not fill the disk); one
    already kept is a ``duplicate``, as is the same one twice in the batch."""
    keys = sorted({(m, t) for m, t, _q, _i, _e in found})
    held: set[tuple[str, int, int, int, int]] = set()
    for chunk in range(0, len(keys), 400):
        held |= {tuple(row) for row in s.execute(  # type: ignore[misc]
            select(ConflictingReading.meter, ConflictingReading.isp_start, ConflictingReading.sequence,
                   ConflictingReading.import_wh, ConflictingReading.export_wh)
            .where(tuple_(ConflictingReading.meter, ConflictingReading.isp_start).in_(keys[chunk:chunk + 400])))}
    room = {key: MAX_CONFLICTS - sum(1 for h in held if h[:2] == key) for key in keys}
    rows = []
    for evidence, (k, sig) in found.items():
        if evidence in held:
            outcomes[k] = DUPLICATE
        elif room[evidence[:2]] > 0:
            room[evidence[:2]] -= 1
            m, t, q, i, e = evidence
            rows.append(dict(meter=m, isp_start=t, sequence=q, import_wh=i, export_wh=e, signature=sig,
                             received_at=received_at))
    if rows:
        s.execute(_insert(s)(ConflictingReading).values(rows).on_conflict_do_nothing())
    first = {k for k, _sig in found.values()}
    for k in range(len(outcomes)):
        if outcomes[k] == CONFLICTING and k not in first:
            outcomes[k] = DUPLICATE  # the same conflicting reading twice in one batch


def conflicts(s: Session, *, meter: str | None = None, isp_start: int | None = None) -> list[ConflictingReading]:
    """The conflicting signed readings kept as evidence (of one meter, one ISP, or all)."""
    query = select(ConflictingReading).order_by(ConflictingReading.isp_start, ConflictingReading.meter,
                                                ConflictingReading.sequence)
    if meter is not None:
        query = query.where(func.lower(ConflictingReading.meter) == meter.lower())
    if isp_start is not None:
        query = query.where(ConflictingReading.isp_start == isp_start)
    return list(s.scalars(query))


def equivocations(s: Session, *, meter: str | None = None, isp_start: int | None = None) -> list[dict[str, Any]]:
    """The conflicting readings (``conflicts``) each beside the reading kept for its meter and ISP,
    JSON-ready: the evidence that a meter signed two things for one ISP."""
    def signed(r: StoredReading | ConflictingReading) -> dict[str, Any]:
        return {"sequence": r.sequence, "importWh": r.import_wh, "exportWh": r.export_wh,
                "signature": "0x" + bytes(r.signature).hex(), "receivedAt": r.received_at}

    out = []
    for c in conflicts(s, meter=meter, isp_start=isp_start):
        first = s.get(StoredReading, (c.meter, c.isp_start))
        out.append({"meter": c.meter, "ispStart": c.isp_start, "kept": signed(first) if first else None,
                    "conflicting": signed(c)})
    return out


def kept_reading(s: Session, meter: str, isp_start: int) -> StoredReading | None:
    """The one reading of ``meter`` kept for the ISP (the first it signed), if any."""
    return s.scalar(select(StoredReading).where(StoredReading.isp_start == isp_start,
                                                func.lower(StoredReading.meter) == meter.lower()))


def signed_readings_of(s: Session, meter: str, isp_start: int) -> list[StoredReading | ConflictingReading]:
    """Every reading ``meter`` signed for the ISP that the store holds: the kept one and the conflicting ones."""
    kept = kept_reading(s, meter, isp_start)
    return [*([kept] if kept else []), *conflicts(s, meter=meter, isp_start=isp_start)]


def quarantine(s: Session, payload: bytes, error: BaseException, received_at: int) -> None:
    """Keep aside a message that cannot be stored (its first 4 KiB; a reading has at most 2 KiB)."""
    s.add(QuarantinedMessage(received_at=received_at, error=f"{type(error).__name__}: {error}"[:200],
                             payload=bytes(payload[:4096])))


def quarantined(s: Session) -> list[QuarantinedMessage]:
    return list(s.scalars(select(QuarantinedMessage).order_by(QuarantinedMessage.id)))


def count_rejection(s: Session, reason: str, n: int = 1) -> None:
    statement = _insert(s)(Rejection).values(reason=reason, count=n)
    s.execute(statement.on_conflict_do_update(index_elements=["reason"], set_={"count": Rejection.count + n}))


def rejections(s: Session) -> dict[str, int]:
    return {r.reason: r.count for r in s.scalars(select(Rejection))}


def readings_of_isp(s: Session, isp_start: int) -> list[StoredReading]:
    """The ISP's readings that go into its root (not the late ones), in a fixed order."""
    rows = s.scalars(select(StoredReading).where(StoredReading.isp_start == isp_start, StoredReading.late.is_(False))
                     .order_by(StoredReading.meter, StoredReading.sequence))
    return list(rows)


def mark_anchored(s: Session, isp_start: int, in_root: list[StoredReading]) -> int:
    """Mark the readings that went into the ISP's root anchored, and flag late any other reading of
    the ISP kept meanwhile (while the anchor's transaction waited for its block): it is in no root.
    Returns how many were flagged late."""
    for row in in_root:
        row.anchored = True
    s.flush()
    flagged = s.execute(update(StoredReading).where(
        StoredReading.isp_start == isp_start, StoredReading.late.is_(False), StoredReading.anchored.is_(False),
    ).values(late=True))
    return int(flagged.rowcount or 0)  # type: ignore[attr-defined]


def unmark_anchored(s: Session, isp_start: int) -> None:
    """Its anchor is gone from the chain (a reorganisation): every reading of the ISP is due again,
    the late ones included (they were late only to that anchor)."""
    s.execute(update(StoredReading).where(StoredReading.isp_start == isp_start).values(anchored=False, late=False))
