"""The layout's promises: the edge agent stands alone; component folders are subpackages (the
import direction is tests/test_import_direction.py)."""

from __future__ import annotations

import subprocess
import sys
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
