"""Lights files (CSV and JSON) and how they overlay what is already published."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flexledger.grid.lights_file import LightsFileError, plan, read_lights_file
from flexledger.rules.lights import Colour, Direction, Light, pack_hour, unpack_hour
from flexledger.rules.market import MarketParams

P = MarketParams()
DAY = 1_800_000_000 - 1_800_000_000 % 86_400


def test_csv_and_json_read_the_same(tmp_path: Path) -> None:
    (tmp_path / "l.csv").write_text(
        f"zone,isp_start,direction,colour,capability_w\n3,{DAY},UP,YELLOW,1000\n3,{DAY + 900},down,red,\n"
    )
    iso = "2027-01-15T08:00:00Z"
    (tmp_path / "l.json").write_text(json.dumps([
        {"zone": 3, "isp_start": DAY, "direction": "UP", "colour": "YELLOW", "capability_w": 1000},
        {"zone": 3, "isp_start": DAY + 900, "direction": "DOWN", "colour": "RED"},
        {"zone": 4, "isp_start": iso, "direction": "UP", "colour": "GREEN"},
    ]))
    csv_entries = read_lights_file(tmp_path / "l.csv", P)
    json_entries = read_lights_file(tmp_path / "l.json", P)
    assert csv_entries == json_entries[:2]
    assert csv_entries[1].direction is Direction.DOWN and csv_entries[1].light == Light(Colour.RED)


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        (f"3,{DAY + 7},UP,RED,", "not aligned"),
        (f"3,{DAY},SIDEWAYS,RED,", "'SIDEWAYS' is not a direction"),
        (f"3,{DAY},UP,BLUE,", "'BLUE' is not a light's colour"),
        (f"3,{DAY},UP,YELLOW,", "a YELLOW light needs its capability in W"),
        (f"3,{DAY},UP,RED,50", "only a YELLOW"),
        (f"3,{DAY},UP,GREEN,50", "only a YELLOW"),
        (f"3,{DAY},UP,YELLOW,{2**30}", "capability must be"),
        (f"x,{DAY},UP,RED,", "bad or missing"),
    ],
)
def test_bad_entries_name_the_line(tmp_path: Path, row: str, problem: str) -> None:
    (tmp_path / "l.csv").write_text("zone,isp_start,direction,colour,capability_w\n" + row + "\n")
    with pytest.raises(LightsFileError, match=problem) as err:
        read_lights_file(tmp_path / "l.csv", P)
    assert "line 2" in err.value.message


def test_a_header_without_columns_is_refused(tmp_path: Path) -> None:
    (tmp_path / "l.csv").write_text("zone,when\n1,2\n")
    with pytest.raises(LightsFileError, match="header lacks"):
        read_lights_file(tmp_path / "l.csv", P)


def test_plan_overlays_the_stored_words(tmp_path: Path) -> None:
    # ISP 9 of the day is hour 2, lane 1; a second entry on the next day makes a second call
    (tmp_path / "l.csv").write_text(
        f"zone,isp_start,direction,colour,capability_w\n5,{DAY + 9 * 900},UP,RED,\n6,{DAY + 86_400},DOWN,YELLOW,7\n"
    )
    entries = read_lights_file(tmp_path / "l.csv", P)
    stored = {(5, DAY + 2 * 3600): pack_hour({Direction.UP: [Light(Colour.YELLOW, 9)] * 4, Direction.DOWN: [None] * 4})}
    first, second = plan(entries, P, lambda z, h: stored.get((z, h), 0))
    assert first.day_start == DAY and first.zones == [5] and len(first.words) == 24
    hour = unpack_hour(first.words[2])
    assert hour[Direction.UP] == [Light(Colour.YELLOW, 9), Light(Colour.RED), Light(Colour.YELLOW, 9), Light(Colour.YELLOW, 9)]
    assert hour[Direction.DOWN] == [None] * 4  # DOWN untouched
    assert all(w == 0 for i, w in enumerate(first.words) if i != 2)
    assert second.day_start == DAY + 86_400 and second.zones == [6]
    assert unpack_hour(second.words[0])[Direction.DOWN][0] == Light(Colour.YELLOW, 7)


def test_a_market_with_other_isps_cannot_take_dynamic_lights(tmp_path: Path) -> None:
    (tmp_path / "l.csv").write_text(f"zone,isp_start,direction,colour,capability_w\n5,{DAY},UP,RED,\n")
    with pytest.raises(LightsFileError, match="900 s ISPs"):
        read_lights_file(tmp_path / "l.csv", MarketParams(isp_seconds=1800))
