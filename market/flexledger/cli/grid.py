"""`flexledger market` and `flexledger grid`: markets, zones and traffic lights."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table
from rich.text import Text

from flexledger.cli.context import deployment
from flexledger.cli.options import DayOption, JsonOption, KeyOption, MarketOption
from flexledger.cli.output import console, emit_json
from flexledger.errors import ConfigurationError
from flexledger.grid.lights_file import plan, read_lights_file
from flexledger.rules.lights import (
    LIGHT_ISP_SECONDS,
    Colour,
    Direction,
    Light,
    parse_direction,
    parse_light,
)
from flexledger.rules.market import DAY, MarketParams, PricingRule

if TYPE_CHECKING:
    from flexledger.chain.bindings import AssetRegistryClient

market_app = typer.Typer(help="Create markets and read their parameters (ISP length, gate closure, windows...).", no_args_is_help=True)
grid_app = typer.Typer(help="The grid: zones (TSO area > DSO perimeter > substation > feeder) and traffic lights.", no_args_is_help=True)
zone_app = typer.Typer(help="Add and inspect zones.", no_args_is_help=True)
lights_app = typer.Typer(help="Publish and show traffic lights (DESIGN.md rule 1).", no_args_is_help=True)
grid_app.add_typer(zone_app, name="zone")
grid_app.add_typer(lights_app, name="lights")


@market_app.command("create")
def market_create(
    isp_seconds: int = typer.Option(900, help="ISP length in seconds (must divide a day)."),
    gate_closure_seconds: int = typer.Option(3600, help="How long before an ISP nothing about it may change."),
    day_offset_seconds: int = typer.Option(0, help="Market-day boundary after 00:00 UTC."),
    tolerance_bps: int = typer.Option(500, help="Delivery tolerance, basis points."),
    penalty_factor_bps: int = typer.Option(15000, help="Penalty factor, basis points of the price."),
    pricing: str = typer.Option("PAY_AS_BID", help="PAY_AS_BID or PAY_AS_CLEARED."),
    challenge_window_seconds: int = typer.Option(3600, help="Clearing challenge window."),
    dispute_window_seconds: int = typer.Option(172800, help="Settlement dispute window."),
    key: Path | None = KeyOption,
    json_: bool = JsonOption,
) -> None:
    """Create a market (the market authority only); its parameters never change afterwards."""
    try:
        rule = PricingRule[pricing.upper()]
    except KeyError:
        raise ConfigurationError(f"unknown pricing rule {pricing!r}", hint="PAY_AS_BID or PAY_AS_CLEARED") from None
    params = MarketParams(isp_seconds, gate_closure_seconds, day_offset_seconds, tolerance_bps, penalty_factor_bps,
                          rule, challenge_window_seconds, dispute_window_seconds)
    from flexledger.chain import structs

    markets = deployment(key).markets
    tx = markets.create_market(structs.MarketParams.like(params))
    market_id = tx.event("MarketCreated").args["marketId"]
    if json_:
        emit_json({"market": market_id, "params": params.__dict__ | {"pricing_rule": rule.name}, "tx_hash": tx.tx_hash})
    else:
        console.print(f"[green]market {market_id} created[/] ({isp_seconds} s ISPs, gate closure {gate_closure_seconds} s ahead)")


@market_app.command("show")
def market_show(market: int = typer.Argument(1, help="The market id."), json_: bool = JsonOption) -> None:
    """Print a market's parameters, as every contract reads them."""
    chain = deployment(sign=False)
    params = chain.params(market)
    data = params.__dict__ | {"pricing_rule": params.pricing_rule.name}
    if json_:
        emit_json({"market": market, "params": data})
    else:
        for k, v in data.items():
            console.print(f"{k:<26} {v}")


@market_app.command("dispatcher")
def market_dispatcher(
    market: int = typer.Argument(1, help="The market id."),
    set_: str | None = typer.Option(None, "--set", help="Name this address (0x...) the market's dispatcher "
                                    "(the market authority only); 0x000...0 stops every gateway."),
    key: Path | None = KeyOption,
    json_: bool = JsonOption,
) -> None:
    """Show (or set) the key whose EIP-712 activation orders the market's gateways execute."""
    from flexledger.identity.did import subject_address

    markets = deployment(key, sign=set_ is not None).markets
    tx_hash = None
    if set_ is not None:
        tx_hash = markets.set_dispatcher(market, subject_address(set_)).tx_hash
    dispatcher = markets.dispatcher(market)
    if json_:
        emit_json({"market": market, "dispatcher": dispatcher, "tx_hash": tx_hash})
    else:
        console.print(f"market {market}'s dispatcher: {dispatcher}" + (" [green](set)[/]" if tx_hash else ""))


@zone_app.command("add")
def zone_add(
    parent: int = typer.Option(0, "--parent", help="Parent zone id (0 for a TSO area)."),
    operator: str | None = typer.Option(None, "--operator", help="The new zone's operator (DSO or TSO; default: you)."),
    max_asset_power: int = typer.Option(0, "--max-asset-power", help="Largest prequalified power of one asset in the zone (W)."),
    key: Path | None = KeyOption,
    json_: bool = JsonOption,
) -> None:
    """Add a zone: a TSO adds its area (parent 0); a zone's operator adds zones beneath it."""
    grid = deployment(key).zones
    assert grid.signer is not None
    tx = grid.add_zone(parent, operator or grid.signer.address, max_asset_power)
    zone_id = tx.event("ZoneAdded").args["zoneId"]
    if json_:
        emit_json({"zone": zone_id, "parent": parent, "tx_hash": tx.tx_hash})
    else:
        console.print(f"[green]zone {zone_id} added[/] under {parent or 'no parent (a TSO area)'}")


@zone_app.command("show")
def zone_show(zone: int = typer.Argument(..., help="The zone id."), json_: bool = JsonOption) -> None:
    """Print a zone, its static lights and its path to the root."""
    grid = deployment(sign=False).zones
    parent, depth, operator, cap, up, down = grid.zone(zone)
    data = {"zone": zone, "parent": parent, "operator": operator, "depth": depth, "max_asset_power_w": cap,
            "static_up": str(Light.unpack(up)) if up else None, "static_down": str(Light.unpack(down)) if down else None,
            "path_to_root": grid.path_to_root(zone)}
    if json_:
        emit_json(data)
    else:
        for k, v in data.items():
            console.print(f"{k:<18} {v}")


@lights_app.command("static")
def lights_static(
    zone: int = typer.Option(..., "--zone", help="The zone."),
    direction: str = typer.Option(..., "--direction", help="UP or DOWN."),
    colour: str = typer.Option(..., "--colour", help="GREEN, YELLOW or RED."),
    capability: int | None = typer.Option(None, "--capability", min=0,
                                          help="Capability in W the TSO may use (YELLOW only, and needed there)."),
    key: Path | None = KeyOption,
    json_: bool = JsonOption,
) -> None:
    """Set a zone's static light for one direction (the zone's operator only)."""
    light = parse_light(colour, capability)
    grid = deployment(key).zones
    tx = grid.set_static_light(zone, parse_direction(direction), light.colour, light.capability_w)
    if json_:
        emit_json({"zone": zone, "direction": direction.upper(), "light": str(light), "tx_hash": tx.tx_hash})
    else:
        console.print(f"static light of zone {zone} {direction.upper()}: {light}")


@lights_app.command("publish")
def lights_publish(
    file: Path = typer.Argument(..., help="CSV or JSON: zone, isp_start, direction, colour, capability_w (see the README)."),
    market: int = MarketOption,
    key: Path | None = KeyOption,
    json_: bool = JsonOption,
) -> None:
    """Publish dynamic lights from a file, one transaction per market day; entries not in the file keep their value."""
    chain = deployment(key)
    grid, params = chain.zones, chain.params(market)
    entries = read_lights_file(file, params)
    publications = plan(entries, params, lambda z, hour: grid.lights_word(market, z, hour))
    results = []
    for pub in publications:
        day = dt.datetime.fromtimestamp(pub.day_start, dt.UTC).date().isoformat()
        with console.status(f"publishing the day {day} for {len(pub.zones)} zones..."):
            tx = grid.publish_day(market, pub.day_start, pub.zones, pub.words)
        results.append({"day_start": pub.day_start, "zones": pub.zones, "tx_hash": tx.tx_hash, "gas_used": tx.gas_used})
        if not json_:
            console.print(f"[green]published[/] the day {day} for {len(pub.zones)} zones ({tx.gas_used:,} gas)")
    if json_:
        emit_json({"entries": len(entries), "days": results})
    else:
        console.print(f"{len(entries)} lights from {file}")


_STYLE = {Colour.GREEN: "black on green", Colour.YELLOW: "black on yellow", Colour.RED: "white on red"}


@lights_app.command("show")
def lights_show(
    zone: int = typer.Option(..., "--zone", help="The zone."),
    day: str = DayOption,
    market: int = MarketOption,
    json_: bool = JsonOption,
) -> None:
    """Show the lights in force for a zone over a market day, and the TSO headroom along its path."""
    chain = deployment(sign=False)
    grid, params = chain.zones, chain.params(market)
    start = params.day_start(int(dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC).timestamp()) + params.day_offset_seconds)
    # lights follow 15-minute ISPs whatever the market's own ISP
    isps = [start + q * LIGHT_ISP_SECONDS for q in range(DAY // LIGHT_ISP_SECONDS)]
    per_direction = {d: grid.lights_of(market, zone, start, len(isps), d) for d in Direction}
    rows = []
    for q, t in enumerate(isps):
        row: dict[str, object] = {"isp_start": t}
        for d in Direction:
            packed, headroom = per_direction[d][0][q], per_direction[d][1][q]
            row[d.name] = {"light": str(Light.unpack(packed)), "tso_allowed": headroom > 0,
                           "tso_headroom_w": None if headroom == 2**256 - 1 else headroom}
        rows.append(row)
    if json_:
        emit_json({"zone": zone, "market": market, "day_start": start, "isps": rows})
        return
    table = Table(title=f"zone {zone}, market {market}, day {day} (UTC)", show_lines=False)
    table.add_column("time")
    for d in Direction:
        table.add_column(f"{d.name} (TSO headroom)")
    for row in rows:
        cells: list[Text | str] = [dt.datetime.fromtimestamp(int(row["isp_start"]), dt.UTC).strftime("%H:%M")]  # type: ignore[call-overload]
        for d in Direction:
            info = row[d.name]
            assert isinstance(info, dict)
            light = str(info["light"])
            colour = Colour[light.split()[0]]
            room = "no" if not info["tso_allowed"] else "any" if info["tso_headroom_w"] is None else f"{info['tso_headroom_w']:,} W"
            cells.append(Text(f" {light:<18} ", style=_STYLE[colour]) + Text(f" {room}"))
        table.add_row(*cells)
    console.print(table)


asset_app = typer.Typer(help="Register assets (owners), map and suspend them (the zone's DSO).", no_args_is_help=True)
grid_app.add_typer(asset_app, name="asset")


def _assets(key: Path | None) -> AssetRegistryClient:
    return deployment(key).assets


@asset_app.command("register")
def asset_register(
    meter: str = typer.Argument(..., help="The meter's address or did:ethr (it must hold the METER role)."),
    asset_type: int = typer.Option(0, "--type", help="Asset type code: 0 other, 1 PV, 2 battery, 3 heat pump, 4 EV charger, 5 industrial load."),
    meter_signature: Path | None = typer.Option(
        None, "--meter-signature", exists=True, dir_okay=False,
        help="The meter's signed consent, written by its gateway: flexledger-edge sign-registration."),
    meter_key: Path | None = typer.Option(
        None, "--meter-key", exists=True, dir_okay=False,
        help="Development: the meter's keystore, to sign its consent here (password: FLEXLEDGER_METER_KEY_PASSWORD)."),
    key: Path | None = KeyOption,
    json_: bool = JsonOption,
) -> None:
    """Register an asset behind a meter, with the meter's consent; it stays pending until the zone's DSO maps it."""
    from flexledger.grid.owners import meter_consent
    from flexledger.identity.did import subject_address

    assets = _assets(key)
    address = subject_address(meter, assets.conn.chain_id)
    signature, deadline = meter_consent(assets, address, asset_type, meter_signature, meter_key)
    tx = assets.register_asset(address, asset_type, deadline, signature)
    asset_id = tx.event("AssetRegistered").args["assetId"]
    if json_:
        emit_json({"asset": asset_id, "status": "PENDING", "tx_hash": tx.tx_hash})
    else:
        console.print(f"[green]asset {asset_id} registered[/] (pending until its DSO maps it)")


@asset_app.command("deregister")
def asset_deregister(
    asset: int = typer.Argument(..., help="The asset id."),
    key: Path | None = KeyOption,
    json_: bool = JsonOption,
) -> None:
    """Deregister an asset, freeing its meter: its owner (out of any portfolio), or a DSO while it is pending."""
    tx = _assets(key).deregister_asset(asset)
    if json_:
        emit_json({"asset": asset, "status": "NONE", "tx_hash": tx.tx_hash})
    else:
        console.print(f"asset {asset} deregistered: its meter is free")


@asset_app.command("hand-over")
def asset_hand_over(
    asset: int = typer.Argument(..., help="The asset id."),
    zone: int = typer.Option(..., "--zone", help="The zone whose DSO may map it next (0 withdraws the hand-over)."),
    key: Path | None = KeyOption,
    json_: bool = JsonOption,
) -> None:
    """Hand an asset over to another DSO's zone (the DSO of its current zone); that DSO then maps it."""
    tx = _assets(key).hand_over_asset(asset, zone)
    if json_:
        emit_json({"asset": asset, "zone": zone, "tx_hash": tx.tx_hash})
    else:
        console.print(f"asset {asset} handed over to zone {zone}: its DSO maps it there with `asset map`")


@asset_app.command("map")
def asset_map(
    asset: int = typer.Argument(..., help="The asset id."),
    zone: int = typer.Option(..., "--zone", help="The zone it is connected in."),
    up: int = typer.Option(..., "--up", help="Prequalified power upwards (W)."),
    down: int = typer.Option(..., "--down", help="Prequalified power downwards (W)."),
    market: int = typer.Option(..., "--market", help="The market it sells in; a change binds 31 days ahead."),
    key: Path | None = KeyOption,
    json_: bool = JsonOption,
) -> None:
    """Map an asset to a zone with its prequalified power and market (a DSO operating that zone)."""
    tx = _assets(key).map_asset(asset, zone, up, down, market)
    changes = [e for e in tx.events if e.name == "AssetMarketSet"]
    binds_from = changes[0].args["from"] if changes else None
    if json_:
        emit_json({"asset": asset, "zone": zone, "up_w": up, "down_w": down, "market": market,
                   "market_from": binds_from, "status": "ACTIVE", "tx_hash": tx.tx_hash})
    else:
        console.print(f"[green]asset {asset} mapped[/] to zone {zone}: {up:,} W up, {down:,} W down, market {market}"
                      + (f" (for ISPs from {binds_from})" if binds_from else ""))


@asset_app.command("suspend")
def asset_suspend(
    asset: int = typer.Argument(..., help="The asset id."),
    reinstate: bool = typer.Option(False, "--reinstate", help="Reinstate a suspended asset instead."),
    key: Path | None = KeyOption,
    json_: bool = JsonOption,
) -> None:
    """Suspend an asset (or --reinstate it); the zone's DSO only."""
    assets = _assets(key)
    tx = assets.reinstate_asset(asset) if reinstate else assets.suspend_asset(asset)
    status = "ACTIVE" if reinstate else "SUSPENDED"
    if json_:
        emit_json({"asset": asset, "status": status, "tx_hash": tx.tx_hash})
    else:
        console.print(f"asset {asset}: {status}")


@asset_app.command("show")
def asset_show(asset: int = typer.Argument(..., help="The asset id."), json_: bool = JsonOption) -> None:
    """Print an asset: owner, meter, zone, status, power, portfolio."""
    assets = deployment(sign=False).assets
    owner, zone, status, kind, portfolio, meter, up, down = assets.asset(asset)
    data = {"asset": asset, "owner": owner, "meter": meter, "zone": zone, "status": STATUS[status], "type": kind,
            "up_w": up, "down_w": down, "portfolio": portfolio}
    if json_:
        emit_json(data)
    else:
        for k, v in data.items():
            console.print(f"{k:<10} {v}")


STATUS = {0: "NONE", 1: "PENDING", 2: "ACTIVE", 3: "SUSPENDED"}
