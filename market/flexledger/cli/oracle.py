"""`flexledger oracle run`: the metering oracle as a service (verify and keep readings from the
broker, anchor each ISP's root once it has ended and its grace period has passed);
`flexledger oracle baselines`: the standard baselines of a market day computed and anchored."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from flexledger.cli.context import STATE, deployment
from flexledger.cli.options import (
    AnchoringKeyOption,
    DayOption,
    JsonOption,
    MarketOption,
    StakingKeyOption,
    parse_day,
)
from flexledger.cli.output import console, emit_json
from flexledger.redaction import redact_url
from flexledger.times import iso, parse_time

if TYPE_CHECKING:
    from flexledger.chain.bindings import MeterOracleClient
    from flexledger.deployment import Deployment

app = typer.Typer(help="The metering oracle: verify and keep meters' signed readings, anchor each ISP's root.",
                  no_args_is_help=True)


@app.command("run")
def oracle_run(
    market: int = typer.Option(1, "--market", help="The market whose ISPs are anchored."),
    grace: int = typer.Option(60, "--grace", help="Seconds after an ISP ends before its root is anchored."),
    interval: float = typer.Option(30.0, "--interval", help="Seconds between anchoring rounds."),
    seconds: float | None = typer.Option(None, "--seconds", help="Stop after this long (default: until Ctrl-C)."),
    key: Path | None = AnchoringKeyOption,
    confirmations: int = typer.Option(0, "--confirmations", min=0,
                                      help="Blocks an anchor must be deep in the chain to count (0: once mined)."),
    finalized: bool = typer.Option(False, "--finalized",
                                   help="An anchor counts once in the node's finalized block (not --confirmations)."),
    baselines: bool = typer.Option(True, "--baselines/--no-baselines",
                                   help="Anchor the next market day's standard baselines once its gate closes."),
    lease: int = typer.Option(120, "--lease", min=1,
                              help="Seconds another oracle of the same database waits to take anchoring over "
                                   "when this one stops (it renews the lease every round)."),
    json_: bool = JsonOption,
) -> None:
    """Run the oracle: readings from the broker (FLEXLEDGER_MQTT_URL, else the embedded broker) are
    verified and kept in the database (FLEXLEDGER_DATABASE_URL, else SQLite); roots are anchored;
    each market day's standard (ROLLING_AVERAGE) baselines are anchored at its gate closure."""
    from flexledger.delivery.oracle_service import OracleEvent, OraclePolicy, OracleService

    def show(event: OracleEvent) -> None:
        if event.kind == "warning":
            console.print(f"[yellow]{event.message}[/]")
        elif not json_:
            console.print(event.message)

    # with --finalized an anchor counts once finalized; reorganised anchors are found and anchored again
    policy = OraclePolicy(grace=grace, interval=interval, confirmations=None if finalized else confirmations,
                          baselines=baselines, lease=lease)
    service = OracleService(deployment(key), STATE.settings, market, policy, show)
    service.start()
    if not json_:
        console.print(f"oracle {service.address} keeping readings from {redact_url(service.url)} as "
                      f"{service.client_id}; anchoring market {market}")
    run = service.run(seconds)
    if json_:
        emit_json({"outcomes": run.outcomes, "anchored": run.anchored, "sessions_lost": run.sessions_lost})
    else:
        console.print(f"stopped: {run.outcomes}; {len(run.anchored)} roots anchored")
    if run.sessions_lost:
        console.print(f"[bold red]ALARM:[/] the broker lost the oracle's persistent session {run.sessions_lost} "
                      "time(s): readings it had queued for the oracle are gone")


@app.command("baselines")
def oracle_baselines(
    day: str = DayOption,
    market: int = MarketOption,
    isp: str | None = typer.Option(None, "--isp", help="Only this ISP (ISO 8601 UTC or Unix seconds)."),
    key: Path | None = AnchoringKeyOption,
    json_: bool = JsonOption,
) -> None:
    """Compute the standard (ROLLING_AVERAGE) baseline of every meter with history, for each ISP of
    the market day, from the readings this oracle keeps, and anchor each ISP's root in MeterOracle:
    offers naming the method are settled against these values. An ISP already anchored is left as is."""
    from flexledger.delivery.oracle_service import anchor_standard_baselines
    from flexledger.oracle.store import open_store

    chain = deployment(key)
    start = chain.day_start(market, parse_day(day))
    try:
        one_isp = parse_time(isp) if isp is not None else None
    except ValueError:
        raise typer.BadParameter(f"--isp {isp!r} is not Unix seconds or an ISO 8601 time") from None
    engine = open_store(STATE.settings.effective_database_url)
    with console.status("computing and anchoring standard baselines..."):
        done = anchor_standard_baselines(chain, engine, market, start, one_isp)
    anchored: list[dict[str, object]] = [{"ispStart": a.isp_start, "meters": a.leaf_count, "root": "0x" + a.root.hex(),
                                          "txHash": a.tx_hash} for a in done]
    if json_:
        emit_json({"market": market, "day_start": start, "anchored": anchored})
        return
    for a in anchored:
        console.print(f"{iso(int(str(a['ispStart'])))}: {a['meters']} meters' baselines anchored ({a['root']})")
    if not anchored:
        console.print("no meter has enough history (3 similar days before the ISP): nothing anchored")


def _oracle(chain: Deployment) -> tuple[MeterOracleClient, str]:
    return chain.oracle, chain.sender().address


@app.command("require-stake")
def oracle_require_stake(
    market: int = MarketOption,
    amount: int = typer.Option(..., "--amount", help="Token base units each oracle must stake (0: none)."),
    key: Path | None = typer.Option(None, "--key", help="Keystore of the market authority."),
    json_: bool = JsonOption,
) -> None:
    """Set the stake a market requires of its oracles (the market authority only): below it an
    oracle anchors no more there, and each reading shown anchored wrong costs it that amount, paid
    to whoever proved it."""
    oracle, _ = _oracle(deployment(key))
    oracle.set_required_stake(market, amount)
    if json_:
        emit_json({"market": market, "required_stake": amount})
    else:
        console.print(f"market {market} requires a stake of {amount:,} base units of its oracles")


@app.command("stake")
def oracle_stake(
    market: int = MarketOption,
    amount: int = typer.Option(..., "--amount", help="Token base units to add to your stake."),
    key: Path | None = StakingKeyOption,
    json_: bool = JsonOption,
) -> None:
    """Add to your stake in a market (the tokens are approved and moved in)."""
    from flexledger.chain.bindings import SettlementTokenClient

    chain = deployment(key)
    oracle, who = _oracle(chain)
    token = chain.at(SettlementTokenClient, oracle.stake_token())  # the stake is in the token the oracle takes
    token.approve(oracle.address, amount)
    oracle.stake(market, amount)
    staked = oracle.stake_of(market, who).amount
    if json_:
        emit_json({"market": market, "oracle": who, "staked": int(staked),
                   "required": int(oracle.required_stake(market))})
    else:
        console.print(f"{who} stakes {int(staked):,} in market {market} (required: {int(oracle.required_stake(market)):,})")


@app.command("unstake")
def oracle_unstake(
    market: int = MarketOption,
    key: Path | None = StakingKeyOption,
    json_: bool = JsonOption,
) -> None:
    """Take your stake out of a market: the first call stops your anchoring there and starts the
    lock (a day, then two dispute windows: every dispute of what you anchored is over by then);
    a call after the lock withdraws the stake."""
    oracle, who = _oracle(deployment(key))
    stake = oracle.stake_of(market, who)
    staked, unlocks = stake.amount, stake.unlocks_at
    if unlocks == 0:
        unlocks = int(oracle.request_unstake(market).event("StakeChanged").args["unlocksAt"])
        verb = "leaving"
    elif oracle.conn.latest_timestamp() >= unlocks:
        oracle.withdraw_stake(market)
        verb = "withdrawn"
    else:
        verb = "locked"
    if json_:
        emit_json({"market": market, "oracle": who, "stake": staked, "unlocks_at": unlocks, "state": verb})
    elif verb == "withdrawn":
        console.print(f"{staked:,} withdrawn from market {market}")
    else:
        console.print(f"{staked:,} {verb}: withdraw with `flexledger oracle unstake` after {iso(unlocks)}")
