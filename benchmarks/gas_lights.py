"""Gas of the traffic lights: per light entry when a DSO publishes a market day (96 ISPs x 2
directions) for 30 zones in one transaction, and of the TSO-headroom view at depth 4.

Run: .venv/bin/python benchmarks/gas_lights.py   (or `make bench`)
Targets (grid issue): at most 3,000 gas per entry; at most 15,000 gas for the view.
"""

from __future__ import annotations

from pathlib import Path

from _common import local_chain, report  # benchmarks/ is on sys.path when a script runs
from eth_abi import decode, encode
from eth_utils import keccak

from flexledger.chain import structs
from flexledger.chain.artifacts import Artifact
from flexledger.chain.bindings import GridZonesClient, MarketRegistryClient, RoleRegistryClient
from flexledger.chain.compiler import compile_contracts
from flexledger.chain.deploy import creation_data, deploy_all
from flexledger.chain.transactions import Signer
from flexledger.identity import keys
from flexledger.identity.roles import Role
from flexledger.rules.lights import Colour, Direction, Light, pack_day
from flexledger.rules.market import MarketParams

HERE = Path(__file__).resolve().parent
FOREVER = 2**64 - 1
ISP = 900
ZONES = 30


def day_words(up: list[Light], down: list[Light]) -> list[int]:
    return pack_day({Direction.UP: list[Light | None](up), Direction.DOWN: list[Light | None](down)})


def main() -> None:
    with local_chain() as conn:
        authority = keys.signer(keys.dev_accounts()[0], conn)
        tso = Signer(keys.dev_accounts()[1], conn)
        dso = Signer(keys.dev_accounts()[2], conn)
        manifest = deploy_all(conn, authority)
        roles = RoleRegistryClient(conn, manifest.address("RoleRegistry"), signer=authority)
        roles.issue_credential(tso.address, Role.TSO.id, 0, FOREVER, b"\x01" * 32)
        roles.issue_credential(dso.address, Role.DSO.id, 0, FOREVER, b"\x01" * 32)
        markets = MarketRegistryClient(conn, manifest.address("MarketRegistry"), signer=authority)
        markets.create_market(structs.MarketParams.like(MarketParams(isp_seconds=ISP)))
        grid = GridZonesClient(conn, manifest.address("GridZones"))
        grid.add_zone(0, tso.address, 0, sender=tso)  # 1: TSO area
        grid.add_zone(1, dso.address, 10**9, sender=tso)  # 2: DSO perimeter
        grid.add_zone(2, dso.address, 10**9, sender=dso)  # 3: substation
        feeders = [grid.add_zone(3, dso.address, 10**9, sender=dso).event("ZoneAdded").args["zoneId"] for _ in range(ZONES)]
        for zone in (2, 3, *feeders):
            grid.set_static_light(zone, 0, 2, 900_000, sender=dso)
            grid.set_static_light(zone, 1, 2, 900_000, sender=dso)

        day = (conn.latest_timestamp() // 86400 + 2) * 86400
        # a realistic day: mostly YELLOW 800 kW, an evening of tighter YELLOW, a RED hour DOWN; different per zone
        words: list[int] = []
        for i, _ in enumerate(feeders):
            rows = [[Light(Colour.YELLOW, 500_000 - 1000 * i) if 68 <= q < 84 else Light(Colour.RED) if 72 <= q < 76 and d
                     else Light(Colour.YELLOW, 800_000) for q in range(96)] for d in (0, 1)]
            words += day_words(*rows)
        tx = grid.publish_day(1, day, feeders, words, sender=dso)
        entries = ZONES * 2 * 96
        per_entry = (tx.gas_used or 0) / entries

        # the headroom view at depth 4 (feeder > substation > perimeter > area), cold, from a contract
        a = compile_contracts(HERE / "solidity" / "src").artifacts["HeadroomProbe"]
        probe_artifact = Artifact("HeadroomProbe", a["sourceName"], a["abi"], a["bytecode"], a["deployedBytecode"], a["sourceHash"])
        sent = authority.send(None, creation_data(probe_artifact, [grid.address]), gas=1_000_000)
        probe = conn.w3.eth.wait_for_transaction_receipt(sent)["contractAddress"]

        def measure(zone: int, isp_start: int) -> tuple[int, bool, int]:
            data = keccak(text="measure(uint32,uint32,uint64,uint8)")[:4] + encode(
                ["uint32", "uint32", "uint64", "uint8"], [1, zone, isp_start, 0]
            )
            used, allowed, headroom = decode(["uint256", "bool", "uint256"], bytes(conn.w3.eth.call({"to": probe, "data": data})))
            return int(used), bool(allowed), int(headroom)

        # a feeder whose perimeter and substation have not published: their static lights hold
        used_mixed, _, _ = measure(feeders[1], day + 70 * ISP)
        # the published case: every zone on the path below the root has dynamic lights that day
        grid.publish_day(1, day, [2, 3], day_words([Light(Colour.YELLOW, 700_000)] * 96, [Light(Colour.YELLOW, 700_000)] * 96) * 2, sender=dso)
        used, allowed, headroom = measure(feeders[0], day + 70 * ISP)
        # a day nobody published: static lights only
        used_static, _, _ = measure(feeders[2], day + 86_400 + 70 * ISP)

    figures = {
        "publish_day_30_zones_gas": tx.gas_used,
        "entries": entries,
        "gas_per_entry": round(per_entry, 1),
        "tso_headroom_view_depth4_gas": int(used),
        "tso_headroom_view_depth4_leaf_published_gas": used_mixed,
        "tso_headroom_view_depth4_static_only_gas": used_static,
        "headroom_w": int(headroom) if allowed else 0,
        "targets": {"gas_per_entry": 3000, "tso_headroom_view_depth4_gas": 15000},
    }
    print(f"  publish a day for {ZONES} zones: {tx.gas_used:,} gas for {entries:,} entries = {per_entry:,.0f} gas/entry "
          f"(target 3,000: {'met' if per_entry <= 3000 else 'MISSED'})")
    print(f"  TSO headroom view at depth 4, cold, whole path published: {int(used):,} gas "
          f"(target 15,000: {'met' if used <= 15000 else 'MISSED'})")
    print(f"  ... only the feeder published: {used_mixed:,} gas; static lights only: {used_static:,} gas")
    report("gas_lights", figures)


if __name__ == "__main__":
    main()
