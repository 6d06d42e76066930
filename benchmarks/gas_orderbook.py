"""Gas of the order book: per offer relayed in batches of 50, 200 and 500 (each offer from a
distinct asset, signed by its owner, who holds a bond, relayed by an aggregator), for assets offering for the first
time (their nonce slot is new) and on a later day (it exists); and per request posted, escrow
transfer included.

Run: .venv/bin/python benchmarks/gas_orderbook.py   (or `make bench`)
Targets (order-book issue): at most 20,000 gas per offer in a batch of 200; at most 150,000 per request.
"""

from __future__ import annotations

from _common import local_chain, report  # benchmarks/ is on sys.path when a script runs
from eth_utils import keccak

from flexledger.book import SignedOffer, relay_offers
from flexledger.chain.bindings import (
    AssetRegistryClient,
    GridZonesClient,
    MarketRegistryClient,
    OrderBookClient,
    RoleRegistryClient,
    SettlementTokenClient,
)
from flexledger.chain.deploy import deploy_all
from flexledger.chain.transactions import Signer
from flexledger.identity import keys
from flexledger.identity.eip712 import read_domain
from flexledger.identity.roles import Role
from flexledger.owners import register_with_meters
from flexledger.rules.market import MarketParams
from flexledger.rules.orders import BaselineMethod, Mode, Offer, RequestParams

FOREVER = 2**64 - 1
BATCHES = (50, 200, 500)
DAY = 86_400


def main() -> None:
    with local_chain() as conn:
        authority = keys.signer(keys.dev_accounts()[0], conn)
        tso, dso, aggregator = (Signer(keys.dev_accounts()[i], conn) for i in (1, 2, 3))
        owner = keys.dev_accounts()[4]
        manifest = deploy_all(conn, authority)
        total = sum(BATCHES)
        meter_keys = [keys.new_account() for _ in range(total)]
        meters = [m.address for m in meter_keys]
        roles = RoleRegistryClient(conn, manifest.address("RoleRegistry"), signer=authority)
        subjects = [tso.address, dso.address, aggregator.address, owner.address, *meters]
        ids = [Role.TSO.id, Role.DSO.id, Role.AGGREGATOR.id, Role.PROSUMER.id, *[Role.METER.id] * total]
        for i in range(0, len(subjects), 200):
            chunk = slice(i, i + 200)
            roles.issue_credentials(subjects[chunk], ids[chunk], [0] * len(ids[chunk]), [FOREVER] * len(ids[chunk]),
                                    [b"\x01" * 32] * len(ids[chunk]))
        params = MarketParams()
        MarketRegistryClient(conn, manifest.address("MarketRegistry"), signer=authority).create_market(params.as_tuple())
        grid = GridZonesClient(conn, manifest.address("GridZones"))
        grid.add_zone(0, tso.address, 0, sender=tso)
        grid.add_zone(1, dso.address, 10**9, sender=tso)
        grid.add_zone(2, dso.address, 10**9, sender=dso)  # 3: a feeder
        assets = AssetRegistryClient(conn, manifest.address("AssetRegistry"))
        owner_signer = keys.signer(owner, conn)
        asset_ids: list[int] = []
        for i in range(0, total, 100):
            first = register_with_meters(assets, meter_keys[i:i + 100], [2] * len(meters[i:i + 100]), sender=owner_signer,
                                         fresh=True)
            asset_ids += [e.args["assetId"] for e in first.events if e.name == "AssetRegistered"]
            batch = asset_ids[i:i + 100]
            assets.map_assets(batch, [3] * len(batch), [10_000] * len(batch), [10_000] * len(batch), [1] * len(batch),
                              sender=dso)
        book = OrderBookClient(conn, manifest.address("OrderBook"), signer=aggregator)
        domain = read_domain(conn, book.address)
        token = SettlementTokenClient(conn, manifest.address("SettlementToken"))
        token.mint(owner.address, 10**9, sender=authority)  # a seller without free bond does not sell
        token.approve(book.address, 10**9, sender=owner_signer)
        book.post_bond(owner.address, 10**9, sender=owner_signer)
        day = params.day_start(conn.latest_timestamp()) + 2 * DAY

        def offers(assets_: list[int], nonce: int, start: int) -> list[SignedOffer]:
            out = []
            for n, asset in enumerate(assets_):
                offer = Offer(1, asset, 0, start + (n % 8) * 3600, 4, n % 2, 5_000 + n, 12_000 + n, Mode.DIVISIBLE, 0,
                              BaselineMethod.COMMITTED, keccak(n.to_bytes(32, "big")), conn.latest_timestamp() + 7 * DAY,
                              nonce)
                out.append(SignedOffer(offer, offer.sign(owner, domain)))
            return out

        per_offer: dict[str, float] = {}
        used = 0
        for size in BATCHES:
            group = asset_ids[used:used + size]
            used += size
            for label, nonce, start in (("first", 1, day + 40 * 900), ("later", 2, day + DAY + 40 * 900)):
                result = relay_offers(book, offers(group, nonce, start), batch_size=size)
                assert result.accepted == size, [o.reason for o in result.skipped][:3]
                per_offer[f"batch_{size}_{label}"] = round(result.gas_used / size, 1)

        token.mint(dso.address, 10**12, sender=authority)
        token.approve(book.address, 2**256 - 1, sender=dso)
        def post(start: int) -> int:
            return book.post_request(RequestParams(1, 3, start, 4, 0, 100_000, 20_000).as_tuple(), sender=dso).gas_used or 0

        post(day + 50 * 900)  # the market's very first request also creates the request counter
        first_of_day = post(day + 2 * DAY + 60 * 900)  # the first entry of that day: creates its digest slot
        request_gas = [post(day + 2 * DAY + (61 + n) * 900) for n in range(3)]
        cancel_gas = book.cancel_request(1, sender=dso).gas_used or 0

    figures = {
        "gas_per_offer": per_offer,
        "gas_per_request_first_of_day": first_of_day,
        "gas_per_request": request_gas[-1],
        "gas_cancel_request": cancel_gas,
        "targets": {"gas_per_offer_batch_200": 20_000, "gas_per_request": 150_000},
    }
    for size in BATCHES:
        first, later = per_offer[f"batch_{size}_first"], per_offer[f"batch_{size}_later"]
        print(f"  batch of {size}: {first:,.0f} gas per offer (first offers of their assets), {later:,.0f} (later day)")
    target = per_offer["batch_200_later"]
    print(f"  target 20,000 gas per offer in a batch of 200: {'met' if target <= 20_000 else 'MISSED'} "
          f"on a later day ({target:,.0f}); first offers {per_offer['batch_200_first']:,.0f}")
    print(f"  request posted (escrow transfer included): {first_of_day:,} gas the first of its market day, "
          f"{request_gas[-1]:,} later (target 150,000: {'met' if max(first_of_day, *request_gas) <= 150_000 else 'MISSED'}); "
          f"cancel {cancel_gas:,}")
    report("gas_orderbook", figures)


if __name__ == "__main__":
    main()
