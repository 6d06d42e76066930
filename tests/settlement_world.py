"""A market day ready to settle, shared by the settlement tests: roles, a market, a feeder with two
batteries, one committed-baseline offer each, a DSO request, the day cleared, committed and final,
the hour's meter readings signed, kept by the oracle and anchored.

Asset A (5,000 W, baseline 1,500 Wh) delivers its 1,250 Wh in full by default; asset B (4,000 W,
baseline 1,200 Wh) delivers nothing: a shortfall beyond the tolerance, penalised. With
``standard``, B's offer names the ROLLING_AVERAGE method instead, and the oracle anchors its
1,200 Wh as the meter's standard baseline of the hour (with ``portfolio`` too, the portfolio's
offer names it, and the oracle anchors A's 1,500 and B's 1,200). With ``portfolio``, the aggregator pools
A and B (their owner consenting) and offers the portfolio instead: one offer of 9,000 W whose
committed baseline is their sum, 2,700 Wh; the aggregator is the seller and holds the bond.
The owner's own offers for A and B were in the book before A and B joined: the clearing leaves
them out (ClearingCommitment would refuse them), so each meter counts once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from chain_world import create_market, grant_roles
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from sqlalchemy import update
from sqlalchemy.engine import Engine

from flexledger.book.order_book import SignedOffer, relay_offers
from flexledger.chain import structs
from flexledger.chain.bindings import (
    AssetRegistryClient,
    ClearingCommitmentClient,
    GridZonesClient,
    MeterOracleClient,
    OrderBookClient,
    SettlementClient,
    SettlementTokenClient,
)
from flexledger.chain.connection import ChainConnection
from flexledger.chain.manifest import Manifest
from flexledger.chain.transactions import Signer
from flexledger.clearing.commitment import day_state, post_result
from flexledger.clearing.market_day import MarketDay, load_market_day
from flexledger.deployment import Deployment
from flexledger.grid.owners import register_with_meters
from flexledger.identity import keys
from flexledger.identity.eip712 import read_domain
from flexledger.identity.roles import Role
from flexledger.optimiser import clear
from flexledger.oracle.anchoring import anchor_isp, proof_for
from flexledger.oracle.baselines import anchor_baselines, baseline_proof_for
from flexledger.oracle.ingest import ingest
from flexledger.oracle.store import StoredReading, open_store, session
from flexledger.oracle.verify import Verifier
from flexledger.rules.assets import sign_consent
from flexledger.rules.baselines import BaselineInputs, baseline_commitment, rolling_inputs
from flexledger.rules.lights import Direction
from flexledger.rules.market import MarketParams
from flexledger.rules.orders import BaselineMethod, Mode, Offer, RequestParams
from flexledger.settlement.offer import (
    Baseline,
    SettledOffer,
    StandardBaselines,
    settle_input,
    settle_offer,
)
from flexledger_edge.reading import MeterSigner, OracleDomain

ISP = 900
MAX_PRICE = 20_000
BOND = 1_000_000


@dataclass
class SettlementWorld:
    conn: ChainConnection
    manifest: Manifest
    params: MarketParams
    market: int
    day: int  # the market day's first second
    hour: int  # the ISP the offers were awarded in
    request_id: int
    offers: list[Offer]
    baselines: list[Baseline]
    measured: list[int]
    meters: list[LocalAccount]
    owner: LocalAccount  # the assets' owner: the seller (of a portfolio offer: the aggregator)
    owner_signer: Signer
    dso: Signer  # the buyer
    anyone: Signer
    result_id: int
    loaded: MarketDay
    engine: Engine
    verifier: Verifier
    clearing: ClearingCommitmentClient
    settlement: SettlementClient
    token: SettlementTokenClient
    book: OrderBookClient
    assets: list[int]
    portfolio: int = 0

    @property
    def deployment(self) -> Deployment:
        return Deployment(self.conn, self.manifest)

    @property
    def digests(self) -> list[bytes]:
        return [self.loaded.book.digests[o] for o in self.offers]

    def keep_reading(self, index: int, sequence: int, import_wh: int, export_wh: int = 0) -> str:
        """Meter ``index`` signs a reading of the hour and the oracle's store keeps it (late once the
        hour is anchored); returns the store's verdict."""
        oracle = self.manifest.address("MeterOracle")
        signed = MeterSigner(self.meters[index].key, OracleDomain(self.conn.chain_id, oracle)).sign_new(
            isp_start=self.hour, sequence=sequence, import_wh=import_wh, export_wh=export_wh)
        with session(self.engine) as s:
            return ingest(s, self.verifier, self.market, signed.to_json(), self.conn.latest_timestamp())

    def settle_all(self, signer: Signer | None = None) -> list[SettledOffer]:
        """Anyone settles each offer from public data and the revealed baseline."""
        out = []
        for offer, baseline, meter in zip(self.offers, self.baselines, self.meters, strict=True):
            standard = StandardBaselines(lambda m, t: baseline_proof_for(self.engine, self.market, m, t),
                                         self.params.isp_seconds)
            s_in = settle_input(self.clearing, self.result_id, offer, self.loaded.book.digests[offer], baseline,
                                meter.address, lambda m, t: proof_for(self.engine, m, t), standard=standard)
            out.append(settle_offer(self.settlement, signer or self.anyone, s_in))
        return out

    def pass_time(self, seconds: int) -> None:
        self.conn.set_next_block_timestamp(self.conn.latest_timestamp() + seconds)
        self.conn.mine()


def build_world(conn: ChainConnection, manifest: Manifest, deployer: Signer, dev_signers: list[Signer], tmp_path: Path,
                *, measured: Sequence[int] = (250, 1_200), standard: bool = False,
                portfolio: bool = False, misread: dict[int, int] | None = None, bond: int = BOND,
                claimed: dict[int, int] | None = None, invented: dict[int, int] | None = None) -> SettlementWorld:
    """``misread``: meter index -> the import the oracle's store holds (and anchors) instead of
    what the meter signed (a corrupted database: the meter's signature of the true values stays).
    ``bond``: what each seller bonds (a small one leaves B's penalty partly a debt).
    ``invented`` (with ``standard``): meter index -> the net the oracle averages for a fourth similar
    day of which no reading was ever anchored (dispute (d)), after the three (``claimed`` or anchored).
    ``claimed`` (with ``standard``): meter index -> the net the oracle claims for each day its
    standard baseline averages instead of the anchored reading (a wrong oracle)."""
    tso, dso, aggregator, operator, oracle_account, anyone = dev_signers[1:7]
    owner = keys.dev_accounts()[7]
    meter_keys = [keys.new_account() for _ in range(2)]
    grants = [(tso.address, Role.TSO), (dso.address, Role.DSO), (aggregator.address, Role.AGGREGATOR),
              (owner.address, Role.PROSUMER), (operator.address, Role.CLEARING), (oracle_account.address, Role.ORACLE),
              *((m.address, Role.METER) for m in meter_keys)]
    grant_roles(conn, manifest, deployer, grants)
    params = MarketParams()
    market = create_market(conn, manifest, deployer, params)
    grid = GridZonesClient(conn, manifest.address("GridZones"))
    root = grid.add_zone(0, tso.address, 0, sender=tso).event("ZoneAdded").args["zoneId"]
    perimeter = grid.add_zone(root, dso.address, 10**6, sender=tso).event("ZoneAdded").args["zoneId"]
    feeder = grid.add_zone(perimeter, dso.address, 10**6, sender=dso).event("ZoneAdded").args["zoneId"]
    assets = AssetRegistryClient(conn, manifest.address("AssetRegistry"))
    ids = [e.args["assetId"] for e in register_with_meters(assets, meter_keys, [2, 2], sender=keys.signer(owner, conn)).events
           if e.name == "AssetRegistered"]
    assets.map_assets(ids, [feeder, feeder], [20_000, 20_000], [20_000, 20_000], [market, market], sender=dso)

    day = params.day_start(conn.latest_timestamp()) + 2 * 86_400
    hour = day + 40 * ISP
    book = OrderBookClient(conn, manifest.address("OrderBook"), signer=aggregator)
    baselines = [Baseline([1_500], keccak(text="salt a")), Baseline([1_200], keccak(text="salt b"))]
    methods = [BaselineMethod.COMMITTED, BaselineMethod.ROLLING_AVERAGE if standard else BaselineMethod.COMMITTED]
    offers = [Offer(market, asset, 0, hour, 1, Direction.UP, power, price, Mode.DIVISIBLE, 0, method,
                    baseline_commitment(asset, hour, b.net_wh, b.salt) if method is BaselineMethod.COMMITTED
                    else bytes(32), day + 86_400, 1)
              for asset, power, price, b, method in zip(ids, (5_000, 4_000), (10_000, 12_000), baselines, methods,
                                                        strict=True)]
    seller = owner
    portfolio_id = 0
    domain = read_domain(conn, book.address)
    token = SettlementTokenClient(conn, manifest.address("SettlementToken"))
    # a seller without free bond does not sell: the owner and the aggregator bond before they offer
    for who in ((owner, keys.dev_accounts()[3]) if portfolio else (owner,)):
        token.mint(who.address, 10**9, sender=deployer)
        bonder = keys.signer(who, conn)
        token.approve(book.address, 2**256 - 1, sender=bonder)
        book.post_bond(who.address, bond, sender=bonder)
    if portfolio:  # the owner's offers first; then the aggregator pools both assets and offers them as one
        assert relay_offers(book, [SignedOffer(o, o.sign(owner, domain)) for o in offers]).accepted == 2
        seller = keys.dev_accounts()[3]
        assert seller.address == aggregator.address
        registry_domain = read_domain(conn, assets.address)
        deadline = conn.latest_timestamp() + 3_600
        consents = [sign_consent(owner, registry_domain, seller.address, a, assets.consent_nonce(a), deadline) for a in ids]
        portfolio_id = assets.create_portfolio(feeder, ids, consents, deadline, sender=aggregator).event(
            "PortfolioCreated").args["portfolioId"]
        baselines = [Baseline([2_700], keccak(text="salt p"))]
        method = BaselineMethod.ROLLING_AVERAGE if standard else BaselineMethod.COMMITTED
        offers = [Offer(market, 0, portfolio_id, hour, 1, Direction.UP, 9_000, 11_000, Mode.DIVISIBLE, 0, method,
                        bytes(32) if standard else baseline_commitment(0, hour, baselines[0].net_wh, baselines[0].salt),
                        day + 86_400, 1)]
    assert relay_offers(book, [SignedOffer(o, o.sign(seller, domain)) for o in offers]).accepted == len(offers)
    token.mint(dso.address, 10**12, sender=deployer)
    token.approve(book.address, 2**256 - 1, sender=dso)
    request_id = book.post_request(structs.RequestParams.like(RequestParams(market, feeder, hour, 1, Direction.UP, 20_000, MAX_PRICE)),
                                   sender=dso).event("RequestPosted").args["requestId"]

    oracle = MeterOracleClient(conn, manifest.address("MeterOracle"), signer=oracle_account)
    engine = open_store(f"sqlite:///{tmp_path / 'oracle.db'}")
    verifier = Verifier(read_domain(conn, oracle.address).separator(), lambda _meter: None)
    if standard:
        standard_history(conn, params, market, day, hour, meter_keys, engine, verifier, oracle, claimed=claimed,
                         invented=invented)

    # gate closure, clearing, commitment, the challenge window, finality
    conn.set_next_block_timestamp(params.gate_closure(day) + 1)
    conn.mine()
    loaded = load_market_day(Deployment(conn, manifest), market, day)
    result = clear(loaded.clearing)
    assert {a.power_w for a in result.awards} == ({9_000} if portfolio else {5_000, 4_000})
    clearing = ClearingCommitmentClient(conn, manifest.address("ClearingCommitment"))
    result_id, _gas, _chunks = post_result(clearing, operator, market, day, result.awards, loaded.book, ISP)
    conn.set_next_block_timestamp(day_state(Deployment(conn, manifest), market, day).challenge_ends + 1)
    conn.mine()
    clearing.finalise(market, day, sender=anyone)

    # the hour passes; the meters sign what they measured; the oracle keeps and anchors it
    conn.set_next_block_timestamp(hour + ISP + 120)
    conn.mine()
    world = SettlementWorld(conn, manifest, params, market, day, hour, request_id, offers, baselines, list(measured),
                            meter_keys, seller, keys.signer(seller, conn), dso, anyone, result_id, loaded, engine, verifier, clearing,
                            SettlementClient(conn, manifest.address("Settlement")), token, book, ids, portfolio_id)
    for k, net in enumerate(measured):
        assert world.keep_reading(k, 1, net) == "stored"
    with session(engine) as s:
        for k, wrong in (misread or {}).items():
            s.execute(update(StoredReading).where(StoredReading.meter == meter_keys[k].address)
                      .values(import_wh=wrong))
    assert anchor_isp(engine, oracle, market, hour) is not None
    return world


HISTORY = (1_500, 1_200)  # each meter's net consumption on the days before: its standard baseline


def standard_history(conn: ChainConnection, params: MarketParams, market: int, day: int, hour: int,
                     meters: Sequence[LocalAccount], engine: Engine, verifier: Verifier, oracle: MeterOracleClient,
                     *, claimed: Mapping[int, int] | None = None, invented: Mapping[int, int] | None = None) -> None:
    """The meters' readings of the hour on the three most recent similar days, signed, kept and
    anchored; then, in the last minutes before the day's gate closure (``MeterOracle.baselineWindow``),
    the oracle computes the hour's standard baselines from them and anchors them (1,500 and 1,200 Wh;
    a portfolio's is its members' summed); ``claimed`` meters' with those nets instead (a wrong oracle)."""
    conn.set_next_block_timestamp(params.gate_closure(day) - 600)
    conn.mine()
    similar = rolling_inputs({hour - k * 86_400: 0 for k in range(1, 22)}, hour).days()
    kind = similar[:3]
    for k in kind:
        t = hour - k * 86_400
        with session(engine) as s:
            for meter, net in zip(meters, HISTORY, strict=True):
                signed = MeterSigner(meter.key, OracleDomain(conn.chain_id, oracle.address)).sign_new(
                    isp_start=t, sequence=1, import_wh=net, export_wh=0)
                assert ingest(s, verifier, market, signed.to_json(), conn.latest_timestamp()) == "stored"
        assert anchor_isp(engine, oracle, market, t) is not None
    inputs = None
    if claimed:
        inputs = {m.address: BaselineInputs.of([(k, claimed.get(i, net)) for k in kind])
                  for i, (m, net) in enumerate(zip(meters, HISTORY, strict=True))}
    if invented:
        inputs = {m.address: BaselineInputs.of([*((k, (claimed or {}).get(i, net)) for k in kind),
                                                 *([(similar[3], invented[i])]
                                                                          if i in invented else [])])
                  for i, (m, net) in enumerate(zip(meters, HISTORY, strict=True))}
    assert anchor_baselines(engine, oracle, market, hour, inputs=inputs) is not None
