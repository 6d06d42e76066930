"""Gas per award committed to ClearingCommitment, in chunks of 400 awards (open and close included),
for three books cleared by the optimiser from chain data:

- ``dso_single``: DSO requests on feeders, single-ISP offers, one award per offer;
- ``dso_blocks``: the same with four-ISP block offers (one group, its proof and its offer's
  calldata shared by four awards);
- ``tso_yellow``: a TSO request on the root over feeders whose lights are YELLOW (every award
  checks the lights on its path and adds to the zone's TSO total).

Run: .venv/bin/python benchmarks/gas_clearing.py   (or `make bench`)
Target (clearing issue): at most 30,000 gas per award, so a 30M-gas block carries a thousand.
"""

from __future__ import annotations

from _common import local_chain, report  # benchmarks/ is on sys.path when a script runs
from eth_utils import keccak

from flexledger.book.order_book import SignedOffer, relay_offers
from flexledger.chain import structs
from flexledger.chain.bindings import (
    AssetRegistryClient,
    ClearingCommitmentClient,
    GridZonesClient,
    MarketRegistryClient,
    OrderBookClient,
    RoleRegistryClient,
    SettlementTokenClient,
)
from flexledger.chain.deploy import deploy_all
from flexledger.chain.transactions import Signer
from flexledger.clearing.commitment import post_result
from flexledger.clearing.market_day import load_market_day
from flexledger.deployment import Deployment
from flexledger.grid.owners import register_with_meters
from flexledger.identity import keys
from flexledger.identity.eip712 import read_domain
from flexledger.identity.roles import Role
from flexledger.optimiser import clear
from flexledger.rules.lights import Colour, Direction
from flexledger.rules.market import MarketParams
from flexledger.rules.orders import BaselineMethod, Mode, Offer, RequestParams

FOREVER = 2**64 - 1
DAY = 86_400
OFFERS = 800
FEEDERS = 20


def main() -> None:
    figures: dict[str, object] = {}
    for scenario in ("dso_single", "dso_blocks", "tso_yellow"):
        figures[scenario] = run(scenario)
    figures["target_gas_per_award"] = 30_000
    for name in ("dso_single", "dso_blocks", "tso_yellow"):
        f = figures[name]
        assert isinstance(f, dict)
        verdict = "met" if f["gas_per_award"] <= 30_000 else "MISSED"
        print(f"  {name}: {f['awards']} awards from {f['offers_awarded']} offers in {f['chunks']} chunks: "
              f"{f['gas_per_award']:,.0f} gas per award (target 30,000: {verdict}); largest chunk "
              f"{f['largest_chunk_gas']:,} gas")
    report("gas_clearing", figures)


def run(scenario: str) -> dict[str, object]:
    with local_chain() as conn:
        authority = keys.signer(keys.dev_accounts()[0], conn)
        tso, dso, aggregator, operator = (Signer(keys.dev_accounts()[i], conn) for i in (1, 2, 3, 5))
        owner = keys.dev_accounts()[4]
        manifest = deploy_all(conn, authority)
        meter_keys = [keys.new_account() for _ in range(OFFERS)]
        meters = [m.address for m in meter_keys]
        roles = RoleRegistryClient(conn, manifest.address("RoleRegistry"), signer=authority)
        subjects = [tso.address, dso.address, aggregator.address, owner.address, operator.address, *meters]
        ids = [Role.TSO.id, Role.DSO.id, Role.AGGREGATOR.id, Role.PROSUMER.id, Role.CLEARING.id, *[Role.METER.id] * OFFERS]
        for i in range(0, len(subjects), 200):
            part = slice(i, i + 200)
            roles.issue_credentials(subjects[part], ids[part], [0] * len(ids[part]), [FOREVER] * len(ids[part]),
                                    [b"\x01" * 32] * len(ids[part]))
        params = MarketParams()
        MarketRegistryClient(conn, manifest.address("MarketRegistry"), signer=authority).create_market(structs.MarketParams.like(params))
        grid = GridZonesClient(conn, manifest.address("GridZones"))
        grid.add_zone(0, tso.address, 0, sender=tso)  # 1: the TSO area
        grid.add_zone(1, dso.address, 10**9, sender=tso)  # 2: a DSO perimeter
        grid.add_zone(2, dso.address, 10**9, sender=dso)  # 3: a substation
        feeders = [4 + f for f in range(FEEDERS)]
        for _ in feeders:
            grid.add_zone(3, dso.address, 10**9, sender=dso)
        if scenario == "tso_yellow":
            for f in feeders:
                grid.set_static_light(f, Direction.UP, Colour.YELLOW, 200_000, sender=dso)
        assets = AssetRegistryClient(conn, manifest.address("AssetRegistry"))
        owner_signer = keys.signer(owner, conn)
        asset_ids: list[int] = []
        for i in range(0, OFFERS, 100):
            first = register_with_meters(assets, meter_keys[i:i + 100], [2] * 100, sender=owner_signer, fresh=True)
            batch = [e.args["assetId"] for e in first.events if e.name == "AssetRegistered"]
            asset_ids += batch
            assets.map_assets(batch, [feeders[(i + k) % FEEDERS] for k in range(100)], [10_000] * 100, [10_000] * 100,
                              [1] * 100, sender=dso)
        day = params.day_start(conn.latest_timestamp()) + 2 * DAY
        isps = 4 if scenario == "dso_blocks" else 1
        book = OrderBookClient(conn, manifest.address("OrderBook"), signer=aggregator)
        domain_book = read_domain(conn, book.address)
        signed = []
        for n, asset in enumerate(asset_ids):
            start = day + (64 + (n % 8) * (4 if isps > 1 else 1)) * 900
            offer = Offer(1, asset, 0, start, isps, Direction.UP, 5_000, 10_000 + 10 * n, Mode.DIVISIBLE, 0,
                          BaselineMethod.COMMITTED, keccak(n.to_bytes(32, "big")), day + DAY, 1)
            signed.append(SignedOffer(offer, offer.sign(owner, domain_book)))
        token = SettlementTokenClient(conn, manifest.address("SettlementToken"))
        token.mint(owner.address, 10**9, sender=authority)  # a seller without free bond does not sell
        token.approve(book.address, 10**9, sender=owner_signer)
        book.post_bond(owner.address, 10**9, sender=owner_signer)
        relayed = relay_offers(book, signed, batch_size=200)
        assert relayed.accepted == OFFERS, [o.reason for o in relayed.skipped][:3]
        buyer = tso if scenario == "tso_yellow" else dso
        token.mint(buyer.address, 10**15, sender=authority)
        token.approve(book.address, 2**256 - 1, sender=buyer)
        window = 8 * isps
        if scenario == "tso_yellow":
            book.post_request(structs.RequestParams.like(RequestParams(1, 1, day + 64 * 900, window, Direction.UP, 10**9, 50_000)), sender=buyer)
        else:
            for f in feeders:  # each feeder's DSO request takes every offer there
                book.post_request(structs.RequestParams.like(RequestParams(1, f, day + 64 * 900, window, Direction.UP, 10**9, 50_000)),
                                  sender=buyer)
        conn.set_next_block_timestamp(params.gate_closure(day) + 1)
        conn.mine()
        loaded = load_market_day(Deployment(conn, manifest), 1, day)
        result = clear(loaded.clearing)
        clearing = ClearingCommitmentClient(conn, manifest.address("ClearingCommitment"))
        start_block = conn.w3.eth.block_number
        result_id, gas, chunks = post_result(clearing, operator, 1, day, result.awards, loaded.book, params.isp_seconds)
        posts = [e for e in clearing.events("ChunkPosted", from_block=start_block)]
        largest = max(conn.w3.eth.get_transaction_receipt(e.tx_hash)["gasUsed"] for e in posts)  # type: ignore[arg-type]
        awarded = len({a.offer_key for a in result.awards})
        return {"awards": len(result.awards), "offers_awarded": awarded, "chunks": chunks, "result_id": result_id,
                "gas_total": gas, "gas_per_award": round(gas / len(result.awards), 1), "largest_chunk_gas": largest}


if __name__ == "__main__":
    main()
