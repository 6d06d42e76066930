"""The demo's grid step: a market, a zone tree, static lights and a day of dynamic lights."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from eth_account.signers.local import LocalAccount
from rich.console import Console
from rich.text import Text

from flexledger.chain import structs
from flexledger.chain.transactions import Signer
from flexledger.deployment import Deployment
from flexledger.rules.lights import Colour, Direction, Light, pack_day
from flexledger.rules.market import MarketParams

SUBSTATIONS_PER_DSO = 3
FEEDERS_PER_SUBSTATION = 5
_BLOCK = {Colour.GREEN: "green", Colour.YELLOW: "yellow", Colour.RED: "red"}
_GLYPH = {Colour.GREEN: "▁", Colour.YELLOW: "▄", Colour.RED: "█"}  # readable without colour too


def _strip(lights: list[Light]) -> Text:
    """A day as one line of coloured blocks, an hour every four."""
    text = Text()
    for q, light in enumerate(lights):
        if q and q % 4 == 0:
            text.append(" ")
        text.append(_GLYPH[light.colour], style=_BLOCK[light.colour])
    return text


def grid_step(
    authority: Deployment, accounts: dict[str, LocalAccount], console: Console
) -> dict[str, Any]:
    """One TSO area, two DSO perimeters, six substations, thirty feeders; lights for tomorrow.

    The parties' new keys get test ether from anvil (a development chain only), then act for
    themselves: the TSO adds its area and the DSOs' perimeters, each DSO builds its perimeter and
    publishes a whole market day of lights for all its zones in one transaction.
    """
    rng = random.Random(7)
    conn = authority.conn
    for name in ("TSO", "DSO north", "DSO south"):
        conn.request("anvil_setBalance", [accounts[name].address, hex(10**20)])
    tso = Signer(accounts["TSO"], conn)
    dsos = [Signer(accounts["DSO north"], conn), Signer(accounts["DSO south"], conn)]

    params = MarketParams()
    market = authority.markets.create_market(structs.MarketParams.like(params)).event("MarketCreated").args["marketId"]
    grid = authority.zones  # each zone's operator sends its own transactions (sender=)

    def add(parent: int, operator: Signer, by: Signer, cap: int) -> int:
        zone: int = grid.add_zone(parent, operator.address, cap, sender=by).event("ZoneAdded").args["zoneId"]
        return zone

    area = add(0, tso, tso, 0)
    owned: dict[str, list[int]] = {}
    feeders: list[int] = []
    substation_of: dict[int, int] = {}  # feeder -> its substation
    for dso in dsos:
        perimeter = add(area, dso, tso, 2_000_000)
        zones = [perimeter]
        for _ in range(SUBSTATIONS_PER_DSO):
            substation = add(perimeter, dso, dso, 1_000_000)
            zones.append(substation)
            for _ in range(FEEDERS_PER_SUBSTATION):
                feeder = add(substation, dso, dso, 250_000)
                zones.append(feeder)
                feeders.append(feeder)
                substation_of[feeder] = substation
        owned[dso.address] = zones
    console.print(f"zones: area {area}, {len(dsos)} DSO perimeters, {len(dsos) * SUBSTATIONS_PER_DSO} substations, "
                  f"{len(feeders)} feeders")

    # static lights: GREEN on perimeters and feeders, a 900 kW YELLOW on every substation
    for dso in dsos:
        for zone in owned[dso.address]:
            substation = zone not in feeders and zone != owned[dso.address][0]
            for direction in Direction:
                if substation:
                    grid.set_static_light(zone, direction, Colour.YELLOW, 900_000, sender=dso)
                else:
                    grid.set_static_light(zone, direction, Colour.GREEN, 0, sender=dso)

    day = params.day_start(conn.latest_timestamp()) + 2 * 86_400  # the day after tomorrow: well before gate closure
    yellow = red = 0
    publish_gas = 0
    for dso in dsos:
        words: list[int] = []
        for _zone in owned[dso.address]:
            congested = rng.random() < 0.4  # an evening peak on some zones
            day_lights: dict[Direction, list[Light | None]] = {}
            for direction in Direction:
                lights: list[Light | None] = []
                light: Light
                for q in range(params.isps_per_day):
                    if congested and 68 <= q < 84:  # 17:00-21:00
                        light = Light(Colour.RED) if direction is Direction.DOWN and 72 <= q < 76 else Light(
                            Colour.YELLOW, rng.randrange(50_000, 400_000, 10_000))
                    else:
                        lights.append(None)  # no dynamic light: the static one holds
                        continue
                    yellow += light.colour is Colour.YELLOW
                    red += light.colour is Colour.RED
                    lights.append(light)
                day_lights[direction] = lights
            words += pack_day(day_lights)
        tx = grid.publish_day(market, day, owned[dso.address], words, sender=dso)
        publish_gas += tx.gas_used or 0
        console.print(f"{dso.address[:10]}… published a day of lights for {len(owned[dso.address])} zones "
                      f"in one transaction ({tx.gas_used:,} gas)")

    shown = next((f for f in feeders if grid.effective_light(market, f, day + 70 * 900, Direction.UP).colour != Colour.GREEN), feeders[0])
    console.print(f"lights of feeder {shown} on {dt.datetime.fromtimestamp(day, dt.UTC).date()} "
                  "(one mark per 15-minute ISP: ▁ green, ▄ yellow, █ red):")
    half = params.isps_per_day // 2
    for direction in Direction:
        row = [Light.unpack(packed) for packed in grid.lights_of(market, shown, day, params.isps_per_day, direction).lights]
        console.print(Text(f"  {direction.name:<5}00-12h ") + _strip(row[:half]))
        console.print(Text(f"  {direction.name:<5}12-24h ") + _strip(row[half:]))
    allowed, headroom = grid.tso_headroom(market, shown, day + 70 * 900, Direction.UP)
    console.print(f"TSO headroom for feeder {shown} at 17:30 UP over its path "
                  f"{grid.path_to_root(shown)}: {'none' if not allowed else f'{headroom:,} W'}")
    return {
        "market": market, "isp_seconds": params.isp_seconds, "gate_closure_seconds": params.gate_closure_seconds,
        "zones": 1 + len(dsos) * (1 + SUBSTATIONS_PER_DSO * (1 + FEEDERS_PER_SUBSTATION)),
        "substations": len(dsos) * SUBSTATIONS_PER_DSO, "feeders": len(feeders), "yellow": yellow, "red": red,
        "publish_gas": publish_gas, "shown_feeder": shown,
        "feeders_of": {name: [f for f in feeders if f in owned[dso.address]]
                       for name, dso in zip(("DSO north", "DSO south"), dsos, strict=True)},
        "day": day, "area": area, "substation_of": substation_of,
    }
