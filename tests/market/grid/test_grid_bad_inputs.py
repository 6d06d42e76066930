"""Every bad input of the grid issue, refused by the contracts and raised as typed Python exceptions."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from eth_account.signers.local import LocalAccount

from flexledger.chain import revert_errors, structs
from flexledger.chain.bindings import (
    AssetRegistryClient,
    GridZonesClient,
    MarketRegistryClient,
    RoleRegistryClient,
)
from flexledger.chain.connection import ChainConnection
from flexledger.chain.manifest import Manifest
from flexledger.chain.transactions import Signer
from flexledger.grid.owners import register_with_meters
from flexledger.identity import keys
from flexledger.identity.eip712 import read_domain
from flexledger.identity.roles import Role
from flexledger.rules.assets import consent, sign_consent
from flexledger.rules.lights import Colour, Direction, Light, pack_day
from flexledger.rules.market import MarketParams

FOREVER = 2**64 - 1


@dataclass
class World:
    conn: ChainConnection
    grid: GridZonesClient
    assets: AssetRegistryClient
    tso: Signer
    dso1: Signer
    dso2: Signer
    owner: Signer
    owner2: Signer
    aggregator: Signer
    meters: list[LocalAccount]
    market: int
    day: int


@pytest.fixture
def world(conn: ChainConnection, manifest: Manifest, deployer: Signer, dev_signers: list[Signer]) -> World:
    tso, dso1, dso2, owner, owner2, aggregator = dev_signers[1:7]
    meters = [keys.new_account() for _ in range(3)]
    roles = RoleRegistryClient(conn, manifest.address("RoleRegistry"), signer=deployer)
    grants = [(tso, Role.TSO), (dso1, Role.DSO), (dso2, Role.DSO), (owner, Role.PROSUMER), (owner2, Role.PROSUMER),
              (aggregator, Role.AGGREGATOR)]
    subjects = [s.address for s, _ in grants] + [m.address for m in meters]
    ids = [r.id for _, r in grants] + [Role.METER.id] * len(meters)
    roles.issue_credentials(subjects, ids, [0] * len(ids), [FOREVER] * len(ids), [b"\x01" * 32] * len(ids))
    markets = MarketRegistryClient(conn, manifest.address("MarketRegistry"), signer=deployer)
    market = markets.create_market(structs.MarketParams.like(MarketParams())).event("MarketCreated").args["marketId"]
    grid = GridZonesClient(conn, manifest.address("GridZones"))
    grid.add_zone(0, tso.address, 0, sender=tso)  # 1
    grid.add_zone(1, dso1.address, 1_000_000, sender=tso)  # 2
    grid.add_zone(1, dso2.address, 1_000_000, sender=tso)  # 3
    grid.add_zone(2, dso1.address, 100_000, sender=dso1)  # 4: a feeder of DSO1
    day = (conn.latest_timestamp() // 86400 + 2) * 86400
    return World(conn, grid, AssetRegistryClient(conn, manifest.address("AssetRegistry")), tso, dso1, dso2, owner,
                 owner2, aggregator, meters, market, day)


def up_day(light: Light | None) -> list[int]:
    """A day of 24 hour words with every UP ISP set to ``light``."""
    return pack_day({Direction.UP: [light] * 96, Direction.DOWN: [None] * 96})


def test_lights_bad_inputs(world: World, deployer: Signer) -> None:
    g, day = world.grid, world.day
    g.set_static_light(4, Direction.UP, Colour.YELLOW, 50_000, sender=world.dso1)
    with pytest.raises(revert_errors.GridZonesLooserThanStatic) as looser:
        g.publish_day(world.market, day, [4], up_day(Light(Colour.GREEN)), sender=world.dso1)
    assert (looser.value.zone_id, looser.value.isp_start) == (4, day)
    with pytest.raises(revert_errors.GridZonesNotOperator) as err:
        g.publish_day(world.market, day, [4], [0] * 24, sender=world.dso2)
    assert (err.value.zone_id, err.value.account) == (4, world.dso2.address)
    with pytest.raises(revert_errors.GridZonesUnknownZone):
        g.publish_day(world.market, day, [99], [0] * 24, sender=world.dso1)
    with pytest.raises(revert_errors.GridZonesNotDayStart):
        g.publish_day(world.market, day + 900, [4], [0] * 24, sender=world.dso1)
    with pytest.raises(revert_errors.GridZonesNotAligned):  # an ISP start not aligned to the ISP length
        g.set_dynamic_light(world.market, 4, day + 450, Direction.UP, Colour.RED, 0, sender=world.dso1)
    with pytest.raises(revert_errors.GridZonesCapabilityNotAllowed):  # a capability on RED
        g.publish_day(world.market, day, [4], [Light(Colour.YELLOW, 5).pack() | (1 << 31) | (1 << 30)] + [0] * 23,
                      sender=world.dso1)
    with pytest.raises(revert_errors.GridZonesCapabilityNotAllowed):  # a capability on GREEN
        g.set_static_light(4, Direction.DOWN, Colour.GREEN, 10, sender=world.dso1)
    with pytest.raises(revert_errors.RoleGatedMissingRole):  # lights are the DSO's: not on the TSO's area
        g.set_static_light(1, Direction.UP, Colour.RED, 0, sender=world.tso)
    other = MarketRegistryClient(world.conn, g.markets(), signer=deployer).create_market(
        structs.MarketParams.like(MarketParams(isp_seconds=1800))).event("MarketCreated").args["marketId"]
    with pytest.raises(revert_errors.GridZonesUnsupportedIsp):
        g.publish_day(other, day, [4], [0] * 24, sender=world.dso1)
    # an update after gate closure
    g.publish_day(world.market, day, [4], up_day(Light(Colour.YELLOW, 10_000)), sender=world.dso1)
    world.conn.set_next_block_timestamp(day - 1800)  # half an hour before: the first ISPs are closed
    with pytest.raises(revert_errors.GridZonesAfterGateClosure) as closed:
        g.publish_day(world.market, day, [4], up_day(Light(Colour.RED)), sender=world.dso1, gas=2_000_000)
    assert closed.value.isp_start == day


def test_zone_bad_inputs(world: World) -> None:
    g = world.grid
    with pytest.raises(revert_errors.GridZonesUnknownZone):
        g.add_zone(g.zone_count() + 1, world.dso1.address, 0, sender=world.dso1)  # its own id: no cycles
    with pytest.raises(revert_errors.GridZonesNotOperator):
        g.add_zone(2, world.dso2.address, 0, sender=world.dso2)
    with pytest.raises(revert_errors.RoleGatedMissingRole):
        g.add_zone(0, world.dso1.address, 0, sender=world.dso1)  # a root needs a TSO
    parent = 4
    for _ in range(g.max_depth() - 2):
        parent = g.add_zone(parent, world.dso1.address, 0, sender=world.dso1).event("ZoneAdded").args["zoneId"]
    with pytest.raises(revert_errors.GridZonesTooDeep):
        g.add_zone(parent, world.dso1.address, 0, sender=world.dso1)


def test_asset_bad_inputs(world: World) -> None:
    a = world.assets
    a1 = register_with_meters(a, world.meters[:1], [1], sender=world.owner).event("AssetRegistered").args["assetId"]
    with pytest.raises(revert_errors.AssetNotZoneDso):
        a.map_asset(a1, 4, 1000, 1000, world.market, sender=world.dso2)  # the DSO of another zone
    with pytest.raises(revert_errors.AssetPowerAboveZoneLimit) as err:
        a.map_asset(a1, 4, 100_001, 0, world.market, sender=world.dso1)
    assert err.value.limit_w == 100_000
    a.map_asset(a1, 4, 10_000, 10_000, world.market, sender=world.dso1)
    a2 = register_with_meters(a, world.meters[1:2], [1], sender=world.owner2).event("AssetRegistered").args["assetId"]
    a.map_asset(a2, 2, 10_000, 10_000, world.market, sender=world.dso1)
    domain = read_domain(world.conn, a.address)
    deadline = world.conn.latest_timestamp() + 3600
    owner_key, owner2_key = keys.dev_accounts()[4], keys.dev_accounts()[5]
    s1 = sign_consent(owner_key, domain, world.aggregator.address, a1, a.consent_nonce(a1), deadline)
    s2 = sign_consent(owner2_key, domain, world.aggregator.address, a2, a.consent_nonce(a2), deadline)
    with pytest.raises(revert_errors.AssetOutsideZone):  # a portfolio spanning zones
        a.create_portfolio(4, [a1, a2], [s1, s2], deadline, sender=world.aggregator)
    with pytest.raises(revert_errors.AssetConsentInvalid):  # without its owner's consent
        a.create_portfolio(4, [a1], [s2], deadline, sender=world.aggregator)
    assert consent(domain, world.aggregator.address, a1, 0, deadline).digest() == a.consent_digest(
        world.aggregator.address, a1, 0, deadline)
    portfolio = a.create_portfolio(4, [a1], [s1], deadline, sender=world.aggregator).event("PortfolioCreated")
    assert portfolio.args["assets"] == [a1]
    with pytest.raises(revert_errors.AssetMeterTaken):
        register_with_meters(a, world.meters[:1], [1], sender=world.owner2)
