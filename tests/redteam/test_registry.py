"""Red-team findings on who may register, map and sell, seen from Python (issue 16: RT-5, RT-10,
RT-12): the meter's consent as the contract, the edge agent and eth-account hash it; the
optimiser's input judging membership and the aggregator's role at the gate closure, as the
clearing does."""

from __future__ import annotations

from pathlib import Path

import pytest
from chain_world import grant_roles
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount

from flexledger.chain import revert_errors
from flexledger.chain.bindings import AssetRegistryClient, GridZonesClient, RoleRegistryClient
from flexledger.chain.connection import ChainConnection
from flexledger.chain.manifest import Manifest
from flexledger.chain.transactions import Signer
from flexledger.clearing.market_day import in_market, sellable_at
from flexledger.errors import ConfigurationError
from flexledger.grid.owners import meter_consent, register_with_meters
from flexledger.identity import keys
from flexledger.identity.eip712 import read_domain
from flexledger.identity.roles import Role
from flexledger.optimiser import BuyerKind, OfferIn, RequestIn
from flexledger.optimiser.results import Award
from flexledger.rules.assets import meter_registration, sign_consent, sign_meter_registration
from flexledger.rules.clearing import violations
from flexledger.rules.lights import Direction
from flexledger.rules.market import MarketParams
from flexledger.rules.orders import (
    ASSET_ACTIVE,
    BondState,
    Offer,
    SubjectTerms,
    asset_zone,
    closure_problem,
    offer_problem,
)
from flexledger_edge.registration import sign_registration, write_registration


class World:
    def __init__(self, conn: ChainConnection, manifest: Manifest, deployer: Signer, dev_signers: list[Signer]) -> None:
        self.conn = conn
        self.tso, self.dso, self.aggregator, self.owner, self.squatter = dev_signers[1:6]
        self.owner_key = keys.dev_accounts()[4]
        self.meters = [keys.new_account() for _ in range(3)]
        self.roles = grant_roles(conn, manifest, deployer, [
            (self.tso.address, Role.TSO), (self.dso.address, Role.DSO), (self.aggregator.address, Role.AGGREGATOR),
            (self.owner.address, Role.PROSUMER), (self.squatter.address, Role.PROSUMER),
            *((m.address, Role.METER) for m in self.meters)])
        grid = GridZonesClient(conn, manifest.address("GridZones"))
        root = grid.add_zone(0, self.tso.address, 0, sender=self.tso).event("ZoneAdded").args["zoneId"]
        self.parent = {root: 0}
        self.zone = grid.add_zone(root, self.dso.address, 10**6, sender=self.tso).event("ZoneAdded").args["zoneId"]
        self.parent[self.zone] = root
        self.assets = AssetRegistryClient(conn, manifest.address("AssetRegistry"))
        self.domain = read_domain(conn, self.assets.address)

    def register(self, meter: LocalAccount) -> int:
        asset: int = register_with_meters(self.assets, [meter], [2], sender=self.owner).event("AssetRegistered").args["assetId"]
        self.assets.map_asset(asset, self.zone, 5_000, 5_000, 1, sender=self.dso)
        return asset

    def portfolio(self, asset: int) -> int:
        deadline = self.conn.latest_timestamp() + 3600
        sig = sign_consent(self.owner_key, self.domain, self.aggregator.address, asset, self.assets.consent_nonce(asset),
                           deadline)
        created = self.assets.create_portfolio(self.zone, [asset], [sig], deadline, sender=self.aggregator)
        portfolio: int = created.event("PortfolioCreated").args["portfolioId"]
        return portfolio

    def later(self, seconds: int) -> int:
        self.conn.request("evm_increaseTime", [seconds])
        self.conn.request("evm_mine", [])
        return self.conn.latest_timestamp()


@pytest.fixture
def world(conn: ChainConnection, manifest: Manifest, deployer: Signer, dev_signers: list[Signer]) -> World:
    return World(conn, manifest, deployer, dev_signers)


def test_rt12_meter_consent_hashes_alike_in_contract_rules_edge_and_eth_account(world: World) -> None:
    meter = world.meters[0]
    owner, deadline = world.owner.address, 1_893_456_000
    typed = meter_registration(world.domain, meter.address, owner, 2, 5, deadline)
    assert typed.digest() == world.assets.meter_registration_digest(meter.address, owner, 2, 5, deadline)
    terms, edge_sig = sign_registration(meter.key, owner, 2, 5, deadline, world.conn.chain_id, world.assets.address)
    assert Account.recover_message(encode_typed_data(full_message=terms.typed_data()), signature=edge_sig) == meter.address
    assert edge_sig == sign_meter_registration(meter, world.domain, owner, 2, 5, deadline)


def test_rt12_a_squatter_cannot_register_another_owners_meter(world: World, tmp_path: Path) -> None:
    meter = world.meters[0]
    deadline = world.conn.latest_timestamp() + 3600
    nonce = world.assets.meter_nonce(meter.address)
    owners_consent = sign_meter_registration(meter, world.domain, world.owner.address, 2, nonce, deadline)
    with pytest.raises(revert_errors.AssetMeterSignatureInvalid):  # the owner's consent, front-run
        world.assets.register_asset(meter.address, 2, deadline, owners_consent, sender=world.squatter)
    squatters = sign_meter_registration(world.squatter.account, world.domain, world.squatter.address, 2, nonce, deadline)
    with pytest.raises(revert_errors.AssetMeterSignatureInvalid):  # signed by someone else than the meter
        world.assets.register_asset(meter.address, 2, deadline, squatters, sender=world.squatter)

    # the owner registers with the file its gateway wrote
    terms, signature = sign_registration(meter.key, world.owner.address, 2, nonce, deadline, world.conn.chain_id,
                                         world.assets.address)
    write_registration(tmp_path / "consent.json", terms, signature)
    owned = AssetRegistryClient(world.conn, world.assets.address, signer=world.owner)
    with pytest.raises(ConfigurationError, match="asset type"):  # checked before it is sent
        meter_consent(owned, meter.address, 3, tmp_path / "consent.json", None)
    sig, until = meter_consent(owned, meter.address, 2, tmp_path / "consent.json", None)
    asset = owned.register_asset(meter.address, 2, until, sig).event("AssetRegistered").args["assetId"]
    assert world.assets.asset(asset).owner == world.owner.address
    with pytest.raises(ConfigurationError, match="needs its signed consent") as err:  # no consent: what to run
        meter_consent(owned, world.meters[1].address, 2, None, None)
    assert "flexledger-edge sign-registration" in str(err.value.hint)

    # deregistration frees the meter; the spent consent does not register it again
    owned.deregister_asset(asset)
    assert world.assets.asset_of_meter(meter.address) == 0
    with pytest.raises(revert_errors.AssetMeterSignatureInvalid):
        world.assets.register_asset(meter.address, 2, until, sig, sender=world.owner)


def test_rt5_the_optimiser_judges_membership_at_the_gate_closure(world: World) -> None:
    x, y = world.register(world.meters[0]), world.register(world.meters[1])
    before = world.conn.latest_timestamp()
    world.later(100)
    p = world.portfolio(x)
    joined = world.conn.latest_timestamp()
    world.later(100)
    world.assets.remove_from_portfolio(x, sender=world.owner)  # after the (chosen) gate closure
    left = world.conn.latest_timestamp()
    subjects = {(x, 0), (y, 0), (0, p)}
    assert sellable_at(world.assets, world.roles, subjects, joined + 10) == {(y, 0), (0, p)}, \
        "x was P's at the gate closure: its own offer is out, P counts it"
    assert sellable_at(world.assets, world.roles, subjects, before) == subjects, "x joined after: its own offer counts"
    assert sellable_at(world.assets, world.roles, subjects, left) == subjects, "x had left by then"
    assert world.assets.members_at(p, joined + 10) == [x] and world.assets.members_at(p, before) == []


def test_rt10_a_revoked_aggregator_sells_nothing_from_its_revocation(world: World) -> None:
    p = world.portfolio(world.register(world.meters[0]))
    held = world.later(10)
    world.later(10)
    roles = RoleRegistryClient(world.conn, world.roles.address, signer=world.roles.signer)
    roles.revoke_credential(world.aggregator.address, Role.AGGREGATOR.id)
    revoked = world.conn.latest_timestamp()
    assert sellable_at(world.assets, world.roles, {(0, p)}, held) == {(0, p)}, "credentialed at that gate closure"
    assert sellable_at(world.assets, world.roles, {(0, p)}, revoked) == set(), "revoked by that gate closure"


def test_rt5_the_auditor_flags_an_award_of_an_offer_the_gate_closure_rules_out(world: World) -> None:
    """Altered data: were a contract to let x's own offer through while x was in a portfolio at the
    gate closure, the auditor's feasibility check (its input is the sellable book) names it."""
    x, y = world.register(world.meters[0]), world.register(world.meters[1])
    world.later(10)
    p = world.portfolio(x)
    closure = world.later(10)
    world.later(10)
    world.assets.remove_from_portfolio(x, sender=world.owner)
    start = (closure // 900 + 100) * 900
    key = {(x, 0): "0x01", (y, 0): "0x02", (0, p): "0x03"}
    sellable = sellable_at(world.assets, world.roles, set(key), closure)
    offers = [OfferIn(key[s], world.zone, start, 1, Direction.UP, 5_000, 100) for s in sorted(sellable)]
    requests = [RequestIn(1, BuyerKind.DSO, world.zone, start, 1, Direction.UP, 20_000, 1_000)]
    honest = [Award(1, start, key[(y, 0)], 5_000, 100), Award(1, start, key[(0, p)], 5_000, 100)]
    assert violations(offers, requests, honest, parent=world.parent, lights={}, isp_seconds=900) == []
    exploit = [*honest, Award(1, start, key[(x, 0)], 5_000, 100)]
    problems = violations(offers, requests, exploit, parent=world.parent, lights={}, isp_seconds=900)
    assert any("unknown offer" in line for line in problems), problems


# ------------------------------------------------------------------ one market per ISP (issue 16)

MARKET_CHANGE_LEAD = 31 * 86_400  # AssetRegistry.MARKET_CHANGE_LEAD


def test_an_asset_sells_in_one_market_per_isp_and_a_change_binds_beyond_the_horizon(world: World) -> None:
    x = world.register(world.meters[0])  # mapped for market 1
    now = world.conn.latest_timestamp()
    soon = MarketParams().day_start(now) + 2 * 86_400 + 8 * 3600  # open in the book: before its gate closure
    assert in_market(world.assets, x, 0, 1, soon, soon + 900)
    assert not in_market(world.assets, x, 0, 2, soon, soon + 900), "RT-3 across markets: market 2 may not sell x"
    with pytest.raises(revert_errors.AssetMarketMismatch):
        world.assets.map_asset(x, world.zone, 5_000, 5_000, 0, sender=world.dso)
    changed = world.assets.map_asset(x, world.zone, 5_000, 5_000, 2, sender=world.dso)
    starts = changed.event("AssetMarketSet").args["from"]
    assert starts == world.conn.latest_timestamp() + MARKET_CHANGE_LEAD
    assert world.assets.market_for(x, soon, soon + 900) == 1, "an ISP that may be offered already stays in market 1"
    assert world.assets.market_for(x, starts, starts + 900) == 2
    assert world.assets.market_for(x, starts - 1, starts + 1) == 0, "a window across the change has no market"
    assert world.assets.offer_word(x) >> 188 & 15 == 0, "the word defers to the history while a change is pending"
    terms = SubjectTerms(world.owner.address, ASSET_ACTIVE, False, 5_000, 5_000, 0, BondState(1, 0, 0, 0, False),
                         world.assets.market_for(x, soon, soon + 900))
    wrong = Offer(market=2, asset=x, portfolio=0, start=soon, isps=1, direction=0, power_w=1_000, price=100, mode=0,
                  min_power_w=0, baseline_method=1, baseline=bytes(32), expiry=soon, nonce=1)
    assert offer_problem(wrong, signer=world.owner.address, relayer=world.owner.address, relayer_is_aggregator=False,
                         params=MarketParams(), now=now, terms=terms) == "OrderBookWrongMarket"


def test_a_portfolio_shares_its_members_market(world: World) -> None:
    x, y = world.register(world.meters[0]), world.register(world.meters[1])
    world.assets.map_asset(y, world.zone, 5_000, 5_000, 2, sender=world.dso)  # y: a change of market is pending
    with pytest.raises(revert_errors.AssetMarketMismatch):
        world.portfolio(y)
    p = world.portfolio(x)
    assert world.assets.market_of_portfolio(p) == 1
    assert in_market(world.assets, 0, p, 1, 0, 0) and not in_market(world.assets, 0, p, 2, 0, 0)


def test_the_mapping_is_judged_at_the_gate_closure(world: World) -> None:
    """Zone, status and prequalified power as of the gate closure, as ClearingCommitment reads them;
    altered data (an award of an offer the gate closure rules out) is flagged by the auditor."""
    x, y = world.register(world.meters[0]), world.register(world.meters[1])
    world.later(10)
    world.assets.suspend_asset(x, sender=world.dso)
    world.assets.map_asset(y, world.zone, 2_000, 5_000, 1, sender=world.dso)  # 5 kW up -> 2 kW up
    closure = world.later(10)
    world.later(10)
    world.assets.reinstate_asset(x, sender=world.dso)  # after the gate closure: too late for that day
    world.assets.map_asset(y, world.zone, 5_000, 5_000, 1, sender=world.dso)

    def problem(asset: int, t: int, power_w: int) -> str | None:
        then, portfolio = world.assets.offer_word_at(asset, t)
        return closure_problem(world.assets.offer_word(asset), then, portfolio, 0, power_w)

    assert problem(x, closure, 1_000) == "ClearingAssetTermsChanged", "suspended at the gate closure"
    assert problem(x, closure - 15, 1_000) is None, "active before"
    assert problem(y, closure, 3_000) == "ClearingAssetTermsChanged", "2 kW prequalified then"
    assert problem(y, closure, 2_000) is None
    assert asset_zone(world.assets.offer_word_at(y, closure).word) == world.zone

    start = (closure // 900 + 100) * 900
    key = {x: "0x01", y: "0x02"}
    offers = [OfferIn(key[a], world.zone, start, 1, Direction.UP, 3_000, 100) for a in (x, y)
              if problem(a, closure, 3_000) is None]
    assert offers == [], "neither offer could be sold as mapped at the gate closure"
    requests = [RequestIn(1, BuyerKind.DSO, world.zone, start, 1, Direction.UP, 20_000, 1_000)]
    exploit = [Award(1, start, key[y], 3_000, 100)]
    problems = violations(offers, requests, exploit, parent=world.parent, lights={}, isp_seconds=900)
    assert any("unknown offer" in line for line in problems), problems
