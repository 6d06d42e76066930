"""Compile seconds and deployment gas per contract.

Run: .venv/bin/python benchmarks/deploy.py   (or `make bench`)
"""

from __future__ import annotations

from _common import local_chain, report  # benchmarks/ is on sys.path when a script runs

from flexledger.chain.compiler import compile_contracts
from flexledger.chain.deploy import deploy_all
from flexledger.identity import keys


def main() -> None:
    result = compile_contracts()  # into memory only: contracts/build is left as committed
    print(f"compiled {len(result.artifacts)} contracts in {result.seconds:.2f} s (solc {result.compiler_version})")
    with local_chain() as conn:
        manifest = deploy_all(conn, keys.signer(keys.dev_accounts()[0], conn))
    for name, c in manifest.contracts.items():
        print(f"  {name:<24} {c.gas_used:>12,} gas")
    report(
        "deploy",
        {
            "compile_seconds": round(result.seconds, 2),
            "deploy_gas": {n: c.gas_used for n, c in manifest.contracts.items()},
            "deploy_gas_total": sum(c.gas_used for c in manifest.contracts.values()),
        },
    )


if __name__ == "__main__":
    main()
