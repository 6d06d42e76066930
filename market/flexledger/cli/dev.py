"""`flexledger dev`: the local development chain's controls (ether for new identities, the chain's
clock moved to a gate closure or a window's end, blocks mined), refused on any other chain."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from flexledger.cli.context import STATE, connect
from flexledger.cli.options import JsonOption
from flexledger.cli.output import console, emit_json
from flexledger.errors import FlexledgerError
from flexledger.times import iso, parse_moment

if TYPE_CHECKING:
    from flexledger.chain.connection import ChainConnection

app = typer.Typer(
    help="Controls of a local development chain (anvil): fund accounts, move the clock, mine blocks. "
         "Refused on any other chain.",
    no_args_is_help=True,
)

WEI_PER_ETH = 10**18


class NotDevChainError(FlexledgerError):
    """A development control was asked of a chain that is not a local development chain."""


def _dev_chain() -> ChainConnection:
    conn, _ = connect(STATE.settings)
    if not conn.is_local_dev_chain():
        raise NotDevChainError(
            f"{conn.display_url} (chain id {conn.chain_id}) is not a local development chain: "
            "its balances and clock are not ours to change",
            hint="`flexledger dev` works on the embedded anvil (unset FLEXLEDGER_RPC_URL) or an anvil on "
                 "this machine; on a real chain, send ether from a funded account instead",
        )
    return conn


def _address(value: str) -> str:
    from eth_utils import is_address, to_checksum_address

    from flexledger.identity.did import parse_did

    if value.startswith("did:"):
        return parse_did(value).address
    if not is_address(value):
        raise typer.BadParameter(f"{value!r} is neither a 0x address nor a did:ethr DID")
    return str(to_checksum_address(value))


@app.command("fund")
def fund(
    who: str = typer.Argument(..., help="The account: a 0x address or a did:ethr DID."),
    eth: float = typer.Option(10.0, "--eth", min=0, help="Its new ether balance (not an addition)."),
    json_: bool = JsonOption,
) -> None:
    """Set an account's ether balance, so that a new identity can pay for its transactions."""
    address = _address(who)
    conn = _dev_chain()
    wei = round(eth * WEI_PER_ETH)
    conn.set_balance(address, wei)
    if json_:
        emit_json({"address": address, "wei": wei})
    else:
        console.print(f"{address} now holds {eth:g} ETH")


@app.command("warp")
def warp(
    to: str = typer.Argument(..., help="A time (ISO 8601, UTC unless a zone is named, or Unix seconds) "
                                       "or a duration ahead of the chain's clock (+15m, +1h30m, +2d)."),
    json_: bool = JsonOption,
) -> None:
    """Move the chain's clock forward and mine a block at that time (the clock never goes back)."""
    conn = _dev_chain()
    now = conn.latest_timestamp()
    try:
        target = parse_moment(to, now)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if target <= now:
        raise FlexledgerError(
            f"the chain's clock is already at {iso(now)}; {iso(target)} is not after it",
            hint="a chain's time only moves forward: name a later time, or start a fresh chain "
                 "(`flexledger node start --fresh`)",
        )
    conn.set_next_block_timestamp(target)
    conn.mine()
    if json_:
        emit_json({"timestamp": conn.latest_timestamp(), "previous": now})
    else:
        console.print(f"the chain's clock moved from {iso(now)} to {iso(conn.latest_timestamp())}")


@app.command("mine")
def mine(
    blocks: int = typer.Argument(1, min=1, max=100_000, help="How many blocks."),
    json_: bool = JsonOption,
) -> None:
    """Mine empty blocks (each one second after the last)."""
    conn = _dev_chain()
    for _ in range(blocks):
        conn.mine()
    head = int(conn.w3.eth.block_number)
    if json_:
        emit_json({"block": head, "timestamp": conn.latest_timestamp()})
    else:
        console.print(f"mined {blocks} block(s): the head is block {head} at {iso(conn.latest_timestamp())}")
