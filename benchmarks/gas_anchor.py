"""Gas per anchored root in MeterOracle, for trees of 10 to 100,000 readings (it must not depend
on their number), the market's first anchor apart (it also keeps the market's ISP length).

Run: .venv/bin/python benchmarks/gas_anchor.py   (or `make bench`)
Target (metering issue): at most 60,000 gas per root, independent of the number of readings.
"""

from __future__ import annotations

from _common import local_chain, report  # benchmarks/ is on sys.path when a script runs

from flexledger.chain import structs
from flexledger.chain.bindings import MarketRegistryClient, MeterOracleClient, RoleRegistryClient
from flexledger.chain.deploy import deploy_all
from flexledger.chain.transactions import Signer
from flexledger.identity import keys
from flexledger.identity.roles import Role
from flexledger.oracle.merkle import StandardMerkleTree
from flexledger.oracle.readings import LEAF_ENCODING
from flexledger.rules.market import MarketParams

SIZES = (10, 1_000, 100_000)


def main() -> None:
    with local_chain() as conn:
        authority = keys.signer(keys.dev_accounts()[0], conn)
        oracle_signer = Signer(keys.dev_accounts()[1], conn)
        manifest = deploy_all(conn, authority)
        RoleRegistryClient(conn, manifest.address("RoleRegistry"), signer=authority).issue_credential(
            oracle_signer.address, Role.ORACLE.id, 0, 2**64 - 1, b"\x01" * 32)
        MarketRegistryClient(conn, manifest.address("MarketRegistry"), signer=authority).create_market(
            structs.MarketParams.like(MarketParams()))
        oracle = MeterOracleClient(conn, manifest.address("MeterOracle"), signer=oracle_signer)
        isp = (conn.latest_timestamp() // 900 - 10) * 900
        gas: dict[str, int] = {}
        for n, size in enumerate(("first", *SIZES)):
            count = 10 if size == "first" else int(size)
            meters = [("0x" + f"{k + 1:040x}", isp + n * 900, 1, 1000 + k, 0, b"\x5a" * 32) for k in range(count)]
            tree = StandardMerkleTree.of(meters, LEAF_ENCODING)
            tx = oracle.anchor_root(1, isp + n * 900, tree.root, count)
            gas[str(size)] = tx.gas_used or 0
    later = [gas[str(s)] for s in SIZES]
    for size in SIZES:
        print(f"  root of {size:>7,} readings: {gas[str(size)]:,} gas")
    print(f"  the market's first anchor (keeps its ISP length): {gas['first']:,} gas")
    print(f"  target 60,000 gas per root: {'met' if max(later) <= 60_000 else 'MISSED'}; "
          f"independent of the number of readings: {'yes' if max(later) - min(later) <= 64 else 'no'} "
          f"(the spread, {max(later) - min(later)} gas, is the count's calldata bytes)")
    report("gas_anchor", {"gas_per_root": {str(s): gas[str(s)] for s in SIZES}, "first_anchor_of_market": gas["first"],
                          "target": 60_000})


if __name__ == "__main__":
    main()
