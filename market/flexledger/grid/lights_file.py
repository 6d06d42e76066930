"""Traffic-light files: what a DSO publishes, as CSV or JSON, and how it becomes packed words.

One entry per zone, ISP and direction. CSV has a header ``zone,isp_start,direction,colour,capability_w``;
JSON is a list of objects with the same keys. ``isp_start`` is Unix seconds or an ISO 8601 time
(UTC unless it says otherwise); ``direction`` is UP or DOWN; ``colour`` GREEN, YELLOW or RED;
``capability_w`` is given for YELLOW only (W). Entries not in the file keep what is already
published. Each market day the file touches becomes one ``publishDay`` call (24 hour words per
zone), and the market must have 15-minute ISPs, which the dynamic lights follow.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flexledger.errors import FlexledgerError
from flexledger.rules.lights import (
    HOUR,
    LIGHT_ISP_SECONDS,
    Direction,
    Light,
    LightError,
    pack_hour,
    parse_direction,
    parse_light,
    unpack_hour,
)
from flexledger.rules.market import MarketParams
from flexledger.times import parse_time

FIELDS = ("zone", "isp_start", "direction", "colour", "capability_w")


class LightsFileError(FlexledgerError):
    """A lights file that cannot be read or breaks a rule; the message names the entry."""


@dataclass(frozen=True)
class LightEntry:
    zone: int
    isp_start: int
    direction: Direction
    light: Light


HOURS_PER_DAY = 24


@dataclass(frozen=True)
class Publication:
    """One publishDay call: ``words`` zone by zone, 24 hour words each."""

    day_start: int
    zones: list[int]
    words: list[int]


def parse_entry(raw: dict[str, Any], where: str, params: MarketParams) -> LightEntry:
    try:
        zone = int(raw["zone"])
        isp_start = parse_time(raw["isp_start"])
        direction = parse_direction(raw["direction"])
        colour = str(raw["colour"])
        given = raw.get("capability_w")
        capability = None if given is None or str(given).strip() == "" else int(given)
    except (KeyError, ValueError) as exc:
        raise LightsFileError(f"{where}: bad or missing field ({exc})", hint=f"fields: {', '.join(FIELDS)}") from None
    except LightError as exc:
        raise LightsFileError(f"{where}: {exc.message}", hint=exc.hint) from None
    if params.isp_seconds != LIGHT_ISP_SECONDS:
        raise LightsFileError(
            f"{where}: dynamic lights follow {LIGHT_ISP_SECONDS} s ISPs; this market's ISP is {params.isp_seconds} s",
            hint="publish static lights only in this market (flexledger grid lights static)",
        )
    if not params.is_aligned(isp_start):
        raise LightsFileError(f"{where}: ISP start {isp_start} is not aligned to the market's {params.isp_seconds} s ISPs")
    try:
        light = parse_light(colour, capability)
    except LightError as exc:
        raise LightsFileError(f"{where}: {exc.message}", hint=exc.hint) from None
    return LightEntry(zone, isp_start, direction, light)


def read_lights_file(path: Path, params: MarketParams) -> list[LightEntry]:
    if not path.is_file():
        raise LightsFileError(f"no lights file at {path}")
    text = path.read_text()
    if path.suffix.lower() == ".json" or text.lstrip().startswith("["):
        try:
            rows = json.loads(text)
        except ValueError as exc:
            raise LightsFileError(f"{path}: not valid JSON ({exc})") from None
        if not isinstance(rows, list):
            raise LightsFileError(f"{path}: a JSON lights file is a list of entries")
        return [parse_entry(r, f"{path} entry {i}", params) for i, r in enumerate(rows)]
    reader = csv.DictReader(text.splitlines())
    missing = set(FIELDS) - {"capability_w"} - set(reader.fieldnames or [])
    if missing:
        raise LightsFileError(f"{path}: the CSV header lacks {', '.join(sorted(missing))}", hint=f"header: {','.join(FIELDS)}")
    return [parse_entry(r, f"{path} line {i + 2}", params) for i, r in enumerate(reader)]


def plan(entries: list[LightEntry], params: MarketParams, stored: Callable[[int, int], int]) -> list[Publication]:
    """The publishDay calls: for every market day the entries touch, the stored words overlaid
    with the file's entries.

    ``stored(zone, hour_start)`` reads the word on chain, so entries the file does not name keep
    their published value.
    """
    if not entries:
        raise LightsFileError("the lights file has no entries")
    days: dict[int, list[LightEntry]] = {}
    for e in entries:
        days.setdefault(params.day_start(e.isp_start), []).append(e)
    publications = []
    for day, day_entries in sorted(days.items()):
        if day % HOUR:
            raise LightsFileError(f"the market day starting at {day} does not start on a whole hour (UTC)")
        zones = sorted({e.zone for e in day_entries})
        hours = {(z, h): unpack_hour(stored(z, day + h * HOUR)) for z in zones for h in range(HOURS_PER_DAY)}
        for e in day_entries:
            offset = e.isp_start - day
            hours[(e.zone, offset // HOUR)][e.direction][(offset % HOUR) // LIGHT_ISP_SECONDS] = e.light
        words = [pack_hour(hours[(z, h)]) for z in zones for h in range(HOURS_PER_DAY)]
        publications.append(Publication(day, zones, words))
    return publications
