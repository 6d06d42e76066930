"""A deployed market for the API's tests (built once per module on the session's anvil, rolled back
after each test), and the app over it with a fresh SQLite database (tests/api_world.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api_world import Api, Market
from chain_world import grant_roles
from fastapi.testclient import TestClient
from oracle_stores import STORES, store_url

from flexledger.api.app import create_app
from flexledger.api.settings import ApiSettings
from flexledger.chain import structs
from flexledger.chain.connection import ChainConnection
from flexledger.chain.manifest import Manifest
from flexledger.chain.transactions import Signer
from flexledger.deployment import Deployment
from flexledger.grid.owners import register_with_meters
from flexledger.identity import keys
from flexledger.identity.roles import Role
from flexledger.rules.market import MarketParams

SELLER_BOND = 1_000_000


@pytest.fixture(scope="module")
def market_chain(session_conn: ChainConnection, manifest: Manifest, deployer: Signer) -> Iterator[Market]:
    snapshot = session_conn.snapshot()
    signers = [keys.signer(a, session_conn) for a in keys.dev_accounts()]
    tso, dso, aggregator = signers[1], signers[2], signers[4]
    owner, owner2 = keys.dev_accounts()[5], keys.dev_accounts()[6]
    meters = [keys.new_account() for _ in range(3)]
    grant_roles(session_conn, manifest, deployer, [
        (tso.address, Role.TSO), (dso.address, Role.DSO), (aggregator.address, Role.AGGREGATOR),
        (owner.address, Role.PROSUMER), (owner2.address, Role.PROSUMER), *((m.address, Role.METER) for m in meters)])
    d = Deployment(session_conn, manifest, deployer)
    params = MarketParams()
    market = d.markets.create_market(structs.MarketParams.like(params)).event("MarketCreated").args["marketId"]
    root = d.zones.add_zone(0, tso.address, 0, sender=tso).event("ZoneAdded").args["zoneId"]
    feeder = d.zones.add_zone(root, dso.address, 1_000_000, sender=tso).event("ZoneAdded").args["zoneId"]
    owner_signer, owner2_signer = keys.signer(owner, session_conn), keys.signer(owner2, session_conn)
    ids = [register_with_meters(d.assets, [m], [2], sender=s).event("AssetRegistered").args["assetId"]
           for m, s in zip(meters, (owner_signer, owner_signer, owner2_signer), strict=True)]
    d.assets.map_assets(ids, [feeder] * 3, [10_000] * 3, [10_000] * 3, [market] * 3, sender=dso)
    for seller in (owner_signer, owner2_signer):  # a seller without free bond does not sell
        d.token.mint(seller.address, SELLER_BOND)
        d.token.approve(d.order_book.address, SELLER_BOND, sender=seller)
        d.order_book.post_bond(seller.address, SELLER_BOND, sender=seller)
    day = params.day_start(session_conn.latest_timestamp()) + 2 * 86_400
    yield Market(session_conn, manifest, deployer, aggregator, dso, owner, owner2, market, day, *ids)
    session_conn.revert(snapshot)


@pytest.fixture
def chain(market_chain: Market) -> Iterator[Market]:
    """The module's market, with whatever a test does to the chain rolled back after it."""
    snapshot = market_chain.conn.snapshot()
    yield market_chain
    market_chain.conn.revert(snapshot)


@pytest.fixture(params=STORES)
def api(request: pytest.FixtureRequest, chain: Market, tmp_path: Path) -> Iterator[Api]:
    """The app over SQLite, and over PostgreSQL when FLEXLEDGER_TEST_DATABASE_URL names one."""
    settings = ApiSettings(max_body_bytes=200_000)
    with store_url(request.param, tmp_path) as url:
        app = create_app(settings, chain.deployment, database_url=url)
        with TestClient(app, raise_server_exceptions=False) as client:
            yield Api(client, chain, settings, url)
        app.state.context.sessions.kw["bind"].dispose()  # the schema is dropped next: no connection may hold it
