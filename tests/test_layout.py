"""The layout's promises: one namespace package over the component folders, each its own
distribution; Python run from the checkout's root imports the installed package; the edge agent
stands alone; README's layout table names the real folders and packages (the import direction is
tests/test_import_direction.py)."""

from __future__ import annotations

import fnmatch
import importlib
import re
import subprocess
import sys
from pathlib import Path

from components import NAMESPACE, ROOT, components


def test_edge_agent_is_its_own_distribution() -> None:
    exe = Path(sys.executable).parent / "flexledger-edge"
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("flexledger-edge ")


def test_flexledger_is_one_namespace_over_the_component_folders() -> None:
    import flexledger

    portions = {c.source / NAMESPACE for c in components() if c.portions()}
    assert {p.parent.name for p in portions} >= {"core", "chain", "identity", "optimiser", "oracle", "market"}
    assert getattr(flexledger, "__file__", None) is None, "flexledger must have no __init__.py"
    assert not [p for p in portions if (p / "__init__.py").exists()]
    assert portions <= {Path(p).resolve() for p in flexledger.__path__}


def test_each_package_comes_from_its_component_folder() -> None:
    for component in components():
        for module, file in component.modules():
            if file.name == "__init__.py":
                loaded = importlib.import_module(module)
                assert Path(str(loaded.__file__)).resolve() == file.resolve(), f"{module} is not {file}"


def test_python_run_from_the_root_imports_the_installed_package() -> None:
    # the trap the old layout had: a folder of the root shadowing the package
    probe = "import flexledger.chain, flexledger.settlement; print(flexledger.settlement.__path__[0])"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert Path(out.strip()).resolve() == ROOT / "market" / NAMESPACE / "settlement"


def _layout_table() -> list[tuple[list[str], list[str]]]:
    """README "## How it is laid out": each row's folders (first cell) and the dotted package
    names it gives (second cell), from their `backticks`."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## How it is laid out\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    assert rows, "README's layout section has no table"
    table = []
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        table.append((re.findall(r"`([^`]+)`", cells[0]),
                      re.findall(r"`(flexledger\.[a-z_.]+)`", cells[1])))
    return table


def _ignored(name: str) -> bool:
    """A top-level folder the checkout's .gitignore leaves out (venv, node_modules, build output)."""
    patterns = [p.strip().strip("/") for p in (ROOT / ".gitignore").read_text().splitlines()
                if p.strip() and not p.startswith("#")]
    return any(fnmatch.fnmatch(name, p) for p in patterns)


def _exists(name: str) -> bool:
    """A package or a module of the flexledger namespace, in any component's folder."""
    parts = name.split(".")
    return any((c.source / Path(*parts) / "__init__.py").is_file() or (c.source / Path(*parts)).with_suffix(".py").is_file()
               for c in components())


def test_the_readme_layout_table_names_real_folders_and_packages() -> None:
    for folders, packages in _layout_table():
        for folder in folders:
            assert folder.endswith("/") and (ROOT / folder).is_dir(), f"README names {folder}, which is not a folder"
        for package in packages:
            assert _exists(package), f"README names {package}, which is neither a package nor a module"


def test_the_readme_layout_table_names_every_folder_and_package() -> None:
    """Every top-level folder, and every package of a component folder that holds more than one
    (core/, market/: the pipeline's steps)."""
    named = {folder.rstrip("/") for folders, _ in _layout_table() for folder in folders}
    top = {d.name for d in ROOT.iterdir() if d.is_dir() and not d.name.startswith(".") and not _ignored(d.name)}
    subpackages = {str((c.source / NAMESPACE / p).relative_to(ROOT)) for c in components() if len(c.portions()) > 1
                   for p in c.portions() if (c.source / NAMESPACE / p / "__init__.py").is_file()}
    assert {"market/flexledger/settlement", "core/flexledger/rules"} <= subpackages
    assert (top | subpackages) - named == set(), "README's layout table leaves these out"


def test_the_tests_mirror_the_packages() -> None:
    """Each folder of tests/ is named for a component folder (tests/chain/) or for a package of one
    (tests/market/settlement/ holds flexledger.settlement's tests); tests/edge/ (the edge agent) and
    tests/redteam/ (the reviews' findings, across packages) apart."""
    tests = ROOT / "tests"
    folders = {f.parent.relative_to(tests) for f in tests.rglob("test_*.py")} - {Path()}
    mirrored = {Path("edge"), Path("redteam")}
    for c in components():
        mirrored.add(c.source.relative_to(ROOT))
        if len(c.portions()) > 1:
            mirrored |= {c.source.relative_to(ROOT) / p for p in c.portions() if (c.source / NAMESPACE / p).is_dir()}
    assert {"chain", "market/settlement"} <= {str(f) for f in folders}
    assert folders - mirrored == set(), "these test folders mirror no package"
