"""Gas of the settlement, per settled award-ISP with its proofs, per finalisation (the claim and
the bond draw), per withdrawal, per dispute and per refund.

The figures come from the forge gas tests `SettlementGasTest.test_gas_settlement` and
`test_gas_settleMany` (16 offers of one award-ISP each in one `settleMany`, as a market day is
settled, every reading proof of depth 20; then one `finaliseMany`)
(contracts/test/market/Settlement.t.sol), and `SettlementPortfolioGasTest.test_gas_settlePortfolio`
(a portfolio of three members settled over two ISPs: every member's reading proven, through
DeliveryMeter; contracts/test/market/SettlementPortfolio.t.sol): the world is built by the Settlement fixture (a final
clearing result, anchored readings, committed baselines, bonds), the contracts touched are cooled
before each measured call, and a call's transaction gas is its execution gas plus the intrinsic
gas of its calldata. This script runs that test and prints what it logged.

Run: .venv/bin/python benchmarks/gas_settlement.py   (or `make bench`)
Target (settlement issue): at most 60,000 gas per settled award-ISP with a reading proof of depth 20.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from _common import report  # benchmarks/ is on sys.path when a script runs

ROOT = Path(__file__).resolve().parent.parent
LINE = re.compile(r"^\s*(?P<what>.+): transaction gas \(\+ intrinsic\): (?P<gas>\d+)$")


def main() -> None:
    run = subprocess.run(
        [str(ROOT / "node_modules" / ".bin" / "forge"), "test", "--match-test", "test_gas_settle", "-vv"],
        cwd=ROOT / "contracts", capture_output=True, text=True, check=True,
    )
    figures = {m["what"]: int(m["gas"]) for m in map(LINE.match, run.stdout.splitlines()) if m}
    if not figures:
        raise SystemExit("the forge gas test printed no figures:\n" + run.stdout[-2000:])
    for what, gas in figures.items():
        print(f"  {what}: {gas:,} gas")
    settle = figures["settle, one award-ISP, reading proof of depth 20"]
    many = figures["settleMany, 16 offers of one award-ISP (reading proofs of depth 20), per award-ISP"]
    block = figures["settle a block of 3 award-ISPs (reading proofs of depth 4), per award-ISP"]
    portfolio = next(gas for what, gas in figures.items() if what.startswith("settle a portfolio"))
    print(f"  target 60,000 gas per settled award-ISP with a proof of depth 20: "
          f"{'met' if many <= 60_000 else 'MISSED'} ({many:,} per award-ISP settled 16 to a transaction; "
          f"{settle:,} for an offer of one award-ISP alone; {block:,} per award-ISP in a block of three; "
          f"{portfolio:,} per award-ISP of a portfolio of three members, whose three readings are each proven)")
    report("gas_settlement", {"transaction_gas": figures, "target_gas_per_award_isp": 60_000})


if __name__ == "__main__":
    main()
