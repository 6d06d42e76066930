"""The Python mirror of rule 1 and GridZones agree on random trees and lights (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flexledger.chain import revert_errors, structs
from flexledger.chain.bindings import GridZonesClient, MarketRegistryClient, RoleRegistryClient
from flexledger.chain.connection import ChainConnection
from flexledger.chain.manifest import Manifest
from flexledger.chain.transactions import Signer
from flexledger.identity import keys
from flexledger.identity.roles import Role
from flexledger.rules.grid import GridModel
from flexledger.rules.lights import (
    MAX_CAPABILITY_W,
    RED,
    Colour,
    Direction,
    Light,
    LightError,
    no_looser,
    pack_day,
    parse_direction,
    parse_light,
)
from flexledger.rules.market import MarketParams

ISP = 900
FOREVER = 2**64 - 1
UNLIMITED = 2**256 - 1
CHECKED = 8  # ISPs of the day drawn and compared

lights = st.one_of(
    st.just(Light(Colour.GREEN)),
    st.just(Light(Colour.RED)),
    st.builds(lambda c: Light(Colour.YELLOW, c), st.integers(0, MAX_CAPABILITY_W)),
    st.builds(lambda c: Light(Colour.YELLOW, c), st.integers(0, 5)),  # ties and small values
)


def setup_market(conn: ChainConnection, manifest: Manifest) -> tuple[GridZonesClient, Signer, Signer, int]:
    authority = keys.signer(keys.dev_accounts()[0], conn)
    tso, dso = Signer(keys.dev_accounts()[1], conn), Signer(keys.dev_accounts()[2], conn)
    roles = RoleRegistryClient(conn, manifest.address("RoleRegistry"), signer=authority)
    roles.issue_credential(tso.address, Role.TSO.id, 0, FOREVER, b"\x01" * 32)
    roles.issue_credential(dso.address, Role.DSO.id, 0, FOREVER, b"\x01" * 32)
    markets = MarketRegistryClient(conn, manifest.address("MarketRegistry"), signer=authority)
    market = markets.create_market(structs.MarketParams.like(MarketParams(isp_seconds=ISP))).event("MarketCreated").args["marketId"]
    return GridZonesClient(conn, manifest.address("GridZones")), tso, dso, market


@pytest.mark.slow
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_contract_and_mirror_agree(session_conn: ChainConnection, manifest: Manifest, data: st.DataObject) -> None:
    conn = session_conn
    snapshot = conn.snapshot()
    try:
        grid, tso, dso, market = setup_market(conn, manifest)
        model = GridModel()
        first = grid.zone_count() + 1
        count = data.draw(st.integers(1, 6), label="zones")
        operators: dict[int, Signer] = {}
        for i in range(count):
            zone_id = first + i
            parent = 0 if i == 0 else data.draw(st.integers(first, zone_id - 1), label="parent")
            operator = tso if i == 0 else dso  # the root is the TSO's area; below it, a DSO's zones
            adder = tso if parent == 0 else operators[parent]
            grid.add_zone(parent, operator.address, 10**9, sender=adder)
            model.add_zone(zone_id, parent, operator.address)
            operators[zone_id] = operator
            if parent:  # roots carry no lights
                for direction in Direction:
                    static = data.draw(st.one_of(st.none(), lights), label="static")
                    if static is not None:
                        grid.set_static_light(zone_id, direction, static.colour, static.capability_w, sender=operator)
                        model.set_static(zone_id, direction, static)
        day = (conn.latest_timestamp() // 86400 + 2) * 86400
        lit = [z for z in operators if z != first]
        words: list[int] = []
        for zone_id in lit:
            day_lights: dict[Direction, list[Light | None]] = {}
            for direction in Direction:
                row: list[Light | None] = [None] * 96
                for q in range(CHECKED):
                    light = data.draw(st.one_of(st.none(), lights), label="dynamic")
                    if light is not None and not no_looser(light, model.zones[zone_id].static.get(direction)):
                        light = None
                    row[q] = light
                    if light is not None:
                        model.set_dynamic(zone_id, direction, day + q * ISP, light)
                day_lights[direction] = row
            words += pack_day(day_lights)
        if lit:
            grid.publish_day(market, day, lit, words, sender=dso)
        # a static light changed after publication binds only where no dynamic light is set
        for zone_id in lit:
            changed = data.draw(st.one_of(st.none(), lights), label="static later")
            if changed is not None:
                grid.set_static_light(zone_id, Direction.UP, changed.colour, changed.capability_w, sender=dso)
                model.set_static(zone_id, Direction.UP, changed)

        for zone_id in operators:
            assert grid.path_to_root(zone_id) == model.path_to_root(zone_id)
            for direction in Direction:
                for q in range(CHECKED):
                    isp_start = day + q * ISP
                    expected = model.effective(zone_id, direction, isp_start)
                    assert grid.effective_light(market, zone_id, isp_start, direction) == (expected.colour, expected.capability_w)
                    allowed, cap = model.tso_headroom(zone_id, direction, isp_start)
                    got = grid.tso_headroom(market, zone_id, isp_start, direction)
                    assert got == (allowed, UNLIMITED if cap is None else cap)
    finally:
        conn.revert(snapshot)


def test_a_looser_dynamic_light_is_refused_by_both(conn: ChainConnection, manifest: Manifest) -> None:
    grid, tso, dso, market = setup_market(conn, manifest)
    root = grid.add_zone(0, tso.address, 0, sender=tso).event("ZoneAdded").args["zoneId"]
    zone = grid.add_zone(root, dso.address, 0, sender=tso).event("ZoneAdded").args["zoneId"]
    grid.set_static_light(zone, Direction.UP, Colour.YELLOW, 1000, sender=dso)
    day = (conn.latest_timestamp() // 86400 + 2) * 86400
    looser = Light(Colour.YELLOW, 2000)
    with pytest.raises(revert_errors.GridZonesLooserThanStatic) as err:
        grid.publish_day(market, day, [zone], pack_day({Direction.UP: [looser] * 96, Direction.DOWN: [None] * 96}), sender=dso)
    assert err.value.zone_id == zone and err.value.light == looser.pack()
    model = GridModel()
    model.add_zone(root, 0, tso.address)
    model.add_zone(zone, root, dso.address)
    model.set_static(zone, Direction.UP, Light(Colour.YELLOW, 1000))
    with pytest.raises(Exception, match="looser"):
        model.set_dynamic(zone, Direction.UP, day, looser)


def test_roots_carry_no_lights_in_both(conn: ChainConnection, manifest: Manifest) -> None:
    grid, tso, _dso, _market = setup_market(conn, manifest)
    root = grid.add_zone(0, tso.address, 0, sender=tso).event("ZoneAdded").args["zoneId"]
    with pytest.raises(revert_errors.RoleGatedMissingRole):  # lights are the DSO's instrument
        grid.set_static_light(root, Direction.UP, Colour.RED, 0, sender=tso)
    authority = keys.signer(keys.dev_accounts()[0], conn)
    RoleRegistryClient(conn, manifest.address("RoleRegistry"), signer=authority).issue_credential(
        tso.address, Role.DSO.id, 0, FOREVER, b"\x01" * 32)
    with pytest.raises(revert_errors.GridZonesRootHasNoLights):  # even for a TSO who is a DSO too
        grid.set_static_light(root, Direction.UP, Colour.RED, 0, sender=tso)
    model = GridModel()
    model.add_zone(root, 0, tso.address)
    with pytest.raises(Exception, match="roots carry no lights"):
        model.set_static(root, Direction.UP, Light(Colour.RED))


def test_capability_only_on_yellow() -> None:
    with pytest.raises(LightError):
        Light(Colour.RED, 5)
    with pytest.raises(LightError):
        Light(Colour.YELLOW, MAX_CAPABILITY_W + 1)
    assert Light.unpack(Light(Colour.YELLOW, 77).pack()) == Light(Colour.YELLOW, 77)


def test_a_light_as_a_dso_writes_it() -> None:
    assert parse_light(" yellow ", 5000) == Light(Colour.YELLOW, 5000)
    assert parse_light("Yellow", 0) == Light(Colour.YELLOW, 0)  # said, so meant
    assert parse_light("red", None) == RED and parse_direction("down") is Direction.DOWN
    for colour, capability, problem in (("orange", None, "not a light's colour"), ("unset", None, "not a light's colour"),
                                        ("YELLOW", None, "needs its capability"), ("RED", 5, "only a YELLOW")):
        with pytest.raises(LightError, match=problem):
            parse_light(colour, capability)
    with pytest.raises(LightError, match="not a direction") as caught:
        parse_direction("sideways")
    assert caught.value.hint == "use UP or DOWN"
