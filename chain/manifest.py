"""The deployment manifest: which contracts live where on which chain, built from which artifacts.

Scripts and outside tools find the contracts through it (``flexledger deploy --json`` prints it).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .connection import ChainConnection
from .errors import ManifestChainMismatchError, ManifestError

MANIFEST_VERSION = 1


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
