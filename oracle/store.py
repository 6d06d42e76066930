"""The oracle's store (SQLAlchemy 2): readings, kept once each, their anchors, the standard
baselines anchored for settlement, and the count of readings refused per reason. SQLite by default, PostgreSQL by URL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import (
    BigInteger,
    Boolean,
    Index,
    Integer,
    LargeBinary,
    String,
    create_engine,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from .readings import Reading


class Base(DeclarativeBase):
    pass


class StoredReading(Base):
    """A verified reading. (meter, sequence) is the key: a reading delivered twice is kept once."""

    __tablename__ = "readings"
    meter: Mapped[str] = mapped_column(String(42), primary_key=True)
    sequence: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    isp_start: Mapped[int] = mapped_column(BigInteger)
    import_wh: Mapped[int] = mapped_column(BigInteger)
    export_wh: Mapped[int] = mapped_column(BigInteger)
    signature: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[int] = mapped_column(BigInteger)
    late: Mapped[bool] = mapped_column(Boolean, default=False)  # arrived after its ISP was anchored
    anchored: Mapped[bool] = mapped_column(Boolean, default=False)
    __table_args__ = (Index("ix_readings_isp", "isp_start"),)

    def reading(self) -> Reading:
        return Reading(self.meter, self.isp_start, self.sequence, self.import_wh, self.export_wh)


class StoredAnchor(Base):
    __tablename__ = "anchors"
    market: Mapped[int] = mapped_column(Integer, primary_key=True)
    isp_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    root: Mapped[bytes] = mapped_column(LargeBinary)
    leaf_count: Mapped[int] = mapped_column(Integer)
    oracle: Mapped[str] = mapped_column(String(42))
    anchored_at: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str] = mapped_column(String(66))


class StoredBaseline(Base):
    """A meter's standard (ROLLING_AVERAGE) baseline for an ISP, as anchored in the ISP's baselines root."""

    __tablename__ = "standard_baselines"
    market: Mapped[int] = mapped_column(Integer, primary_key=True)
    isp_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    meter: Mapped[str] = mapped_column(String(42), primary_key=True)
    baseline_wh: Mapped[int] = mapped_column(BigInteger)


class StoredBaselineAnchor(Base):
    __tablename__ = "baseline_anchors"
    market: Mapped[int] = mapped_column(Integer, primary_key=True)
    isp_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    root: Mapped[bytes] = mapped_column(LargeBinary)
    leaf_count: Mapped[int] = mapped_column(Integer)
    oracle: Mapped[str] = mapped_column(String(42))
    tx_hash: Mapped[str] = mapped_column(String(66))


class Rejection(Base):
    __tablename__ = "rejections"
    reason: Mapped[str] = mapped_column(String(40), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)


def open_store(url: str) -> Engine:
    engine = create_engine(url, future=True)
    Base.metadata.create_all(engine)
    return engine


@contextmanager
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine) as s, s.begin():
        yield s


def _insert(s: Session):  # type: ignore[no-untyped-def]
    return pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert


def store_reading(s: Session, reading: Reading, signature: bytes, received_at: int, *, late: bool) -> bool:
    """Keep a verified reading; False when it was already kept (a duplicate delivery)."""
    return store_readings(s, [(reading, signature, late)], received_at)[0]


def store_readings(s: Session, items: list[tuple[Reading, bytes, bool]], received_at: int) -> list[bool]:
    """Keep many verified readings in one statement; for each, whether it was new (not a duplicate)."""
    if not items:
        return []
    first: dict[tuple[str, int], int] = {}  # a reading delivered twice in one batch is new once
    for k, (r, _sig, _late) in enumerate(items):
        first.setdefault((r.meter, r.sequence), k)
    values = [dict(meter=r.meter, sequence=r.sequence, isp_start=r.isp_start, import_wh=r.import_wh,
                   export_wh=r.export_wh, signature=sig, received_at=received_at, late=late, anchored=False)
              for r, sig, late in items]
    statement = _insert(s)(StoredReading).values(values).on_conflict_do_nothing().returning(
        StoredReading.meter, StoredReading.sequence)
    inserted = {(m, q) for m, q in s.execute(statement)}
    return [(r.meter, r.sequence) in inserted and first[(r.meter, r.sequence)] == k
            for k, (r, _sig, _late) in enumerate(items)]


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
