"""`flexledger-edge`: the gateway program's command line."""

from __future__ import annotations

import argparse
import sys

from . import __version__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="flexledger-edge",
        description="flexledger's edge agent. Meter drivers, signing and store-and-forward "
        "are not built yet (see the metering issue); this release only reports its version.",
    )
    parser.add_argument("--version", action="version", version=f"flexledger-edge {__version__}")
    parser.parse_args(argv)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
