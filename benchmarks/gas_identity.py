"""Gas of the identity contracts: credential grant and revoke, hasMarketRole from another
contract, DID owner change and attribute set.

Run: .venv/bin/python benchmarks/gas_identity.py   (or `make bench`)
Targets (identity issue): hasMarketRole from another contract <= 5,500 gas (floor 4,700:
a cold account plus a cold slot); a grant <= 80,000 gas.
"""

from __future__ import annotations

from pathlib import Path

from _common import local_chain, report  # benchmarks/ is on sys.path when a script runs
from eth_abi import decode, encode
from eth_utils import keccak

from flexledger.chain.artifacts import Artifact
from flexledger.chain.bindings import DIDRegistryClient, RoleRegistryClient
from flexledger.chain.compiler import compile_contracts
from flexledger.chain.deploy import creation_data, deploy_all
from flexledger.identity import keys
from flexledger.identity.roles import Role

HERE = Path(__file__).resolve().parent
FAR_FUTURE = 2**64 - 1


def main() -> None:
    with local_chain() as conn:
        accounts = keys.dev_accounts()
        admin = keys.signer(accounts[0], conn)
        manifest = deploy_all(conn, admin)
        roles = RoleRegistryClient(conn, manifest.address("RoleRegistry"), signer=admin)
        dids = DIDRegistryClient(conn, manifest.address("DIDRegistry"), signer=admin)

        now = conn.latest_timestamp()
        subjects = [keys.new_account().address for _ in range(21)]
        grants = [
            roles.issue_credential(s, Role.METER.id, now, FAR_FUTURE, keccak(text=s)).gas_used or 0
            for s in subjects[:10]
        ]
        revokes = [roles.revoke_credential(s, Role.METER.id).gas_used or 0 for s in subjects[:5]]
        batch = roles.issue_credentials(
            subjects[10:20], [Role.METER.id] * 10, [now] * 10, [FAR_FUTURE] * 10, [keccak(text=s) for s in subjects[10:20]]
        )
        per_batched_grant = (batch.gas_used or 0) // 10

        compiled = compile_contracts(HERE / "solidity" / "src").artifacts["HasRoleProbe"]
        probe = Artifact("HasRoleProbe", compiled["sourceName"], compiled["abi"], compiled["bytecode"],
                         compiled["deployedBytecode"], compiled["sourceHash"])
        tx = admin.send(None, creation_data(probe, [roles.address]), gas=1_000_000)
        probe_address = conn.w3.eth.wait_for_transaction_receipt(tx)["contractAddress"]

        def has_role_gas(how: str, subject: str) -> tuple[int, bool]:
            # eth_call: a fresh transaction, so the registry account and the slot are cold
            data = keccak(text=f"{how}(address,bytes32)")[:4] + encode(["address", "bytes32"], [subject, Role.METER.id])
            used, held = decode(["uint256", "bool"], bytes(conn.w3.eth.call({"to": probe_address, "data": data})))
            return int(used), bool(held)

        held_gas, held = has_role_gas("measureGated", subjects[15])
        missing_gas, missing = has_role_gas("measureGated", subjects[20])
        interface_gas, _ = has_role_gas("measureInterface", subjects[15])
        assert held and not missing

        identity = keys.dev_accounts()[1]
        owner = keys.signer(identity, conn)
        attribute = dids.set_attribute(
            identity.address, b"did/svc/FlexledgerAPI".ljust(32, b"\0"), b"https://api.example/flex", 86400 * 365,
            sender=owner,
        ).gas_used or 0
        change_owner = dids.change_owner(identity.address, accounts[2].address, sender=owner).gas_used or 0

    figures = {
        "grant_gas": max(grants),
        "grant_gas_batched_10": per_batched_grant,
        "revoke_gas": max(revokes),
        "has_role_from_contract_gas": held_gas,
        "has_role_from_contract_gas_not_held": missing_gas,
        "has_role_via_solidity_interface_gas": interface_gas,
        "change_owner_gas": change_owner,
        "set_attribute_gas": attribute,
        "targets": {"has_role_from_contract_gas": 5500, "grant_gas": 80000},
    }
    for key, value in figures.items():
        if key != "targets":
            print(f"  {key:<40} {value:>10,}")
    print(f"  hasMarketRole target 5,500: {'met' if held_gas <= 5500 else 'MISSED'}; "
          f"grant target 80,000: {'met' if max(grants) <= 80000 else 'MISSED'}")
    report("gas_identity", figures)


if __name__ == "__main__":
    main()
