"""Compiling the contracts with the pinned solc through its standard-JSON interface.

The sources under ``contracts/src`` and every file they import (OpenZeppelin from
``node_modules``) are gathered here, so the compiler input is complete and its hash names
exactly what the artifacts came from. Artifacts go to ``contracts/build/`` and are committed;
:func:`check_fresh` tells when they no longer match the sources.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import paths
from .errors import ArtifactError, CompileError

# The same settings as contracts/foundry.toml, so forge and this step build the same code.
EVM_VERSION = "cancun"
OPTIMIZER_RUNS = 20_000  # the contracts run far more often than they are deployed: optimise for calls
# Source units compiled with fewer runs so that they fit EIP-170's 24,576 bytes (foundry.toml's
# `compilation_restrictions` says the same): Settlement carries the market's settlement arithmetic
# and its money checks in one contract; fewer runs cost it about 1% more gas per call.
OPTIMIZER_RUNS_BY_UNIT = {"src/market/Settlement.sol": 1_000, "src/metering/BaselineDisputes.sol": 1_000}
REMAPPINGS = {"@openzeppelin/": "node_modules/@openzeppelin/", "@flexledger/": "contracts/src/"}
BUILD_INFO = "build-info.json"

_IMPORT = re.compile(r"""^\s*import\s+(?:[^"';]*?\s+from\s+)?["']([^"']+)["']\s*;""", re.MULTILINE)


@dataclass(frozen=True)
class CompileResult:
    """What one compile produced: artifacts by contract name, the input hash and the seconds taken."""

    artifacts: dict[str, dict[str, Any]]
    source_hash: str
    compiler_version: str
    seconds: float
    warnings: list[str]


def _resolve_file(unit: str, base: Path) -> Path:
    root = paths.project_root()
    for prefix, target in REMAPPINGS.items():
        if unit.startswith(prefix):
            return root / target / unit[len(prefix) :]
    return base / unit


def _resolve_import(importer: str, imported: str) -> str:
    if imported.startswith("."):
        parts: list[str] = importer.split("/")[:-1]
        for part in imported.split("/"):
            if part == "..":
                if not parts:
                    raise CompileError([f"{importer}: import {imported!r} leaves the project"])
                parts.pop()
            elif part != ".":
                parts.append(part)
        return "/".join(parts)
    return imported


def gather_sources(src: Path | None = None) -> dict[str, str]:
    """Every source unit under ``src`` (``contracts/src``) plus its imports, keyed by unit name.

    Unit names are relative to the folder above ``src`` (``src/access/RoleRegistry.sol``), as
    forge names them, so both compile the same input.
    """
    src = src or paths.contracts_dir() / "src"
    base = src.parent
    pending = sorted(p.relative_to(base).as_posix() for p in src.rglob("*.sol"))
    sources: dict[str, str] = {}
    while pending:
        unit = pending.pop()
        if unit in sources:
            continue
        file = _resolve_file(unit, base)
        if not file.is_file():
            raise CompileError([f"source not found: {unit} (looked at {file})"])
        text = file.read_text(encoding="utf-8")
        sources[unit] = text
        for imported in _IMPORT.findall(text):
            resolved = _resolve_import(unit, imported)
            if resolved not in sources:
                pending.append(resolved)
    return dict(sorted(sources.items()))


def standard_json_input(
    sources: dict[str, str], runs: int = OPTIMIZER_RUNS, only: str | None = None
) -> dict[str, Any]:
    """The compiler input: every source, optimised for ``runs``; ``only`` limits the output to one unit."""
    return {
        "language": "Solidity",
        "sources": {unit: {"content": text} for unit, text in sources.items()},
        "settings": {
            "evmVersion": EVM_VERSION,
            "optimizer": {"enabled": True, "runs": runs},
            "metadata": {"bytecodeHash": "none", "appendCBOR": False},
            "outputSelection": {
                (only or "*"): {
                    "*": [
                        "abi",
                        "evm.bytecode.object",
                        "evm.deployedBytecode.object",
                        "evm.methodIdentifiers",
                        "userdoc",  # the errors' @notice: what a refusal means, for people
                        "devdoc",  # the errors' @custom:hint: what to do about it
                    ]
                }
            },
        },
    }


def standard_json_inputs(sources: dict[str, str]) -> list[dict[str, Any]]:
    """The inputs of one build: the default one, then one per unit with its own optimizer runs."""
    return [standard_json_input(sources)] + [
        standard_json_input(sources, runs, only=unit) for unit, runs in sorted(OPTIMIZER_RUNS_BY_UNIT.items())
    ]


def input_hash(compiler_version: str, standard_inputs: list[dict[str, Any]]) -> str:
    """A digest of everything that determines the bytecode: the compiler and its whole inputs."""
    blob = json.dumps(
        {"compiler": compiler_version, "inputs": standard_inputs}, sort_keys=True, separators=(",", ":")
    )
    return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()


def compiler_version() -> str:
    out = subprocess.run(
        [*paths.solc_command(), "--version"], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r"Version:\s*(\S+)", out)
    if not match:
        raise CompileError([f"cannot read the compiler version from: {out!r}"])
    return match.group(1)


def run_solc(standard_input: dict[str, Any]) -> dict[str, Any]:
    proc = subprocess.run(
        [*paths.solc_command(), "--standard-json"],
        input=json.dumps(standard_input),
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise CompileError([proc.stderr.strip() or f"solc exited with {proc.returncode}"])
    start = proc.stdout.find("{")  # solcjs may print a banner before the JSON
    if start < 0:
        raise CompileError([f"solc printed no JSON: {proc.stdout[:500]!r} {proc.stderr[:500]!r}"])
    output: dict[str, Any] = json.loads(proc.stdout[start:])
    return output


def compile_contracts(src: Path | None = None) -> CompileResult:
    """Compile every contract under ``contracts/src``; raise :class:`CompileError` on errors."""
    started = time.perf_counter()
    version = compiler_version()
    sources = gather_sources(src)
    standard_inputs = standard_json_inputs(sources)
    outputs = [run_solc(standard_input) for standard_input in standard_inputs]
    problems = outputs[0].get("errors", [])
    errors = [p["formattedMessage"] for out in outputs for p in out.get("errors", []) if p.get("severity") == "error"]
    if errors:
        raise CompileError(errors)
    warnings = [
        p["formattedMessage"]
        for p in problems
        if p.get("severity") == "warning" and not p.get("sourceLocation", {}).get("file", "").startswith("@")
    ]
    digest = input_hash(version, standard_inputs)
    compiled_units: dict[str, dict[str, Any]] = dict(outputs[0].get("contracts", {}))
    for out in outputs[1:]:  # a unit with its own runs replaces the default build of that unit
        compiled_units.update({u: c for u, c in out.get("contracts", {}).items() if u in OPTIMIZER_RUNS_BY_UNIT})
    artifacts: dict[str, dict[str, Any]] = {}
    for unit, contracts in compiled_units.items():
        if not unit.startswith("src/"):
            continue  # libraries' own artifacts are not ours to publish
        for name, compiled in contracts.items():
            if name in artifacts:
                raise CompileError(
                    [f"two contracts are named {name}: {artifacts[name]['sourceName']} and {unit}"]
                )
            artifacts[name] = {
                "contractName": name,
                "sourceName": unit,
                "abi": compiled["abi"],
                "bytecode": "0x" + compiled["evm"]["bytecode"]["object"],
                "deployedBytecode": "0x" + compiled["evm"]["deployedBytecode"]["object"],
                "methodIdentifiers": compiled["evm"]["methodIdentifiers"],
                "errorDocs": _error_docs(compiled),
                "compiler": version,
                "sourceHash": digest,
            }
    return CompileResult(artifacts, digest, version, time.perf_counter() - started, warnings)


def _error_docs(compiled: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Each custom error's NatSpec, by signature: its ``notice`` and its ``hint`` (``@custom:hint``)."""
    docs: dict[str, dict[str, str]] = {}
    for source, key, field in ((compiled.get("userdoc", {}), "notice", "notice"),
                               (compiled.get("devdoc", {}), "custom:hint", "hint")):
        for sig, entries in source.get("errors", {}).items():
            for entry in entries:
                if key in entry:
                    docs.setdefault(sig, {})[field] = " ".join(entry[key].split())
    return dict(sorted(docs.items()))


def write_artifacts(result: CompileResult, build: Path | None = None) -> list[Path]:
    """Replace ``contracts/build`` with the result's artifacts and build info."""
    build = build or paths.build_dir()
    build.mkdir(parents=True, exist_ok=True)
    for old in build.glob("*.json"):
        old.unlink()
    written = []
    for name, artifact in sorted(result.artifacts.items()):
        path = build / f"{name}.json"
        path.write_text(json.dumps(artifact, indent=1, sort_keys=True) + "\n")
        written.append(path)
    info = {
        "compiler": result.compiler_version,
        "sourceHash": result.source_hash,
        "evmVersion": EVM_VERSION,
        "optimizerRuns": OPTIMIZER_RUNS,
        "optimizerRunsByUnit": OPTIMIZER_RUNS_BY_UNIT,
        "contracts": sorted(result.artifacts),
    }
    (build / BUILD_INFO).write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
    return written


def current_source_hash() -> str:
    """The hash the artifacts would carry if compiled now (no compiling needed)."""
    return input_hash(compiler_version(), standard_json_inputs(gather_sources()))


def check_fresh(build: Path | None = None) -> None:
    """Raise :class:`ArtifactError` when ``contracts/build`` does not match the sources."""
    build = build or paths.build_dir()
    info_path = build / BUILD_INFO
    if not info_path.is_file():
        raise ArtifactError(
            f"no build info in {build}", hint="run `flexledger compile` (or `make compile`)"
        )
    recorded = json.loads(info_path.read_text())["sourceHash"]
    now = current_source_hash()
    if recorded != now:
        raise ArtifactError(
            f"the artifacts in {build} are stale: built from {recorded}, sources now hash to {now}",
            hint="run `flexledger compile` (or `make compile`) and commit contracts/build/",
        )
