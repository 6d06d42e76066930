"""A market day settled end to end from Python: offers with committed baselines cleared,
committed and final; meters' signed readings kept and anchored by the oracle; each offer settled
with the awards' and readings' proofs and its revealed baseline; the money after finality is what
flexledger.rules.settlement says, to the base unit."""

from __future__ import annotations

from pathlib import Path

from eth_utils import keccak

from flexledger.book import SignedOffer, relay_offers
from flexledger.chain.bindings import (
    AssetRegistryClient,
    ClearingCommitmentClient,
    GridZonesClient,
    MarketRegistryClient,
    MeterOracleClient,
    OrderBookClient,
    RoleRegistryClient,
    SettlementClient,
    SettlementTokenClient,
)
from flexledger.chain.connection import ChainConnection
from flexledger.chain.manifest import Manifest
from flexledger.chain.transactions import Signer
from flexledger.commitment import day_state, post_result
from flexledger.identity import keys
from flexledger.identity.eip712 import read_domain
from flexledger.identity.roles import Role
from flexledger.market_day import load_market_day
from flexledger.optimiser import clear
from flexledger.oracle.anchoring import anchor_isp, proof_for
from flexledger.oracle.ingest import STORED, ingest
from flexledger.oracle.store import open_store, session
from flexledger.oracle.verify import Verifier
from flexledger.rules.baselines import baseline_commitment
from flexledger.rules.lights import Direction
from flexledger.rules.market import MarketParams
from flexledger.rules.orders import BaselineMethod, Mode, Offer, Product, RequestParams
from flexledger.rules.settlement import AwardIsp, settle_award_isp
from flexledger.settlement import Baseline, finalise_offer, settle_input, settle_offer
from flexledger_edge.reading import MeterSigner, OracleDomain

FOREVER = 2**64 - 1
ISP = 900


def test_a_day_settles_from_public_data_as_the_rules_say(
    conn: ChainConnection, manifest: Manifest, deployer: Signer, dev_signers: list[Signer], tmp_path: Path,
) -> None:
    tso, dso, aggregator, operator, oracle_account, anyone = dev_signers[1:7]
    owner = keys.dev_accounts()[7]
    meter_keys = [keys.new_account() for _ in range(2)]
    roles = RoleRegistryClient(conn, manifest.address("RoleRegistry"), signer=deployer)
    grants = [(tso.address, Role.TSO), (dso.address, Role.DSO), (aggregator.address, Role.AGGREGATOR),
              (owner.address, Role.PROSUMER), (operator.address, Role.CLEARING), (oracle_account.address, Role.ORACLE),
              *((m.address, Role.METER) for m in meter_keys)]
    roles.issue_credentials([a for a, _ in grants], [r.id for _, r in grants], [0] * len(grants),
                            [FOREVER] * len(grants), [b"\x01" * 32] * len(grants))
    params = MarketParams()
    market = MarketRegistryClient(conn, manifest.address("MarketRegistry"), signer=deployer).create_market(
        params.as_tuple()).event("MarketCreated").args["marketId"]
    grid = GridZonesClient(conn, manifest.address("GridZones"))
    root = grid.add_zone(0, tso.address, 0, sender=tso).event("ZoneAdded").args["zoneId"]
    perimeter = grid.add_zone(root, dso.address, 10**6, sender=tso).event("ZoneAdded").args["zoneId"]
    feeder = grid.add_zone(perimeter, dso.address, 10**6, sender=dso).event("ZoneAdded").args["zoneId"]
    assets = AssetRegistryClient(conn, manifest.address("AssetRegistry"))
    ids = [e.args["assetId"] for e in assets.register_assets([m.address for m in meter_keys], [2, 2],
                                                             sender=keys.signer(owner, conn)).events
           if e.name == "AssetRegistered"]
    assets.map_assets(ids, [feeder, feeder], [20_000, 20_000], [20_000, 20_000], sender=dso)

    day = params.day_start(conn.latest_timestamp()) + 2 * 86_400
    hour = day + 40 * ISP
    book = OrderBookClient(conn, manifest.address("OrderBook"), signer=aggregator)
    baselines = [Baseline([1_500], keccak(text="salt a")), Baseline([1_200], keccak(text="salt b"))]
    offers = [Offer(market, asset, 0, hour, 1, Direction.UP, power, price, Mode.DIVISIBLE, 0, BaselineMethod.COMMITTED,
                    baseline_commitment(asset, hour, b.net_wh, b.salt), day + 86_400, 1)
              for asset, power, price, b in zip(ids, (5_000, 4_000), (10_000, 12_000), baselines, strict=True)]
    domain = read_domain(conn, book.address)
    assert relay_offers(book, [SignedOffer(o, o.sign(owner, domain)) for o in offers]).accepted == 2
    token = SettlementTokenClient(conn, manifest.address("SettlementToken"))
    token.mint(dso.address, 10**12, sender=deployer)
    token.approve(book.address, 2**256 - 1, sender=dso)
    token.mint(owner.address, 10**9, sender=deployer)
    owner_signer = keys.signer(owner, conn)
    token.approve(book.address, 2**256 - 1, sender=owner_signer)
    book.post_bond(owner.address, 1_000_000, sender=owner_signer)
    request_id = book.post_request(RequestParams(market, feeder, hour, 1, Direction.UP, 20_000, 20_000).as_tuple(),
                                   sender=dso).event("RequestPosted").args["requestId"]

    # gate closure, clearing, commitment, the challenge window, finality
    conn.set_next_block_timestamp(params.gate_closure(day) + 1)
    conn.mine()
    loaded = load_market_day(conn, manifest, market, day)
    result = clear(loaded.clearing)
    assert {a.power_w for a in result.awards} == {5_000, 4_000}
    clearing = ClearingCommitmentClient(conn, manifest.address("ClearingCommitment"))
    result_id, _gas, _chunks = post_result(clearing, operator, market, day, result.awards, loaded.book, ISP)
    conn.set_next_block_timestamp(day_state(conn, manifest, market, day)[1] + 1)
    conn.mine()
    clearing.finalise(market, day, sender=anyone)

    # the hour passes; the meters sign what they measured; the oracle keeps and anchors it
    conn.set_next_block_timestamp(hour + ISP + 120)
    conn.mine()
    oracle = MeterOracleClient(conn, manifest.address("MeterOracle"), signer=oracle_account)
    engine = open_store(f"sqlite:///{tmp_path / 'oracle.db'}")
    verifier = Verifier(read_domain(conn, oracle.address).separator(), lambda _meter: None)
    measured = [250, 1_200]  # asset A delivered its 1,250 Wh in full; asset B nothing
    for account, net in zip(meter_keys, measured, strict=True):
        signed = MeterSigner(account.key, OracleDomain(conn.chain_id, oracle.address)).sign_new(
            isp_start=hour, sequence=1, import_wh=net, export_wh=0)
        with session(engine) as s:
            assert ingest(s, verifier, market, signed.to_json(), conn.latest_timestamp()) == STORED
    assert anchor_isp(engine, oracle, market, hour) is not None

    # anyone settles each offer from public data and the revealed baseline
    settlement = SettlementClient(conn, manifest.address("Settlement"))
    settled = []
    for offer, baseline, account in zip(offers, baselines, meter_keys, strict=True):
        s_in = settle_input(clearing, result_id, offer, loaded.book.digests[offer], baseline, account.address,
                            lambda meter, isp: proof_for(engine, meter, isp))
        settled.append(settle_offer(settlement, anyone, s_in))
    for offer, baseline, net, done in zip(offers, baselines, measured, settled, strict=True):
        expected = settle_award_isp(AwardIsp(offer.power_w, offer.price, 20_000, Product.ACTIVATION, Direction.UP,
                                             baseline.net_wh[0], net), params, 0)
        (request, isp_start, payment, claim, uncovered), = done.lines
        assert (request, isp_start) == (request_id, hour)
        assert (payment, claim, uncovered) == (expected.payment, expected.claim,
                                               expected.penalty - expected.from_payment)

    # after the dispute window: final; the seller pulls its claim, the buyer its penalty and refund
    conn.set_next_block_timestamp(conn.latest_timestamp() + params.dispute_window_seconds + 1)
    conn.mine()
    for done in settled:
        finalise_offer(settlement, anyone, done)
    claim = sum(line[3] for done in settled for line in done.lines)
    penalty_drawn = sum(line[4] for done in settled for line in done.lines)
    assert settlement.claimable(owner.address) == claim > 0
    assert settlement.claimable(dso.address) == penalty_drawn > 0
    before = token.balance_of(owner.address)
    settlement.withdraw(sender=owner_signer)
    assert token.balance_of(owner.address) - before == claim
    conn.set_next_block_timestamp(day + 86_400 + params.dispute_window_seconds + 1)
    conn.mine()
    escrow_left = book.escrow_left(request_id)
    before = token.balance_of(dso.address)
    settlement.refund(request_id, sender=anyone)
    assert token.balance_of(dso.address) - before == escrow_left  # the escrow less the claims paid out
    assert book.escrow_left(request_id) == 0 and book.bond_of(owner.address) == 1_000_000 - penalty_drawn
