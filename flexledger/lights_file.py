"""Traffic-light files: what a DSO publishes, as CSV or JSON, and how it becomes packed words.

One entry per zone, ISP and direction. CSV has a header ``zone,isp_start,direction,colour,capability_w``;
JSON is a list of objects with the same keys. ``isp_start`` is Unix seconds or an ISO 8601 time
(UTC unless it says otherwise); ``direction`` is UP or DOWN; ``colour`` GREEN, YELLOW or RED;
``capability_w`` is given for YELLOW only (W). Entries not in the file keep what is already
published.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flexledger.errors import FlexledgerError

from .rules.lights import WORD_ISPS, Colour, Direction, Light, LightError, pack_word, unpack_word
from .rules.market import MarketParams

FIELDS = ("zone", "isp_start", "direction", "colour", "capability_w")


class LightsFileError(FlexledgerError):
    """A lights file that cannot be read or breaks a rule; the message names the entry."""


@dataclass(frozen=True)
class LightEntry:
    zone: int
    isp_start: int
    direction: Direction
    light: Light


@dataclass(frozen=True)
class Publication:
    """One publishLights call: ``words`` zone by zone, UP then DOWN, ``word_count`` each."""

    first_isp_start: int
    word_count: int
    zones: list[int]
    words: list[int]

    @property
    def entries(self) -> int:
        return len(self.words) * WORD_ISPS


def _time(value: Any) -> int:
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if text.isdigit():
        return int(text)
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp())


def parse_entry(raw: dict[str, Any], where: str, params: MarketParams) -> LightEntry:
    try:
        zone = int(raw["zone"])
        isp_start = _time(raw["isp_start"])
        direction = Direction[str(raw["direction"]).strip().upper()]
        colour = Colour[str(raw["colour"]).strip().upper()]
        capability = int(raw.get("capability_w") or 0)
    except (KeyError, ValueError) as exc:
        raise LightsFileError(f"{where}: bad or missing field ({exc})", hint=f"fields: {', '.join(FIELDS)}") from None
    if colour is Colour.UNSET:
        raise LightsFileError(f"{where}: colour must be GREEN, YELLOW or RED")
    if not params.is_aligned(isp_start):
        raise LightsFileError(f"{where}: ISP start {isp_start} is not aligned to the market's {params.isp_seconds} s ISPs")
    try:
        light = Light(colour, capability)
    except LightError as exc:
        raise LightsFileError(f"{where}: {exc.message}") from None
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


def plan(
    entries: list[LightEntry], params: MarketParams, stored: Callable[[int, Direction, int], int]
) -> Publication:
    """The words to publish: the stored words overlaid with the file's entries.

    ``stored(zone, direction, word_index)`` reads what is on chain, so entries the file does not
    name keep their published value.
    """
    if not entries:
        raise LightsFileError("the lights file has no entries")
    span = params.isp_seconds * WORD_ISPS
    first_word = min(e.isp_start for e in entries) // span
    last_word = max(e.isp_start for e in entries) // span
    count = last_word - first_word + 1
    zones = sorted({e.zone for e in entries})
    grid: dict[tuple[int, Direction, int], list[Light | None]] = {}
    for zone in zones:
        for direction in Direction:
            for w in range(count):
                grid[(zone, direction, w)] = unpack_word(stored(zone, direction, first_word + w))
    for e in entries:
        index = e.isp_start // params.isp_seconds
        grid[(e.zone, e.direction, index // WORD_ISPS - first_word)][index % WORD_ISPS] = e.light
    words = [pack_word(grid[(z, d, w)]) for z in zones for d in Direction for w in range(count)]
    return Publication(first_word * span, count, zones, words)
