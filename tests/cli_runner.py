"""The `flexledger` command run in this process as a user would run it (see tests/market/cli/test_cli.py):
through the entry point's own ``main``, its error printer included, with the environment a process
of its own would get."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flexledger.cli.app import main

FLEXLEDGER = str(Path(sys.executable).parent / "flexledger")


@dataclass(frozen=True)
class Ran:
    """A command's exit status and what it printed, as a process of its own would report them."""

    returncode: int
    stdout: str
    stderr: str


def run(*args: str, data_dir: Path, check: bool = True, env: dict[str, str] | None = None) -> Ran:
    full_env = {"FLEXLEDGER_DATA_DIR": str(data_dir), **(env or {})}
    with CliRunner().isolation(env=full_env) as (out, err, _), pytest.MonkeyPatch.context() as m:
        m.setattr(sys, "argv", [FLEXLEDGER, *args])  # main() reads them, as the script would
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        ran = Ran(code, out.getvalue().decode(), err.getvalue().decode())
    if check and ran.returncode != 0:
        raise AssertionError(f"flexledger {' '.join(args)} exited {ran.returncode}:\n{ran.stdout}\n{ran.stderr}")
    return ran
