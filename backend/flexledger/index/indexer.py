"""The indexer: reads every contract's logs from the manifest's deployment blocks into the tables,
span by span, each span and its checkpoint written in one transaction; follows the head; rolls a
fork back.

Reorgs: every block with a log keeps its hash and parent, and the checkpoint its block's hash.
When the next span's first block does not name the checkpoint's block as its parent (or, caught
up, the checkpoint's block is no longer the chain's), the indexer walks its stored blocks back to
the newest one the chain still holds, deletes every row after it in one transaction and reads on
from there. Rows are facts keyed by their log (see :mod:`.tables`), so nothing else needs undoing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, Table, delete, func, insert, select
from sqlalchemy.exc import OperationalError

from flexledger.chain.errors import RpcUnreachableError
from flexledger.chain.events import decode_log
from flexledger.errors import FlexledgerError

from .chain_reader import ChainMovedError, Confirmations, Header, Span, headers, read_span, tip
from .facts import rows_of
from .replacements import replacement_rows
from .tables import LOG_TABLES, Block, Checkpoint, offer_replacements, offers

if TYPE_CHECKING:
    from flexledger.chain.connection import ChainConnection
    from flexledger.chain.manifest import Manifest

CHECKPOINT_ID = 1
DEFAULT_SPAN = 2_000  # blocks a span at most (the node's log range may make it smaller)
FORK_SEARCH = 64  # stored blocks compared with the chain per request while looking for a fork
MAX_BACKOFF = 30.0
# What makes a step fail for a while and succeed later: the node or the database away, the
# chain moving under a span.
TRANSIENT = (RpcUnreachableError, ChainMovedError, OperationalError)


class IndexerGaveUpError(FlexledgerError):
    """The node or the database stayed unreachable longer than the indexer was told to wait."""


@dataclass(frozen=True)
class StepReport:
    """One step: the blocks read and the logs written, or the fork rolled back to."""

    first: int
    last: int
    logs: int
    rolled_back_to: int | None = None


@dataclass(frozen=True)
class IndexStatus:
    head: int
    tip: int  # the newest block the confirmation depth lets the indexer read
    indexed: int | None  # the checkpoint's block
    rows: dict[str, int]

    @property
    def lag(self) -> int:
        """Blocks between the head and the checkpoint."""
        return self.head - (self.indexed if self.indexed is not None else -1)

    def to_json(self) -> dict[str, Any]:
        return {"head": self.head, "tip": self.tip, "indexed": self.indexed, "lag": self.lag, "rows": self.rows}


def _insert(connection: Connection, table: Table | type[Block], rows: list[dict[str, Any]]) -> None:
    """Insert ``rows``, each skipped when its key is already there (a span read twice adds nothing)."""
    if not rows:
        return
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        connection.execute(pg_insert(table).on_conflict_do_nothing(), rows)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        connection.execute(sqlite_insert(table).on_conflict_do_nothing(), rows)


class Indexer:
    """One deployment's logs into one database. ``confirmations``: blocks to stay behind the head
    (0 on anvil), or ``"finalized"`` to read only what the node calls final."""

    def __init__(self, engine: Engine, conn: ChainConnection, manifest: Manifest, *,
                 confirmations: Confirmations = 0, span: int = DEFAULT_SPAN) -> None:
        self.engine = engine
        self.conn = conn
        self.confirmations = confirmations
        self.span = span
        self.names = {c.address.lower(): name for name, c in manifest.contracts.items()}
        self.addresses = sorted(c.address for c in manifest.contracts.values())
        self.first_block = min(c.block for c in manifest.contracts.values())
        self.order_book = manifest.address("OrderBook")
        self._offer_separator: bytes | None = None

    @property
    def offer_separator(self) -> bytes:
        """The OrderBook's EIP-712 domain separator: the offers' digests are computed with it."""
        if self._offer_separator is None:
            from flexledger.identity.eip712 import read_domain

            self._offer_separator = read_domain(self.conn, self.order_book).separator()
        return self._offer_separator

    # --- the checkpoint -----------------------------------------------------------------------

    def checkpoint(self) -> tuple[int, str] | None:
        with self.engine.connect() as c:
            row = c.execute(select(Checkpoint.block_number, Checkpoint.block_hash)).first()
        return None if row is None else (int(row[0]), str(row[1]))

    @staticmethod
    def _set_checkpoint(c: Connection, block: tuple[int, str] | None) -> None:
        c.execute(delete(Checkpoint))
        if block is not None:
            c.execute(insert(Checkpoint).values(id=CHECKPOINT_ID, block_number=block[0], block_hash=block[1]))

    # --- one step ------------------------------------------------------------------------------

    def step(self) -> StepReport | None:
        """Read the next span (or roll a fork back); None when caught up with the tip."""
        checkpoint = self.checkpoint()
        last_tip = tip(self.conn, self.confirmations)
        first = checkpoint[0] + 1 if checkpoint else self.first_block
        if first > last_tip:
            if checkpoint is not None:
                held = headers(self.conn, [checkpoint[0]]).get(checkpoint[0])
                if held is None or held.hash != checkpoint[1]:
                    return self._roll_back(first)
            return None
        last = min(last_tip, first + min(self.span, self.conn.log_range) - 1)
        span = read_span(self.conn, self.addresses, first, last)
        if checkpoint is not None and span.headers[first].parent_hash != checkpoint[1]:
            return self._roll_back(first)
        return self._write(span)

    def _write(self, span: Span) -> StepReport:
        decoded = []
        for log in span.logs:
            event = decode_log(log, self.names)
            if event is not None:
                decoded.append((event, span.headers[event.block_number].hash))
        tables = rows_of(decoded, self.offer_separator if decoded else b"")
        blocks = sorted({event.block_number for event, _ in decoded})
        with self.engine.begin() as c:
            _insert(c, Block, [self._block_row(span.headers[n]) for n in blocks])
            for table in LOG_TABLES:
                _insert(c, table, tables.get(table, []))
            _insert(c, offer_replacements, replacement_rows(c, tables.get(offers, [])))
            self._set_checkpoint(c, (span.last, span.headers[span.last].hash))
        return StepReport(span.first, span.last, len(decoded))

    @staticmethod
    def _block_row(header: Header) -> dict[str, Any]:
        return {"number": header.number, "hash": header.hash, "parent_hash": header.parent_hash,
                "timestamp": header.timestamp}

    # --- forks ---------------------------------------------------------------------------------

    def fork_point(self) -> tuple[int, str] | None:
        """The newest stored block (the checkpoint's, then those with logs, newest first, a page at a
        time) that the chain still holds; None when none is."""
        checkpoint = self.checkpoint()
        page: list[tuple[int, str]] = [checkpoint] if checkpoint is not None else []
        below = checkpoint[0] + 1 if checkpoint is not None else None
        while True:
            query = select(Block.number, Block.hash).order_by(Block.number.desc()).limit(FORK_SEARCH)
            with self.engine.connect() as c:
                page += [(int(n), str(h)) for n, h in c.execute(
                    query if below is None else query.where(Block.number < below))]
            if not page:
                return None
            chain = headers(self.conn, [n for n, _ in page])
            for number, block_hash in page:
                held = chain.get(number)
                if held is not None and held.hash == block_hash:
                    return number, block_hash
            below, page = page[-1][0], []

    def _roll_back(self, seen_at: int) -> StepReport:
        """Delete every row after the fork point and set the checkpoint there, in one transaction."""
        fork = self.fork_point()
        after = fork[0] if fork else self.first_block - 1
        with self.engine.begin() as c:
            for table in LOG_TABLES:
                c.execute(delete(table).where(table.c.block_number > after))
            c.execute(delete(Block).where(Block.number > after))
            self._set_checkpoint(c, fork)
        return StepReport(after + 1, seen_at - 1, 0, rolled_back_to=after)

    # --- runs ----------------------------------------------------------------------------------

    def run(self, *, follow: bool = False, poll: float = 0.25, give_up_after: float | None = None,
            stop: Callable[[], bool] = lambda: False, report: Callable[[StepReport], None] | None = None,
            trouble: Callable[[Exception, float], None] | None = None) -> None:
        """Step until caught up (with ``follow``: on, polling the head every ``poll`` seconds, until
        ``stop()``). A node or database that does not answer is waited for, ever longer up to
        :data:`MAX_BACKOFF` seconds between tries, and given up on after ``give_up_after`` seconds."""
        backoff, failing_since = poll, None
        while not stop():
            try:
                done = self.step()
            except TRANSIENT as exc:
                now = time.monotonic()
                failing_since = failing_since or now
                if give_up_after is not None and now - failing_since > give_up_after:
                    raise IndexerGaveUpError(f"the indexer could not go on for {give_up_after:.0f} s: {exc}",
                                             hint="check that the node and the database answer, then run it again"
                                             ) from exc
                if trouble is not None:
                    trouble(exc, backoff)
                time.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            backoff, failing_since = poll, None
            if done is not None:
                if report is not None:
                    report(done)
                continue
            if not follow:
                return
            time.sleep(poll)

    def clear(self) -> None:
        """Empty every table the logs fill, and the checkpoint (a rebuild reads from the start)."""
        with self.engine.begin() as c:
            for table in LOG_TABLES:
                c.execute(delete(table))
            c.execute(delete(Block))
            self._set_checkpoint(c, None)

    def status(self) -> IndexStatus:
        head = tip(self.conn, 0)
        checkpoint = self.checkpoint()
        return IndexStatus(head, tip(self.conn, self.confirmations), checkpoint[0] if checkpoint else None,
                           row_counts(self.engine))


def row_counts(engine: Engine) -> dict[str, int]:
    """Rows per table the indexer writes."""
    with engine.connect() as c:
        counts = {Block.__tablename__: int(c.execute(select(func.count()).select_from(Block)).scalar_one())}
        counts.update({t.name: int(c.execute(select(func.count()).select_from(t)).scalar_one()) for t in LOG_TABLES})
    return counts
