"""One anchoring oracle per market among those sharing a store: a lease row with an expiry.

Consumers scale out (each keeps what it receives), but an ISP's root must be anchored by one
writer: two would race to send the same root (the chain keeps the first, the other transaction is
wasted or, with other readings, refused as a second root). The oracle that holds the market's lease
anchors, answers claims and challenges, and renews the lease every round; the others only ingest.
An oracle that stops (crashed, cut off from the database) renews nothing, and once its lease has
expired the next oracle to ask takes it over. A graceful stop gives the lease back at once.

Taking and renewing are one conditional UPDATE (or the first INSERT), so of two oracles asking at
once exactly one gets the lease, on SQLite and PostgreSQL alike. The expiry is on the oracles' wall
clocks: keep them in sync (NTP) and the lease several rounds long, so a skew of seconds cannot give
it to two at once. The chain stays the last lock: an ISP anchored already is never anchored again
(``anchoring``: taken from the chain's event instead).
"""

from __future__ import annotations

from sqlalchemy import or_, update
from sqlalchemy.engine import CursorResult, Engine
from sqlalchemy.exc import IntegrityError

from .store import AnchoringLease, session


def take_lease(engine: Engine, market: int, holder: str, now: int, seconds: int) -> bool:
    """Take, renew or fail to take the anchoring lease of ``market`` for ``holder`` until
    ``now + seconds``: True when ``holder`` holds it now."""
    with session(engine) as s:
        renewed = s.execute(update(AnchoringLease)
                            .where(AnchoringLease.market == market,
                                   or_(AnchoringLease.holder == holder, AnchoringLease.expires_at <= now))
                            .values(holder=holder, expires_at=now + seconds))
        assert isinstance(renewed, CursorResult)
        if renewed.rowcount == 1:
            return True
        if s.get(AnchoringLease, market) is not None:
            return False  # held by another oracle, not expired
    try:  # nobody has held it yet: the first insert wins, a concurrent one finds the key taken
        with session(engine) as s:
            s.add(AnchoringLease(market=market, holder=holder, expires_at=now + seconds))
    except IntegrityError:
        return False
    return True


def lease_holder(engine: Engine, market: int, now: int) -> str | None:
    """Who holds the lease of ``market`` at ``now`` (None: nobody, or it has expired)."""
    with session(engine) as s:
        lease = s.get(AnchoringLease, market)
        return lease.holder if lease is not None and lease.expires_at > now else None


def release_lease(engine: Engine, market: int, holder: str) -> None:
    """Give the lease back (a graceful stop): the next oracle to ask takes it without waiting."""
    with session(engine) as s:
        s.execute(update(AnchoringLease).where(AnchoringLease.market == market, AnchoringLease.holder == holder)
                  .values(expires_at=0))
