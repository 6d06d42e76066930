"""Reading the compiled artifacts in ``contracts/build``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from . import paths
from .errors import ArtifactError


@dataclass(frozen=True)
class Artifact:
    """One compiled contract: its ABI, bytecode and the hash of the input it came from."""

    name: str
    source_name: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str
    source_hash: str
    # each custom error's NatSpec by signature: {"notice": ..., "hint": ...} (either may be absent)
    error_docs: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def deployable(self) -> bool:
        return self.bytecode not in ("0x", "")

    @property
    def code_hash(self) -> str:
        """A short identity of the bytecode, recorded in deployment manifests."""
        from eth_utils import keccak

        return "0x" + keccak(hexstr=self.bytecode).hex()


def _read(path: Path) -> Artifact:
    data = json.loads(path.read_text())
    return Artifact(
        name=data["contractName"],
        source_name=data["sourceName"],
        abi=data["abi"],
        bytecode=data["bytecode"],
        deployed_bytecode=data["deployedBytecode"],
        source_hash=data["sourceHash"],
        error_docs=data.get("errorDocs", {}),
    )


@cache
def load_artifact(name: str, build: Path | None = None) -> Artifact:
    """The artifact of contract ``name``; :class:`ArtifactError` if it was never compiled."""
    path = (build or paths.build_dir()) / f"{name}.json"
    if not path.is_file():
        raise ArtifactError(
            f"no compiled artifact for contract {name!r} in {path.parent}",
            hint="run `flexledger compile` (or `make compile`)",
        )
    return _read(path)


@cache
def all_artifacts(build: Path | None = None) -> dict[str, Artifact]:
    folder = build or paths.build_dir()
    return {
        artifact.name: artifact
        for artifact in (
            _read(p) for p in sorted(folder.glob("*.json")) if p.name != "build-info.json"
        )
    }
