"""Issue 16's last residue, seen from Python: a portfolio's offer is judged on its members as of the
day's gate closure (members then, ACTIVE then, as mapped then), as ClearingCommitment judges it.
A DSO suspends a member after the aggregator posted, before the gate closure: the optimiser's
input leaves the offer out (``MarketDay.refused`` names the error), the commitment refuses an award
of it with a typed exception, and the auditor names such an award in altered data."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from chain_world import create_market, grant_roles
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from flexledger.audit.clearing import refused_at_closure
from flexledger.book.order_book import SignedOffer, relay_offers
from flexledger.chain import revert_errors, structs
from flexledger.chain.bindings import (
    AssetRegistryClient,
    ClearingCommitmentClient,
    GridZonesClient,
    OrderBookClient,
    SettlementTokenClient,
)
from flexledger.chain.connection import ChainConnection
from flexledger.chain.manifest import Manifest
from flexledger.chain.transactions import Signer
from flexledger.clearing.commitment import post_result
from flexledger.clearing.market_day import load_market_day
from flexledger.deployment import Deployment
from flexledger.grid.owners import register_with_meters
from flexledger.identity import keys
from flexledger.identity.eip712 import read_domain
from flexledger.identity.roles import Role
from flexledger.optimiser import clear
from flexledger.optimiser.results import Award
from flexledger.rules.assets import sign_consent
from flexledger.rules.clearing import violations
from flexledger.rules.lights import Direction
from flexledger.rules.market import MarketParams
from flexledger.rules.orders import (
    BaselineMethod,
    Mode,
    Offer,
    RequestParams,
    portfolio_closure_problem,
    portfolio_power,
)

ISP = 900


@dataclass
class Pool:
    conn: ChainConnection
    manifest: Manifest
    assets: AssetRegistryClient
    dso: Signer
    owner: Signer
    operator: Signer
    market: int
    day: int
    params: MarketParams
    members: list[int]
    portfolio: int
    offer: Offer  # the portfolio's: 30 kW UP, its three members 15 kW each

    @property
    def deployment(self) -> Deployment:
        return Deployment(self.conn, self.manifest)


@pytest.fixture
def pool(conn: ChainConnection, manifest: Manifest, deployer: Signer, dev_signers: list[Signer]) -> Pool:
    tso, dso, aggregator, operator = dev_signers[1:5]
    owner_key: LocalAccount = keys.dev_accounts()[7]
    owner = keys.signer(owner_key, conn)
    meters = [keys.new_account() for _ in range(3)]
    grant_roles(conn, manifest, deployer, [
        (tso.address, Role.TSO), (dso.address, Role.DSO), (aggregator.address, Role.AGGREGATOR),
        (owner.address, Role.PROSUMER), (operator.address, Role.CLEARING), *((m.address, Role.METER) for m in meters)])
    params = MarketParams()
    market = create_market(conn, manifest, deployer, params)
    grid = GridZonesClient(conn, manifest.address("GridZones"))
    root = grid.add_zone(0, tso.address, 0, sender=tso).event("ZoneAdded").args["zoneId"]
    feeder = grid.add_zone(root, dso.address, 10**6, sender=tso).event("ZoneAdded").args["zoneId"]
    assets = AssetRegistryClient(conn, manifest.address("AssetRegistry"))
    ids = [e.args["assetId"] for e in register_with_meters(assets, meters, [2] * 3, sender=owner).events
           if e.name == "AssetRegistered"]
    assets.map_assets(ids, [feeder] * 3, [15_000] * 3, [15_000] * 3, [market] * 3, sender=dso)
    deadline = conn.latest_timestamp() + 3600
    domain = read_domain(conn, assets.address)
    sigs = [sign_consent(owner_key, domain, aggregator.address, a, assets.consent_nonce(a), deadline) for a in ids]
    created = assets.create_portfolio(feeder, ids, sigs, deadline, sender=aggregator)
    portfolio = created.event("PortfolioCreated").args["portfolioId"]

    day = params.day_start(conn.latest_timestamp()) + 2 * 86_400
    hour = day + 68 * ISP
    book = OrderBookClient(conn, manifest.address("OrderBook"), signer=aggregator)
    token = SettlementTokenClient(conn, manifest.address("SettlementToken"))
    token.mint(aggregator.address, 10**9, sender=deployer)  # the portfolio's seller posts a bond
    token.approve(book.address, 10**9, sender=aggregator)
    book.post_bond(aggregator.address, 10**9, sender=aggregator)
    offer = Offer(market, 0, portfolio, hour, 1, Direction.UP, 30_000, 9_000, Mode.DIVISIBLE, 0,
                  BaselineMethod.COMMITTED, keccak(b"portfolio baseline"), day + 86_400, 1)
    signed = SignedOffer(offer, offer.sign(aggregator.account, read_domain(conn, book.address)))
    assert relay_offers(book, [signed]).accepted == 1, "the book takes it: 45 kW of active members now"
    token.mint(dso.address, 10**12, sender=deployer)
    token.approve(book.address, 2**256 - 1, sender=dso)
    book.post_request(structs.RequestParams.like(RequestParams(market, feeder, hour, 1, Direction.UP, 40_000, 20_000)), sender=dso)
    return Pool(conn, manifest, assets, dso, owner, operator, market, day, params, ids, portfolio, offer)


def at(p: Pool, t: int) -> None:
    p.conn.set_next_block_timestamp(t)
    p.conn.mine()


def words_at(p: Pool, t: int) -> list[int]:
    """The members' records at ``t``, as the Python side reads them (``membersAt``, ``offerWordAt``)."""
    return [p.assets.offer_word_at(a, t).word for a in p.assets.members_at(p.portfolio, t)]


def test_a_member_suspended_before_the_gate_closure_takes_the_portfolio_offer_out(pool: Pool) -> None:
    p = pool
    closure = p.params.gate_closure(p.day)
    x, _y, z = p.members
    at(p, closure - 60)
    p.assets.suspend_asset(x, sender=p.dso)  # posted with 45 kW; 30 kW at the gate closure
    at(p, closure + 1)
    p.assets.reinstate_asset(x, sender=p.dso)  # after the gate closure: too late for the day
    p.assets.remove_from_portfolio(z, sender=p.owner)  # left after it: still counts for the day
    p.assets.map_asset(z, p.assets.asset(z).zone, 1_000, 1_000, p.market, sender=p.dso)
    p.assets.deregister_asset(z, sender=p.owner)

    # the Python rule and the contract's view agree, before, at and after the gate closure
    for t in (closure - 61, closure, p.conn.latest_timestamp()):
        _aggregator, _zone, up_w, down_w = p.assets.portfolio_terms_at(p.portfolio, t)
        assert (portfolio_power(words_at(p, t), 0), portfolio_power(words_at(p, t), 1)) == (up_w, down_w), t
    assert portfolio_power(words_at(p, closure - 61), 0) == 45_000
    assert portfolio_power(words_at(p, closure), 0) == 30_000, "y and z: x suspended, z left only later"
    assert portfolio_power(words_at(p, p.conn.latest_timestamp()), 0) == 30_000, "x and y now"
    assert portfolio_closure_problem(words_at(p, closure), 0, 30_001) == "ClearingPortfolioTermsChanged"
    assert portfolio_closure_problem(words_at(p, closure), 0, 30_000) is None

    # 30 kW offered, 30 kW then: it stands; the optimiser may award it and the chain commits it
    loaded = load_market_day(p.deployment, p.market, p.day)
    key = "0x" + loaded.book.digests[p.offer].hex()
    assert [o.key for o in loaded.clearing.offers] == [key] and loaded.refused == {}
    result = clear(loaded.clearing)
    assert [a.offer_key for a in result.awards] == [key]
    clearing = ClearingCommitmentClient(p.conn, p.manifest.address("ClearingCommitment"))
    post_result(clearing, p.operator, p.market, p.day, result.awards, loaded.book, ISP)


def test_the_optimiser_leaves_out_and_the_chain_refuses_an_offer_above_the_power_at_the_gate_closure(
        pool: Pool) -> None:
    p = pool
    closure = p.params.gate_closure(p.day)
    x, y, _z = p.members
    at(p, closure - 60)
    p.assets.suspend_asset(x, sender=p.dso)
    p.assets.suspend_asset(y, sender=p.dso)  # 15 kW left at the gate closure, 30 kW offered
    at(p, closure + 1)
    loaded = load_market_day(p.deployment, p.market, p.day)
    key = "0x" + loaded.book.digests[p.offer].hex()
    assert loaded.clearing.offers == [], "left out whole: the contract judges the offer's signed power"
    assert loaded.refused == {key: "ClearingPortfolioTermsChanged"}
    assert clear(loaded.clearing).awards == []

    exploit = [Award(1, p.offer.start, key, 10_000, p.offer.price)]  # within 15 kW, yet the offer is 30 kW
    clearing = ClearingCommitmentClient(p.conn, p.manifest.address("ClearingCommitment"))
    with pytest.raises(revert_errors.ClearingPortfolioTermsChanged) as refused:
        post_result(clearing, p.operator, p.market, p.day, exploit, loaded.book, ISP)
    assert (refused.value.portfolio_id, refused.value.available_w, refused.value.power_w) == (p.portfolio, 15_000, 30_000)

    # altered data: were a contract to let it through, the auditor names the award and its rule
    lines = refused_at_closure(exploit, loaded.refused)
    assert len(lines) == 1 and "ClearingPortfolioTermsChanged" in lines[0] and key[:12] in lines[0], lines
    inp = loaded.clearing
    problems = violations(inp.offers, inp.requests, exploit, parent=inp.parent, lights=inp.lights, isp_seconds=ISP)
    assert any("unknown offer" in line for line in problems), problems
    assert refused_at_closure([a for a in exploit if a.offer_key != key], loaded.refused) == []
