"""The clearing commitment from Python: committing the optimiser's result, each rule breach refused
with its own typed error, challenges, finality, the auditor, and the Python rules agreeing with
the contract on random award sets."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from chain_world import create_market, grant_roles
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import flexledger.audit.clearing as audit_module
import flexledger.book.order_book as book_module
from flexledger.audit.clearing import audit_clearing
from flexledger.book.order_book import BookDigestMismatchError, SignedOffer, relay_offers
from flexledger.chain import revert_errors, structs
from flexledger.chain.bindings import (
    AssetRegistryClient,
    ClearingCommitmentClient,
    GridZonesClient,
    OrderBookClient,
    SettlementTokenClient,
)
from flexledger.chain.connection import ChainConnection
from flexledger.chain.errors import ContractRevertError
from flexledger.chain.manifest import Manifest
from flexledger.chain.transactions import Signer
from flexledger.clearing.commitment import (
    CommitmentError,
    CommittedResult,
    Group,
    ResultStatus,
    day_state,
    find_superseded,
    groups_of,
    post_result,
    prove_superseded,
    read_result,
    wire,
)
from flexledger.clearing.market_day import MarketDay, load_market_day
from flexledger.cli.app import app
from flexledger.config import load_settings
from flexledger.deployment import Deployment
from flexledger.grid.owners import register_with_meters
from flexledger.identity import keys
from flexledger.identity.eip712 import read_domain
from flexledger.identity.roles import Role
from flexledger.optimiser import clear
from flexledger.optimiser.results import Award
from flexledger.rules.clearing import stage_welfare, violations
from flexledger.rules.lights import Colour, Direction
from flexledger.rules.market import MarketParams
from flexledger.rules.orders import BaselineMethod, Mode, Offer, RequestParams, newest_overlapping
from flexledger.times import iso

ISP = 900


@dataclass
class Day:
    conn: ChainConnection
    manifest: Manifest
    clearing: ClearingCommitmentClient
    operator: Signer
    stranger: Signer
    market: int
    day: int
    params: MarketParams
    offers: dict[str, Offer]  # by name

    @property
    def deployment(self) -> Deployment:
        return Deployment(self.conn, self.manifest)


@pytest.fixture
def market_day(conn: ChainConnection, manifest: Manifest, deployer: Signer, dev_signers: list[Signer]) -> Day:
    """Feeder 4 (DSO 1) under perimeter 2, perimeter 3 (DSO 2), both under the TSO's root 1; feeder 4
    is YELLOW for the TSO at 12 kW UP. Offers in feeder 4 and perimeter 3; a DSO request on feeder 4
    and a TSO request on the root, the same hour."""
    tso, dso1, dso2, aggregator, operator, stranger = dev_signers[1:7]
    owner: LocalAccount = keys.dev_accounts()[7]
    meter_keys = [keys.new_account() for _ in range(6)]
    meters = [m.address for m in meter_keys]
    grants = [(tso.address, Role.TSO), (dso1.address, Role.DSO), (dso2.address, Role.DSO),
              (aggregator.address, Role.AGGREGATOR), (owner.address, Role.PROSUMER), (operator.address, Role.CLEARING),
              *((m, Role.METER) for m in meters)]
    grant_roles(conn, manifest, deployer, grants)
    params = MarketParams()
    market = create_market(conn, manifest, deployer, params)
    grid = GridZonesClient(conn, manifest.address("GridZones"))
    root = grid.add_zone(0, tso.address, 0, sender=tso).event("ZoneAdded").args["zoneId"]
    p1 = grid.add_zone(root, dso1.address, 10**6, sender=tso).event("ZoneAdded").args["zoneId"]
    p2 = grid.add_zone(root, dso2.address, 10**6, sender=tso).event("ZoneAdded").args["zoneId"]
    feeder = grid.add_zone(p1, dso1.address, 10**6, sender=dso1).event("ZoneAdded").args["zoneId"]
    grid.set_static_light(feeder, Direction.UP, Colour.YELLOW, 12_000, sender=dso1)
    assets = AssetRegistryClient(conn, manifest.address("AssetRegistry"))
    owner_signer = keys.signer(owner, conn)
    ids = [e.args["assetId"] for e in register_with_meters(assets, meter_keys, [2] * 6, sender=owner_signer).events
           if e.name == "AssetRegistered"]
    assets.map_assets(ids[:5], [feeder] * 5, [20_000] * 5, [20_000] * 5, [market] * 5, sender=dso1)
    assets.map_assets(ids[5:], [p2], [20_000], [20_000], [market], sender=dso2)
    day = params.day_start(conn.latest_timestamp()) + 2 * 86_400
    hour = day + 68 * ISP
    book = OrderBookClient(conn, manifest.address("OrderBook"), signer=aggregator)
    domain = read_domain(conn, book.address)

    def offer(asset: int, price: int, power: int, *, isps: int = 1, mode: Mode = Mode.DIVISIBLE, minimum: int = 0,
              start: int = hour) -> Offer:
        return Offer(market, asset, 0, start, isps, Direction.UP, power, price, mode, minimum, BaselineMethod.COMMITTED,
                     keccak(asset.to_bytes(8, "big")), day + 86_400, 1)

    offers = {
        "cheap": offer(ids[0], 10_000, 8_000),
        "block": offer(ids[1], 12_000, 6_000, isps=4),
        "minimum": offer(ids[2], 11_000, 10_000, mode=Mode.MIN_QUANTITY, minimum=4_000),
        "all": offer(ids[3], 13_000, 5_000, mode=Mode.ALL_OR_NOTHING, minimum=5_000),
        "late": offer(ids[4], 14_000, 9_000, start=hour + ISP),
        "south": offer(ids[5], 9_000, 7_000),  # perimeter 3: outside feeder 4's subtree
    }
    token = SettlementTokenClient(conn, manifest.address("SettlementToken"))
    token.mint(owner.address, 10**9, sender=deployer)  # a seller without free bond does not sell
    token.approve(book.address, 10**9, sender=owner_signer)
    book.post_bond(owner.address, 10**9, sender=owner_signer)
    assert relay_offers(book, [SignedOffer(o, o.sign(owner, domain)) for o in offers.values()]).accepted == 6
    for buyer in (dso1, tso):
        token.mint(buyer.address, 10**12, sender=deployer)
        token.approve(book.address, 2**256 - 1, sender=buyer)
    book.post_request(structs.RequestParams.like(RequestParams(market, feeder, hour, 4, Direction.UP, 15_000, 20_000)), sender=dso1)
    book.post_request(structs.RequestParams.like(RequestParams(market, root, hour, 2, Direction.UP, 30_000, 25_000)), sender=tso)
    clearing = ClearingCommitmentClient(conn, manifest.address("ClearingCommitment"))
    return Day(conn, manifest, clearing, operator, stranger, market, day, params, offers)


def after_gate_closure(d: Day) -> MarketDay:
    d.conn.set_next_block_timestamp(d.params.gate_closure(d.day) + 1)
    d.conn.mine()
    return load_market_day(d.deployment, d.market, d.day)


def post(d: Day, loaded: MarketDay, awards: list[Award], signer: Signer | None = None) -> int:
    result_id, _gas, _chunks = post_result(d.clearing, signer or d.operator, d.market, d.day, awards, loaded.book,
                                           ISP, max_awards=3)
    return result_id


def key(loaded: MarketDay, offer: Offer) -> str:
    return "0x" + loaded.book.digests[offer].hex()


def test_the_optimisers_result_is_committed_final_and_matched_by_the_auditor(market_day: Day) -> None:
    d = market_day
    loaded = after_gate_closure(d)
    result = clear(loaded.clearing)
    assert {a.request_id for a in result.awards} == {1, 2}
    result_id = post(d, loaded, result.awards)  # several chunks of at most three awards
    committed = read_result(d.deployment, result_id, loaded.book)
    assert committed.status is ResultStatus.CURRENT and committed.chunks > 1
    assert committed.awards == sorted(result.awards)
    assert committed.book_digest == loaded.book.digest
    dso, tso = d.clearing.welfare(result_id)
    assert dso + tso in (result.welfare, result.welfare - 1)  # each stage rounds down on chain
    state = day_state(d.deployment, d.market, d.day)
    current, ends, final = state.current, state.challenge_ends, state.finalised
    assert (current, final) == (result_id, False)
    with pytest.raises(revert_errors.ClearingChallengeWindowOpen):
        d.clearing.finalise(d.market, d.day, sender=d.stranger)
    d.conn.set_next_block_timestamp(ends + 1)
    d.conn.mine()
    d.clearing.finalise(d.market, d.day, sender=d.stranger)  # anyone may
    assert day_state(d.deployment, d.market, d.day).finalised is True
    audit = audit_clearing(d.deployment, d.market, d.day)
    assert audit.matches and audit.final, audit.differences + audit.infeasible
    with pytest.raises(revert_errors.ClearingDayFinal):
        d.clearing.open(d.market, d.day, sender=d.stranger)


def test_a_block_split_between_the_dso_and_the_tso_is_accepted_and_audited_as_a_match(
        market_day: Day, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Issue 23, cause C: modes and blocks hold on an offer's total over DSO and TSO awards. The
    DSO's best first hour is the cheap and the minimum-quantity offers; the 4-ISP block then serves
    the DSO in the later three and the TSO in the first, and the minimum-quantity offer is split
    between them too. The contract accepts that result, its welfare is what the rules add up, and
    `flexledger audit clearing` re-runs it to the same optimum: MATCH."""
    d = market_day
    loaded = after_gate_closure(d)
    result = clear(loaded.clearing)
    assert result.stats.optimal
    buyers: dict[str, set[int]] = {}
    for a in result.awards:
        buyers.setdefault(a.offer_key, set()).add(a.request_id)
    assert buyers[key(loaded, d.offers["block"])] == {1, 2}  # request 1 the DSO's, 2 the TSO's
    assert buyers[key(loaded, d.offers["minimum"])] == {1, 2}
    result_id = post(d, loaded, result.awards)
    committed = read_result(d.deployment, result_id, loaded.book)
    assert committed.awards == sorted(result.awards)
    inp = loaded.clearing
    assert (committed.dso_value, committed.tso_value) == stage_welfare(inp.offers, inp.requests, result.awards)

    monkeypatch.setenv("FLEXLEDGER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FLEXLEDGER_RPC_URL", d.conn.rpc_url)
    settings = load_settings()
    settings.manifest_path.parent.mkdir(parents=True, exist_ok=True)
    d.manifest.save(settings.manifest_path)
    out = CliRunner().invoke(app, ["audit", "clearing", "--day", iso(d.day)[:10], "--market", str(d.market)])
    assert out.exit_code == 0 and out.output.rstrip().endswith("MATCH"), out.output


def test_a_commit_before_gate_closure_or_by_a_non_operator_is_refused(market_day: Day) -> None:
    d = market_day
    with pytest.raises(revert_errors.ClearingBeforeGateClosure) as before:
        d.clearing.open(d.market, d.day, sender=d.operator)
    assert before.value.gate_closure == d.params.gate_closure(d.day)
    after_gate_closure(d)
    with pytest.raises(revert_errors.RoleGatedMissingRole):
        d.clearing.open(d.market, d.day, sender=d.stranger)
    with pytest.raises(revert_errors.ClearingNoResult):
        d.clearing.finalise(d.market, d.day, sender=d.stranger)


def test_each_broken_rule_is_refused_with_its_own_error(market_day: Day) -> None:
    d = market_day
    loaded = after_gate_closure(d)
    o = d.offers
    hour = d.day + 68 * ISP

    def award(name: str, power: int, *, request: int = 1, isp: int = hour) -> Award:
        return Award(request, isp, key(loaded, o[name]), power, o[name].price)

    cases: list[tuple[list[Award], type[ContractRevertError]]] = [
        ([award("cheap", 9_000)], revert_errors.ClearingOfferOverAllocated),
        ([award("cheap", 8_000), award("minimum", 8_000)], revert_errors.ClearingRequestOverAllocated),
        ([award("minimum", 3_000)], revert_errors.ClearingModeViolated),
        ([award("all", 4_000)], revert_errors.ClearingModeViolated),
        ([award("block", 6_000), award("block", 5_000, isp=hour + ISP)], revert_errors.ClearingBlockViolated),
        ([award("block", 6_000)], revert_errors.ClearingBlockViolated),  # an ISP of the block left out
        ([award("south", 1_000)], revert_errors.ClearingZoneOutsideRequest),
        ([award("cheap", 1_000, request=2, isp=hour + 2 * ISP)], revert_errors.ClearingIspOutsideOffer),
        # the TSO's awards in feeder 4 add up beyond its YELLOW 12 kW, though each alone fits
        ([award("cheap", 8_000, request=2), award("minimum", 5_000, request=2)], revert_errors.ClearingLightCapabilityExceeded),
        ([award("cheap", 0)], revert_errors.ClearingZeroPower),
        ([award("cheap", 1_000, request=3)], revert_errors.ClearingRequestNotOpen),
    ]
    for awards, error in cases:
        with pytest.raises(error):
            post(d, loaded, awards)
    # the Python rules name every one of them too
    inp = loaded.clearing
    for awards, _error in cases:
        if all(a.power_w > 0 for a in awards) and all(a.request_id in (1, 2) for a in awards):
            assert violations(inp.offers, inp.requests, awards, parent=inp.parent, lights=inp.lights,
                              isp_seconds=ISP), awards


def test_a_price_above_the_maximum_and_a_direction_mismatch_are_refused(market_day: Day) -> None:
    d = market_day
    loaded = after_gate_closure(d)
    clearing = ClearingCommitmentClient(d.conn, d.clearing.address, signer=d.operator)
    result_id = clearing.open(d.market, d.day).event("ResultOpened").args["resultId"]
    group = groups_of([Award(1, d.day + 68 * ISP, key(loaded, d.offers["cheap"]), 1_000, 10_000)], loaded.book, ISP)[0]
    # the same offer with another price or direction is not the offer in the book
    for changed in (replace(group.offer, price=30_000), replace(group.offer, direction=1)):
        with pytest.raises(revert_errors.ClearingOfferNotInBook):
            clearing.post(result_id, *wire([replace(group, offer=changed)]))
    roots, (wired,) = wire([group])
    with pytest.raises(revert_errors.ClearingOffersOverlap):  # the same offer twice sells its ISP twice
        clearing.post(result_id, roots, [wired, wired])
    with pytest.raises(revert_errors.ClearingMalformedGroup):  # a packed offer cut short
        clearing.post(result_id, roots, [replace(wired, offer=wired.offer[:92])])
    with pytest.raises(revert_errors.ClearingNotAuthor):
        clearing.post(result_id, roots, [wired], sender=d.stranger)
    with pytest.raises(CommitmentError):  # an offer the book does not hold never reaches the chain
        groups_of([Award(1, d.day + 68 * ISP, "0x" + "ab" * 32, 1_000, 10_000)], loaded.book, ISP)


def test_a_challenge_replaces_only_with_more_welfare_and_only_in_the_window(market_day: Day) -> None:
    d = market_day
    loaded = after_gate_closure(d)
    best = clear(loaded.clearing).awards
    worse = [a for a in best if a.offer_key != key(loaded, d.offers["cheap"])]
    assert len(worse) < len(best)
    first = post(d, loaded, worse)
    with pytest.raises(revert_errors.ClearingNotBetter):
        post(d, loaded, worse, signer=d.stranger)  # equal welfare
    challenger = post(d, loaded, best, signer=d.stranger)  # anyone may challenge
    state = day_state(d.deployment, d.market, d.day)
    current, ends = state.current, state.challenge_ends
    assert current == challenger
    assert read_result(d.deployment, first, loaded.book).status is ResultStatus.REPLACED
    with pytest.raises(revert_errors.ClearingNotBetter):
        post(d, loaded, worse, signer=d.operator)  # lower welfare
    d.conn.set_next_block_timestamp(ends + 1)
    d.conn.mine()
    with pytest.raises(revert_errors.ClearingChallengeWindowClosed):
        d.clearing.open(d.market, d.day, sender=d.stranger)


def test_the_auditor_reports_every_difference_from_a_worse_result(market_day: Day) -> None:
    d = market_day
    loaded = after_gate_closure(d)
    best = clear(loaded.clearing).awards
    dropped = best[0]
    post(d, loaded, [a for a in best if a.offer_key != dropped.offer_key])
    audit = audit_clearing(d.deployment, d.market, d.day)
    assert not audit.matches and not audit.infeasible
    assert any(dropped.offer_key[:12] in line for line in audit.differences)
    assert any("welfare" in line for line in audit.differences)


@pytest.mark.slow
def test_a_result_awarding_a_replaced_offer_is_voided_and_the_auditor_names_it(
    market_day: Day, conn: ChainConnection, manifest: Manifest, dev_signers: list[Signer],
) -> None:
    d = market_day
    book = OrderBookClient(conn, manifest.address("OrderBook"), signer=dev_signers[4])
    older = d.offers["cheap"]
    newer = replace(older, price=9_500, nonce=2)  # the seller lowers its price: the newer offer counts
    owner = keys.dev_accounts()[7]
    assert relay_offers(book, [SignedOffer(newer, newer.sign(owner, read_domain(conn, book.address)))]).accepted == 1
    loaded = after_gate_closure(d)
    assert older not in loaded.book.offers and newer in loaded.book.offers
    stale = [Award(1, older.start, key(loaded, older), 8_000, older.price)]
    result_id = post(d, loaded, stale)  # feasible award by award: only the book's history says it is stale
    audit = audit_clearing(Deployment(conn, manifest), d.market, d.day)
    assert not audit.matches and any("replaced" in line for line in audit.infeasible)
    found = find_superseded(d.clearing, result_id, loaded.book)
    assert [(s.older, s.newer) for s in found] == [(older, newer)]
    prove_superseded(d.clearing, d.stranger, found[0])  # anyone may
    assert read_result(Deployment(conn, manifest), result_id, loaded.book).status is ResultStatus.VOID
    assert day_state(Deployment(conn, manifest), d.market, d.day).current == 0
    with pytest.raises(revert_errors.ClearingNotPosting):
        prove_superseded(d.clearing, d.stranger, found[0])  # once void, nothing more to prove
    with pytest.raises(revert_errors.RoleGatedMissingRole):
        d.clearing.open(d.market, d.day, sender=d.stranger)  # the day is committed anew by an operator
    post(d, loaded, clear(loaded.clearing).awards)
    assert audit_clearing(Deployment(conn, manifest), d.market, d.day).matches


def test_rt3_overlapping_offers_of_one_asset_are_never_both_in_force_awarded_or_audited_as_fine(
    market_day: Day, conn: ChainConnection, manifest: Manifest, dev_signers: list[Signer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """RT-3: the seller of "cheap" (one ISP) adds a two-ISP block over the same ISP. The block
    replaces it (any overlap, in either direction); the optimiser never awards both; the contract
    refuses a result that does; the auditor names such a result on altered data."""
    d = market_day
    book = OrderBookClient(conn, manifest.address("OrderBook"), signer=dev_signers[4])
    older = d.offers["cheap"]
    newer = replace(older, isps=2, nonce=2)
    assert older.overlaps(replace(newer, direction=Direction.DOWN), ISP)  # the opposite direction too
    owner = keys.dev_accounts()[7]
    assert relay_offers(book, [SignedOffer(newer, newer.sign(owner, read_domain(conn, book.address)))]).accepted == 1
    loaded = after_gate_closure(d)
    assert older not in loaded.book.offers and newer in loaded.book.offers
    assert newest_overlapping(older, loaded.book.accepted, ISP) == newer
    best = clear(loaded.clearing).awards
    assert key(loaded, newer) in {a.offer_key for a in best} and key(loaded, older) not in {a.offer_key for a in best}
    clearing = ClearingCommitmentClient(d.conn, d.clearing.address, signer=d.operator)
    result_id = clearing.open(d.market, d.day).event("ResultOpened").args["resultId"]
    (single,) = groups_of([Award(1, older.start, key(loaded, older), 8_000, older.price)], loaded.book, ISP)
    digest = loaded.book.digests[newer]
    block = Group(newer, digest, *loaded.book.proofs[digest], [(1, 0, 1_000), (1, 1, 1_000)])
    with pytest.raises(revert_errors.ClearingOffersOverlap):
        clearing.post(result_id, *wire([single, block]))
    post(d, loaded, best)
    honest = audit_module.read_result(Deployment(conn, manifest), day_state(Deployment(conn, manifest), d.market, d.day).current, loaded.book)

    def altered(*_args: object) -> CommittedResult:  # what a contract without the check would let through
        return replace(honest, awards=[*honest.awards, Award(1, older.start, key(loaded, older), 1_000, older.price)])

    monkeypatch.setattr(audit_module, "read_result", altered)
    audit = audit_clearing(Deployment(conn, manifest), d.market, d.day)
    assert any("one meter sold twice" in line for line in audit.infeasible), audit.infeasible


def test_a_book_whose_events_do_not_match_its_digest_is_not_cleared(market_day: Day,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    d = market_day
    after_gate_closure(d)
    real = book_module.OrderBookClient.events

    def one_offer_lost(self: OrderBookClient, name: str, **kw: object) -> list[object]:
        events = real(self, name, **kw)  # type: ignore[arg-type]
        return events[1:] if name == "OffersAccepted" else events  # a run of offers lost

    monkeypatch.setattr(book_module.OrderBookClient, "events", one_offer_lost)
    with pytest.raises(BookDigestMismatchError):
        load_market_day(d.deployment, d.market, d.day)


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_the_python_rules_and_the_contract_agree_on_random_award_sets(market_day: Day, data: st.DataObject) -> None:
    d = market_day
    if d.conn.latest_timestamp() <= d.params.gate_closure(d.day):
        after_gate_closure(d)
    loaded = load_market_day(d.deployment, d.market, d.day)
    inp = loaded.clearing
    hour = d.day + 68 * ISP
    awards = []
    for name in data.draw(st.lists(st.sampled_from(sorted(d.offers)), max_size=4, unique=True)):
        offer = d.offers[name]
        for k in range(offer.isps):
            request = data.draw(st.sampled_from([1, 2]))
            power = data.draw(st.sampled_from([1_000, 4_000, 5_000, 6_000, 8_000, 12_000]))
            awards.append(Award(request, offer.start + k * ISP, key(loaded, offer), power, offer.price))
    awards = [a for a in awards if a.isp_start < hour + (4 if a.request_id == 1 else 2) * ISP]
    if not awards:
        return
    expected_ok = not violations(inp.offers, inp.requests, awards, parent=inp.parent, lights=inp.lights,
                                 isp_seconds=ISP)
    clearing = ClearingCommitmentClient(d.conn, d.clearing.address, signer=d.operator)
    result_id = clearing.open(d.market, d.day).event("ResultOpened").args["resultId"]
    roots, groups = wire(groups_of(awards, loaded.book, ISP))
    try:
        post_sig = next(sig for sig in clearing._functions if sig.startswith("post("))
        clearing.estimate_gas(post_sig, result_id, roots, groups, sender=d.operator)
        accepted = True
    except ContractRevertError:
        accepted = False
    assert accepted == expected_ok, (awards, violations(inp.offers, inp.requests, awards, parent=inp.parent,
                                                        lights=inp.lights, isp_seconds=ISP))
