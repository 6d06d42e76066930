"""Where the project's own files are: the contracts, their build artifacts and the Node tools."""

from __future__ import annotations

import os
import platform
import shutil
from pathlib import Path

from .errors import ToolMissingError


def project_root() -> Path:
    """The repository root: ``FLEXLEDGER_PROJECT_ROOT`` or the checkout this package lies in.

    The package is installed editable from ``chain/flexledger/chain/``, so the checkout that holds
    ``contracts/`` and ``node_modules/`` is three folders up.
    """
    override = os.environ.get("FLEXLEDGER_PROJECT_ROOT")
    if override:
        return Path(override).resolve()
    return Path(__file__).resolve().parents[3]


def contracts_dir() -> Path:
    return project_root() / "contracts"


def build_dir() -> Path:
    return contracts_dir() / "build"


def node_modules() -> Path:
    return project_root() / "node_modules"


def _foundry_platform() -> str:
    system = platform.system().lower()
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        machine, machine
    )
    return f"{'win32' if system == 'windows' else system}-{arch}"


def foundry_tool(name: str) -> Path:
    """The native binary of a Foundry tool (``anvil``, ``forge``) shipped by its npm package.

    The native binary is preferred to the Node wrapper in ``node_modules/.bin`` because it
    starts faster and its process id is the node's own (so stopping it is reliable).
    """
    native = node_modules() / "@foundry-rs" / f"{name}-{_foundry_platform()}" / "bin" / name
    if native.is_file():
        return native
    wrapper = node_modules() / ".bin" / name
    if wrapper.is_file():
        return wrapper
    found = shutil.which(name)
    if found:
        return Path(found)
    raise ToolMissingError(
        name,
        f"`{name}` was not found in {node_modules()} nor on PATH. "
        "Run `make install` (or `npm ci`) in the project folder to install the pinned Node tools.",
    )


def solc_command() -> list[str]:
    """The pinned compiler behind ``contracts/tools/solc`` (the npm ``solc`` package)."""
    node = shutil.which("node")
    if node is None:
        raise ToolMissingError(
            "node", "Node.js was not found on PATH; install Node.js 18 or newer, then `npm ci`."
        )
    if not (node_modules() / "solc" / "package.json").is_file():
        raise ToolMissingError(
            "solc",
            f"the pinned Solidity compiler is missing from {node_modules()}. "
            "Run `make install` (or `npm ci`) in the project folder.",
        )
    return [node, str(contracts_dir() / "tools" / "solc")]
