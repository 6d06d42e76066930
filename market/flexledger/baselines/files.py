"""A seller's committed baselines, kept until it reveals them at settlement (DESIGN.md rule 6).

The offer carries only the commitment (``flexledger.rules.baselines.baseline_commitment``); the
values and the salt exist nowhere else, so losing the file means the offer can only be settled
by default (nothing delivered, the shortfall penalised). One JSON file per baseline::

    {"asset": 7, "start": 1764151200, "netWh": [1500, 1500], "salt": "0x..", "commitment": "0x.."}

kept in ``<data dir>/baselines/`` (or any path given), named ``asset-<asset>-<start>.json``. An
aggregator's portfolio offer commits to the portfolio's summed baseline: ``"portfolio": 3`` and
``"asset": 0`` (the commitment names asset 0), named ``portfolio-<id>-<start>.json``.
Files are found by (asset or portfolio, start): by that name, and among the folder's other
files, so a file written with ``--out`` under another name in the folder still counts.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flexledger.errors import FlexledgerError
from flexledger.private_files import write_private
from flexledger.rules.baselines import baseline_commitment
from flexledger.settlement.offer import Baseline

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
UINT64_MAX = 2**64 - 1
UINT32_MAX = 2**32 - 1


class BaselineFileError(FlexledgerError):
    """A baseline file that cannot be read or does not agree with its own commitment."""


@dataclass(frozen=True)
class BaselineFile:
    asset: int
    start: int
    net_wh: tuple[int, ...]
    salt: bytes
    commitment: bytes
    portfolio: int = 0  # a portfolio offer's (then asset is 0)

    @property
    def baseline(self) -> Baseline:
        return Baseline(list(self.net_wh), self.salt)

    def to_json(self) -> dict[str, Any]:
        subject = {"asset": self.asset, "portfolio": self.portfolio} if self.portfolio else {"asset": self.asset}
        return {**subject, "start": self.start, "netWh": list(self.net_wh), "salt": "0x" + self.salt.hex(),
                "commitment": "0x" + self.commitment.hex()}

    @classmethod
    def from_json(cls, data: Any, where: str) -> BaselineFile:
        try:
            asset, start, portfolio = int(data["asset"]), int(data["start"]), int(data.get("portfolio", 0))
            net = tuple(int(v) for v in data["netWh"])
            salt = bytes.fromhex(str(data["salt"]).removeprefix("0x"))
            commitment = bytes.fromhex(str(data["commitment"]).removeprefix("0x"))
        except (KeyError, TypeError, ValueError) as exc:
            raise BaselineFileError(f"{where} is not a baseline file ({type(exc).__name__}: {exc})",
                                    hint="write one with `flexledger baseline commit`") from None
        _check(asset, start, net, portfolio)
        if len(salt) != 32 or len(commitment) != 32:
            raise BaselineFileError(f"{where}: the salt and the commitment are 32 bytes each")
        # a hand-edited value would only be found out by the contract's revert, after the gas is spent
        if baseline_commitment(asset, start, net, salt) != commitment:
            raise BaselineFileError(
                f"{where}: its values and salt do not give its commitment 0x{commitment.hex()}",
                hint="the file was edited; restore the values the offer committed to (or settle it --unrevealed)")
        return cls(asset, start, net, salt, commitment, portfolio)


def _check(asset: int, start: int, net: Sequence[int], portfolio: int = 0) -> None:
    if portfolio and (asset != 0 or not 0 < portfolio <= UINT32_MAX):
        raise BaselineFileError(f"portfolio {portfolio} is not a uint32 (ids start at 1), or an asset ({asset}) is "
                                "named too: a baseline is one asset's or one portfolio's")
    if (not portfolio and not 0 < asset <= UINT64_MAX) or not 0 <= start <= UINT64_MAX:
        raise BaselineFileError(f"asset {asset} or start {start} is not a uint64 (asset ids start at 1)")
    if not net or not all(INT64_MIN <= v <= INT64_MAX for v in net):
        raise BaselineFileError("a baseline has one net consumption (Wh, int64) per ISP of the offer's window")


def new_baseline(asset: int, start: int, net_wh: Sequence[int], *, portfolio: int = 0) -> BaselineFile:
    """A baseline with a fresh random salt (of an asset, or of a ``portfolio`` with ``asset`` 0):
    without it the commitment of a guessable baseline would give the values away before settlement."""
    _check(asset, start, net_wh, portfolio)
    salt = secrets.token_bytes(32)
    return BaselineFile(asset, start, tuple(net_wh), salt, baseline_commitment(asset, start, net_wh, salt), portfolio)


def file_name(asset: int, start: int, portfolio: int = 0) -> str:
    return f"portfolio-{portfolio}-{start}.json" if portfolio else f"asset-{asset}-{start}.json"


def save_baseline(baseline: BaselineFile, folder: Path, out: Path | None = None) -> Path:
    """Write the file (``out``, else its name in ``folder``); an existing one is never overwritten,
    since its salt may be the only copy behind an offer already signed."""
    path = out or folder / file_name(baseline.asset, baseline.start, baseline.portfolio)
    if path.exists():
        raise BaselineFileError(f"{path} exists: its salt may be committed in an offer already",
                                hint="choose another path with --out, or remove the file if no offer uses it")
    try:  # private from creation: the salt keeps the baseline secret until it is revealed
        write_private(path, json.dumps(baseline.to_json(), indent=1) + "\n", exclusive=True)
    except FileExistsError:  # made meanwhile by another process
        raise BaselineFileError(f"{path} exists: its salt may be committed in an offer already",
                                hint="choose another path with --out, or remove the file if no offer uses it") from None
    return path


def read_baseline(path: Path) -> BaselineFile:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BaselineFileError(f"cannot read {path}: {exc}") from None
    return BaselineFile.from_json(data, str(path))


def load_baseline(folder: Path, asset: int, start: int, commitment: bytes | None = None, *,
                  portfolio: int = 0) -> BaselineFile | None:
    """The baseline of ``asset`` (or of ``portfolio``, asset 0) for the window starting at ``start``
    kept in ``folder``, or None. Several may exist (an offer replaced by a newer one with another
    baseline): the one whose commitment is ``commitment`` is preferred, else the first found
    (named file first)."""
    found: list[BaselineFile] = []
    named = folder / file_name(asset, start, portfolio)
    if named.is_file():
        found.append(read_baseline(named))
    if folder.is_dir():
        for path in sorted(folder.glob("*.json")):
            if path == named:
                continue
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # not ours: a folder may hold other files
            if (isinstance(data, dict) and data.get("asset") == asset and data.get("portfolio", 0) == portfolio
                    and data.get("start") == start):
                found.append(BaselineFile.from_json(data, str(path)))
    return next((b for b in found if b.commitment == commitment), found[0] if found else None)
