"""The deployment manifest: which contracts live where on which chain, built from which artifacts.

Scripts and outside tools find the contracts through it (``flexledger deploy --json`` prints it).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .connection import ChainConnection
from .errors import ManifestChainMismatchError, ManifestError, ManifestVerificationError

MANIFEST_VERSION = 1
PUSH1, PUSH32 = 0x60, 0x7F


def runtime_code_matches(on_chain: bytes, compiled: bytes) -> bool:
    """Whether ``on_chain`` is the ``compiled`` runtime code with its immutables filled in.

    solc leaves each immutable as ``PUSH32`` of 32 zero bytes in the runtime code and the constructor
    writes the value there; so the two must agree on every opcode and every pushed byte, except the
    data of a ``PUSH32`` that is all zeros in the compiled code.
    """
    if len(on_chain) != len(compiled):
        return False
    i = 0
    while i < len(compiled):
        op = compiled[i]
        if on_chain[i] != op:
            return False
        size = op - PUSH1 + 1 if PUSH1 <= op <= PUSH32 else 0
        pushed, got = compiled[i + 1:i + 1 + size], on_chain[i + 1:i + 1 + size]
        if pushed != got and not (op == PUSH32 and not any(pushed)):
            return False
        i += 1 + size
    return True


@dataclass(frozen=True)
class DeployedContract:
    address: str
    block: int
    tx_hash: str
    code_hash: str
    gas_used: int


@dataclass
class Manifest:
    chain_id: int
    rpc_url: str
    deployer: str
    deployed_at: str
    compiler: str
    source_hash: str
    contracts: dict[str, DeployedContract] = field(default_factory=dict)
    version: int = MANIFEST_VERSION

    def address(self, name: str) -> str:
        try:
            return self.contracts[name].address
        except KeyError:
            raise ManifestError(
                f"the manifest has no contract {name!r} (it has {', '.join(sorted(self.contracts)) or 'none'})",
                hint="run `flexledger deploy` to deploy the current contracts",
            ) from None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        contracts = {k: DeployedContract(**v) for k, v in data.pop("contracts", {}).items()}
        return cls(**data, contracts=contracts)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=1) + "\n")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> Manifest:
        if not path.is_file():
            raise ManifestError(
                f"no deployment manifest at {path}",
                hint="run `flexledger deploy` first (it writes the manifest), or set FLEXLEDGER_MANIFEST",
            )
        try:
            return cls.from_json(json.loads(path.read_text()))
        except (ValueError, TypeError, KeyError) as exc:
            raise ManifestError(f"the manifest {path} is not readable: {exc}", hint="deploy again") from exc

    def register_blocks(self, conn: ChainConnection) -> None:
        """Tell the connection each contract's deployment block: its event queries start there."""
        for deployed in self.contracts.values():
            conn.deployment_blocks[deployed.address.lower()] = deployed.block

    def verify(self, conn: ChainConnection) -> None:
        """What an auditor asks before it trusts the manifest: :meth:`check`, then every contract's
        runtime code is the compiled one in ``contracts/build`` (immutables aside), and every
        contract-typed pointer of one contract (its immutables, and the order book's and oracle's
        settlement) names the manifest's contract of that type (or is still unset: zero). A forged or stale manifest is a
        :class:`ManifestVerificationError` listing each mismatch."""
        from .artifacts import load_artifact
        from .client import ContractClient

        key = json.dumps(self.to_json(), sort_keys=True)
        if key in conn.verified_manifests:
            return
        self.check(conn)
        problems: list[str] = []
        for name, deployed in sorted(self.contracts.items()):
            artifact = load_artifact(name)
            code = bytes(conn.w3.eth.get_code(deployed.address))  # type: ignore[arg-type]
            if not runtime_code_matches(code, bytes.fromhex(artifact.deployed_bytecode.removeprefix("0x"))):
                problems.append(f"{name} at {deployed.address} is not the compiled {name}")
                continue
            problems += self._check_deployment(conn, name, deployed)
            client = type(f"{name}Reader", (ContractClient,), {"CONTRACT": name})(conn, deployed.address)
            for getter, expected in self._pointers(artifact.abi):
                if expected is None:
                    continue
                named = str(client._call(f"{getter}()"))
                # zero: not named yet (a role set once by the authority later); nobody holds it
                if int(named, 16) != 0 and named.lower() != self.contracts[expected].address.lower():
                    problems.append(f"{name}.{getter}() is {named}, not the manifest's {expected} "
                                    f"{self.contracts[expected].address}")
        if problems:
            for deployed in self.contracts.values():  # none of its deployment blocks bounds a query
                conn.deployment_blocks.pop(deployed.address.lower(), None)
            raise ManifestVerificationError(problems)
        conn.verified_manifests.add(key)

    @staticmethod
    def _check_deployment(conn: ChainConnection, name: str, deployed: DeployedContract) -> list[str]:
        """The deployment block bounds every event query of the contract: a block later than the
        real one would hide events. The deployment transaction must have created this address in
        that block; a node that no longer indexes the transaction leaves the queries starting at
        block 0 instead."""
        from web3.exceptions import TransactionNotFound

        try:
            receipt = conn.w3.eth.get_transaction_receipt(deployed.tx_hash)  # type: ignore[arg-type]
        except (TransactionNotFound, ValueError):
            conn.deployment_blocks[deployed.address.lower()] = 0
            return []
        created = str(receipt.get("contractAddress") or "")
        if created.lower() != deployed.address.lower() or int(receipt["blockNumber"]) != deployed.block:
            return [f"{name}'s deployment transaction {deployed.tx_hash} created {created or 'nothing'} in block "
                    f"{receipt['blockNumber']}, not {deployed.address} in block {deployed.block}"]
        return []

    def _pointers(self, abi: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
        """Each address getter without arguments, and the manifest contract it must name: by its
        type (``contract OrderBook``, ``contract IRoleRegistry`` -> RoleRegistry), else for a plain
        address by its name when one contract's name starts with it (``settlement`` -> Settlement,
        ``clearing`` -> ClearingCommitment); None when neither says (an account, a token, an
        authority whose type is a standard interface)."""
        found: list[tuple[str, str | None]] = []
        for item in abi:
            outputs = item.get("outputs", [])
            if (item.get("type") != "function" or item.get("inputs") or len(outputs) != 1
                    or outputs[0].get("type") != "address" or item.get("stateMutability") not in ("view", "pure")):
                continue
            kind = str(outputs[0].get("internalType", "")).removeprefix("contract ")
            if kind in self.contracts:
                found.append((item["name"], kind))
            elif kind.startswith("I") and kind[1:] in self.contracts:
                found.append((item["name"], kind[1:]))
            else:
                prefix = item["name"][:1].upper() + item["name"][1:]
                candidates = [n for n in self.contracts if n.startswith(prefix)] if kind == "address" else []
                if prefix in candidates:
                    candidates = [prefix]
                found.append((item["name"], candidates[0] if len(candidates) == 1 else None))
        return found

    def check(self, conn: ChainConnection, path: Path | str = "manifest") -> None:
        """Fail unless the connected chain is the manifest's and every contract has code there."""
        if conn.chain_id != self.chain_id:
            raise ManifestChainMismatchError(str(path), self.chain_id, conn.chain_id, conn.rpc_url)
        self.register_blocks(conn)
        for name, deployed in self.contracts.items():
            if conn.w3.eth.get_code(deployed.address) in (b"", b"\x00"):  # type: ignore[arg-type]
                raise ManifestError(
                    f"{name} has no code at {deployed.address} on chain {conn.chain_id} ({conn.display_url}): "
                    "the chain was reset since the manifest was written",
                    hint="run `flexledger deploy` again",
                )
