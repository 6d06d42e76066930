"""Which accepted offers a span's new offers replace (rule 3: a newer offer of the same asset or
portfolio whose window overlaps an older one replaces it), found in the database once the span's
offers are in it, so that every pair is found once: in the span of its newer offer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, select, tuple_

from flexledger.rules.orders import Offer

from .facts import OFFER_FIELDS
from .tables import EVENT_TABLES, offers

SUBJECTS_PER_QUERY = 500
markets = next(t.table for t in EVENT_TABLES if t.table.name == "markets")


def _offer(row: Mapping[Any, Any]) -> Offer:
    """An ``offers`` row (from the database or about to go in) as the rules' offer."""
    values = {name: row[name] for name in OFFER_FIELDS}
    values["baseline"] = bytes.fromhex(values["baseline"][2:])
    return Offer(**values)


def replacement_rows(c: Connection, new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``offer_replacements`` rows of the ``new`` offers' rows (already inserted through ``c``)."""
    if not new:
        return []
    isp_seconds = {int(m): int(s) for m, s in c.execute(select(markets.c.market_id, markets.c.isp_seconds))}
    subjects = sorted({(r["market"], r["asset"], r["portfolio"]) for r in new})
    known: dict[tuple[int, int, int], list[tuple[Offer, str]]] = {}
    for first in range(0, len(subjects), SUBJECTS_PER_QUERY):
        part = subjects[first:first + SUBJECTS_PER_QUERY]
        query = select(offers).where(tuple_(offers.c.market, offers.c.asset, offers.c.portfolio).in_(part))
        for stored in c.execute(query).mappings():
            offer = _offer(stored)
            known.setdefault(offer.subject, []).append((offer, stored["digest"]))
    out = []
    for row in new:
        offer = _offer(row)
        isp = isp_seconds.get(offer.market)
        if isp is None:  # an offer of a market never created is refused on chain; nothing to compare
            continue
        for older, digest in known.get(offer.subject, []):
            if older.nonce < offer.nonce and older.overlaps(offer, isp):
                out.append({key: row[key] for key in ("block_number", "block_hash", "tx_hash", "log_index", "entry")}
                           | {"replaced_digest": digest, "by_digest": row["digest"]})
    return out

