"""The layout's promises: the edge agent stands alone; component folders are subpackages (the
import direction is tests/test_import_direction.py)."""

from __future__ import annotations

import fnmatch
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from flexledger.chain import paths

ROOT = paths.project_root()


def test_edge_agent_is_its_own_distribution() -> None:
    exe = Path(sys.executable).parent / "flexledger-edge"
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("flexledger-edge ")


def test_component_folders_are_subpackages() -> None:
    import flexledger.chain
    import flexledger.identity

    assert Path(flexledger.chain.__file__).resolve().parent == ROOT / "chain"
    assert Path(flexledger.identity.__file__).resolve().parent == ROOT / "identity"


def test_every_package_folder_is_installed() -> None:
    import importlib

    mapping = {"flexledger": "flexledger", "chain": "flexledger.chain", "identity": "flexledger.identity"}
    for folder, package in mapping.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder).parts
            importlib.import_module(".".join([package, *relative]))


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


def test_the_readme_layout_table_names_real_folders_and_packages() -> None:
    package_dirs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    for folders, packages in _layout_table():
        for folder in folders:
            assert folder.endswith("/") and (ROOT / folder).is_dir(), f"README names {folder}, which is not a folder"
        for package in packages:
            root = max((p for p in package_dirs if package == p or package.startswith(p + ".")), key=len)
            path = ROOT / package_dirs[root] / Path(*package.removeprefix(root).split(".")[1:])
            assert (path / "__init__.py").is_file(), f"README names {package}, which is not a package"


def test_the_readme_layout_table_names_every_folder_and_package() -> None:
    named = {folder.rstrip("/") for folders, _ in _layout_table() for folder in folders}
    top = {d.name for d in ROOT.iterdir() if d.is_dir() and not d.name.startswith(".") and not _ignored(d.name)}
    subpackages = {f"flexledger/{d.name}" for d in (ROOT / "flexledger").iterdir() if (d / "__init__.py").is_file()}
    assert (top | subpackages) - named == set(), "README's layout table leaves these out"
