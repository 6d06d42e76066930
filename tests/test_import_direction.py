"""The import direction (issue #18): the pure core at the bottom, the CLI and the demo at the top,
the edge agent apart.

- The core (``flexledger.errors``, ``flexledger.times``, ``flexledger.rules``) imports only itself
  and the pure libraries declared in ``CORE_LIBRARIES``: no web3, no network, no SQL.
- The optimiser imports only the core and its solver (``OPTIMISER_LIBRARIES``).
- Nothing below the CLI imports the CLI or the demo.
- The edge agent imports nothing of flexledger (``EDGE_MAY_IMPORT`` is empty on purpose).
- Each component (a folder with its own pyproject.toml) imports exactly the components and
  libraries its pyproject.toml declares: a new dependency is declared where it is used, and a
  declaration nobody uses goes.

The static checks read every ``import`` in the source, lazy ones in functions included; the
subprocess checks catch what the static ones cannot see, a pure module reaching an impure one
through a third package.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator, Mapping
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path

from components import NAMESPACE, ROOT, Component, components, normalise, provider

# The bottom of the house: what the flexledger-core distribution ships (errors, times, rules, ...).
CORE = tuple(f"{NAMESPACE}.{p}" for c in components() if c.name == "flexledger-core" for p in c.portions())
# Encoding, hashing and ECDSA recovery: pure functions over bytes. eth-account is its EIP-712
# encoder (never a hand-written one); none of them opens a socket or a database.
CORE_LIBRARIES = frozenset({"eth_abi", "eth_utils", "eth_account", "coincurve"})
OPTIMISER = "flexledger.optimiser"
OPTIMISER_LIBRARIES = frozenset({"pyomo", "highspy", "numpy"})
# The top of the house: the only modules that may import the CLI or the demo.
TOP = ("flexledger.cli", "flexledger.demo", "flexledger.index.commands", "flexledger.api.commands")
EDGE_MAY_IMPORT: frozenset[str] = frozenset()
# What "impure" means when a pure module is imported: chain clients, the network, SQL, brokers,
# and flexledger's own impure packages.
IMPURE = (
    "web3", "requests", "urllib3", "aiohttp", "websockets", "sqlalchemy", "psycopg", "psycopg2", "paho",
    "flexledger.chain", "flexledger.identity", "flexledger.oracle", "flexledger.cli",
)


def _modules() -> Iterator[tuple[str, Path]]:
    """Every module of the flexledger namespace, by name, with its file, over every component."""
    for component in components():
        for module, file in component.modules():
            if module.split(".")[0] == NAMESPACE:
                yield module, file


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


@cache
def _installed() -> Mapping[str, list[str]]:
    """Top-level package -> the installed distributions providing it, read once (each reading walks
    every installed distribution's metadata)."""
    return packages_distributions()


def _distributions(name: str, own: Component) -> set[str]:
    """The distributions (normalised) that can provide the imported ``name``: a component of the
    checkout, or the installed distributions of its top-level package; empty for the standard library."""
    top = name.split(".")[0]
    if top in sys.stdlib_module_names or top == "__future__" or name == NAMESPACE:
        return set()
    component = provider(name)
    if component is not None:
        return {component.name}
    if top == NAMESPACE:  # a name inside the namespace that no component ships: the import is wrong
        return {f"<nothing ships {name}>"}
    return {normalise(d) for d in _installed().get(top, [f"<not installed: {top}>"])} - {own.name}


def _uses(component: Component) -> Iterator[tuple[str, str, set[str]]]:
    """(where, imported name, the distributions that provide it) for each import of ``component``."""
    for module, file in component.modules():
        for name, line in _imports(module, file):
            provided = _distributions(name, component)
            if provided and component.name not in provided:
                yield f"{file.relative_to(ROOT)}:{line}", name, provided


def test_the_components_are_read_from_their_pyproject_files() -> None:
    names = {c.name for c in components()}
    assert {"flexledger", "flexledger-core", "flexledger-chain", "flexledger-optimiser", "flexledger-edge-agent"} <= names
    assert "flexledger.rules" in CORE and "flexledger.chain" not in CORE


def test_each_component_imports_only_what_its_pyproject_declares() -> None:
    found = [f"{where} imports {name} ({' or '.join(sorted(provided))}), which {component.folder.name}/pyproject.toml "
             "does not declare"
             for component in components() for where, name, provided in _uses(component)
             if not provided & component.requires]
    assert found == []


def test_each_declared_dependency_is_imported() -> None:
    unused = []
    for component in components():
        used = set().union(*(provided for _, _, provided in _uses(component)))
        unused += [f"{component.folder.name}/pyproject.toml declares {d}" for d in sorted(component.requires - used)]
    assert unused == []


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
