"""The import direction (issue #18): the pure core at the bottom, the CLI and the demo at the top,
the edge agent apart.

- The core (``flexledger.errors``, ``flexledger.times``, ``flexledger.rules``) imports only itself
  and the pure libraries declared in ``CORE_LIBRARIES``: no web3, no network, no SQL.
- The optimiser imports only the core and its solver (``OPTIMISER_LIBRARIES``).
- Nothing below the CLI imports the CLI or the demo.
- The edge agent imports nothing of flexledger (``EDGE_MAY_IMPORT`` is empty on purpose).

The static checks read every ``import`` in the source, lazy ones in functions included; the
subprocess checks catch what the static ones cannot see, a pure module reaching an impure one
through a third package.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

from flexledger.chain import paths

ROOT = paths.project_root()

CORE = ("flexledger.errors", "flexledger.times", "flexledger.rules")
# Encoding, hashing and ECDSA recovery: pure functions over bytes. eth-account is its EIP-712
# encoder (never a hand-written one); none of them opens a socket or a database.
CORE_LIBRARIES = frozenset({"eth_abi", "eth_utils", "eth_account", "coincurve"})
OPTIMISER = "flexledger.optimiser"
OPTIMISER_LIBRARIES = frozenset({"pyomo", "highspy", "numpy"})
# The top of the house: the only modules that may import the CLI or the demo.
TOP = ("flexledger.cli", "flexledger.demo.run")
EDGE_MAY_IMPORT: frozenset[str] = frozenset()
# What "impure" means when a pure module is imported: chain clients, the network, SQL, brokers,
# and flexledger's own impure packages.
IMPURE = (
    "web3", "requests", "urllib3", "aiohttp", "websockets", "sqlalchemy", "psycopg", "psycopg2", "paho",
    "flexledger.chain", "flexledger.identity", "flexledger.oracle", "flexledger.cli",
)


def _source_roots() -> dict[str, Path]:
    """Package name -> folder, as pyproject.toml's package-dir installs them."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    return {package: ROOT / folder for package, folder in config["package-dir"].items()}


def _modules() -> Iterator[tuple[str, Path]]:
    """Every module of the flexledger distribution, by name, with its file."""
    roots = _source_roots()
    for package, folder in roots.items():
        nested = {p for p in roots.values() if p != folder and p.is_relative_to(folder)}
        for file in sorted(folder.rglob("*.py")):
            if any(file.is_relative_to(n) for n in nested):
                continue
            parts = file.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            yield ".".join([package, *parts]), file


def _imports(module: str, file: Path) -> Iterator[tuple[str, int]]:
    """The absolute names ``file`` imports (``from a import b`` gives ``a`` and ``a.b``), with lines."""
    package = module.split(".") if file.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(ast.parse(file.read_text(), str(file))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            yield base, node.lineno
            for alias in node.names:
                yield f"{base}.{alias.name}", node.lineno


def _within(name: str, packages: tuple[str, ...] | frozenset[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def _library(name: str) -> str | None:
    """The third-party distribution's top-level package ``name`` belongs to; None for the standard
    library and flexledger."""
    top = name.split(".")[0]
    return None if top in sys.stdlib_module_names or top in ("flexledger", "__future__") else top


def _offences(layer: tuple[str, ...], own: tuple[str, ...], libraries: frozenset[str]) -> list[str]:
    found = []
    for module, file in _modules():
        if not _within(module, layer):
            continue
        for name, line in _imports(module, file):
            library = _library(name)
            if (library is None and name.startswith("flexledger") and not _within(name, own)) or (
                library is not None and library not in libraries
            ):
                found.append(f"{file.relative_to(ROOT)}:{line} imports {name}")
    return found


def test_the_source_scan_sees_relative_and_lazy_imports() -> None:
    # the scan must resolve `from .x import y` and see imports inside functions, or it proves nothing
    names = {m: dict(_imports(m, f)) for m, f in _modules() if m in ("flexledger.rules.orders", "flexledger.cli.app")}
    assert "flexledger.rules.typed_data" in names["flexledger.rules.orders"]
    assert any(_within(n, ("flexledger.cli",)) for n in names["flexledger.cli.app"])
    assert len({m for m, _ in _modules()}) > 100


def test_the_core_imports_only_the_core_and_pure_libraries() -> None:
    assert _offences(CORE, CORE, CORE_LIBRARIES) == []


def test_the_optimiser_imports_only_the_core_and_its_solver() -> None:
    assert _offences((OPTIMISER,), (*CORE, OPTIMISER), OPTIMISER_LIBRARIES) == []


def test_nothing_below_the_cli_imports_the_cli_or_the_demo() -> None:
    found = [
        f"{file.relative_to(ROOT)}:{line} imports {name}"
        for module, file in _modules() if not _within(module, TOP)
        for name, line in _imports(module, file) if _within(name, TOP)
    ]
    assert found == []


# Run in a fresh interpreter: imports the modules in turn and reports the impure packages each was
# the first to load, so that an offence names the module that caused it.
_LOAD_PROBE = """
import importlib, json, sys
names, impure = json.loads(sys.argv[1]), tuple(json.loads(sys.argv[2]))
def loaded():
    return {p for p in impure for m in list(sys.modules) if m == p or m.startswith(p + ".")}
offences, before = {}, loaded()
for name in names:
    importlib.import_module(name)
    now = loaded()
    if now - before:
        offences[name] = sorted(now - before)
    before = now
print(json.dumps(offences))
"""


def _first_loaded(names: list[str], impure: tuple[str, ...], cwd: Path) -> dict[str, list[str]]:
    """Module -> the impure packages that importing it (in ``names``' order) loaded first."""
    assert names
    # run outside the checkout: its root's folders would shadow the installed package
    out = subprocess.run([sys.executable, "-c", _LOAD_PROBE, json.dumps(names), json.dumps(impure)],
                         capture_output=True, text=True, check=True, cwd=cwd, timeout=300).stdout
    result: dict[str, list[str]] = json.loads(out)
    return result


def test_importing_the_core_and_the_optimiser_loads_nothing_impure(tmp_path: Path) -> None:
    names = [m for m, _ in _modules() if _within(m, (*CORE, OPTIMISER))]
    assert {"flexledger.rules.orders", "flexledger.optimiser.clearing"} <= set(names)
    assert _first_loaded(names, IMPURE, tmp_path) == {}


def test_the_edge_agent_imports_nothing_of_flexledger() -> None:
    for file in (ROOT / "edge-agent").rglob("*.py"):
        for node in ast.walk(ast.parse(file.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                if name.split(".")[0] == "flexledger":
                    assert _within(name, EDGE_MAY_IMPORT), f"{file}: imports {name}"


def test_importing_the_edge_agent_loads_nothing_of_flexledger(tmp_path: Path) -> None:
    package = ROOT / "edge-agent" / "flexledger_edge"
    names = sorted(".".join(f.relative_to(package.parent).with_suffix("").parts).removesuffix(".__init__")
                   for f in package.rglob("*.py"))
    assert "flexledger_edge.agent" in names
    # nor web3: a gateway is small (edge-agent/pyproject.toml)
    assert _first_loaded(names, ("flexledger", "web3"), tmp_path) == {}
