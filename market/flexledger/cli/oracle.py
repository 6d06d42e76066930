"""`flexledger oracle run`: the metering oracle as a service (verify and keep readings from the
broker, anchor each ISP's root once it has ended and its grace period has passed);
`flexledger oracle baselines`: the standard baselines of a market day computed and anchored."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from flexledger.chain.errors import ChainError
from flexledger.cli.clearing import market_day_start
from flexledger.cli.context import STATE, connect, load_manifest, load_signer
from flexledger.cli.options import DayOption, JsonOption, MarketOption
from flexledger.cli.output import console, emit_json
from flexledger.delivery.broker import mqtt_tls, oracle_broker
from flexledger.errors import ConfigurationError
from flexledger.redaction import redact_url
from flexledger.rules.market import MarketParams
from flexledger.times import iso, parse_time

if TYPE_CHECKING:
    from flexledger.chain.bindings import MeterOracleClient

app = typer.Typer(help="The metering oracle: verify and keep meters' signed readings, anchor each ISP's root.",
                  no_args_is_help=True)


@app.command("run")
def oracle_run(
    market: int = typer.Option(1, "--market", help="The market whose ISPs are anchored."),
    grace: int = typer.Option(60, "--grace", help="Seconds after an ISP ends before its root is anchored."),
    interval: float = typer.Option(30.0, "--interval", help="Seconds between anchoring rounds."),
    seconds: float | None = typer.Option(None, "--seconds", help="Stop after this long (default: until Ctrl-C)."),
    key: Path | None = typer.Option(None, "--key", help="Keystore of the oracle (it must hold the ORACLE role)."),
    confirmations: int = typer.Option(0, "--confirmations", min=0,
                                      help="Blocks an anchor must be deep in the chain to count (0: once mined)."),
    finalized: bool = typer.Option(False, "--finalized",
                                   help="An anchor counts once in the node's finalized block (not --confirmations)."),
    baselines: bool = typer.Option(True, "--baselines/--no-baselines",
                                   help="Anchor the next market day's standard baselines once its gate closes."),
    json_: bool = JsonOption,
) -> None:
    """Run the oracle: readings from the broker (FLEXLEDGER_MQTT_URL, else the embedded broker) are
    verified and kept in the database (FLEXLEDGER_DATABASE_URL, else SQLite); roots are anchored;
    each market day's standard (ROLLING_AVERAGE) baselines are anchored at its gate closure."""
    from flexledger.baselines.challenges import answer_challenges
    from flexledger.chain.bindings import (
        AssetRegistryClient,
        BaselineDisputesClient,
        MarketRegistryClient,
        MeterOracleClient,
        OmissionClaimsClient,
        RoleRegistryClient,
    )
    from flexledger.delivery.omissions import answer_claims
    from flexledger.identity.eip712 import read_domain
    from flexledger.identity.roles import Role
    from flexledger.oracle.anchoring import anchor_due
    from flexledger.oracle.baselines import anchor_day_baselines
    from flexledger.oracle.consumer import OracleConsumer
    from flexledger.oracle.receipts import ReceiptSigner
    from flexledger.oracle.store import open_store
    from flexledger.oracle.verify import ChainMeters, Verifier

    settings = STATE.settings
    conn, _ = connect(settings)
    manifest = load_manifest(settings, conn)
    signer = load_signer(conn, key)
    roles = RoleRegistryClient(conn, manifest.address("RoleRegistry"))
    if not roles.has_market_role(signer.address, Role.ORACLE.id):
        raise ConfigurationError(f"{signer.address} holds no valid ORACLE credential",
                                 hint=f"an issuer runs `flexledger role grant {signer.address} ORACLE`")
    params = MarketParams.from_fields(MarketRegistryClient(conn, manifest.address("MarketRegistry")).market_params(market))
    oracle = MeterOracleClient(conn, manifest.address("MeterOracle"), signer=signer)
    engine = open_store(settings.effective_database_url)
    meters = ChainMeters(roles, AssetRegistryClient(conn, manifest.address("AssetRegistry")))
    separator = read_domain(conn, oracle.address).separator()
    verifier = Verifier(separator, meters.problem, isp_seconds=params.isp_seconds, prefetch=meters.prefetch)
    url, client_id = oracle_broker(settings)
    marker = settings.data_dir / f"oracle-session-{client_id}"
    # The later of the wall clock and the chain's: a quiet development chain's last block can lag
    # real time by hours (fresh readings would look like the future), and a chain moved ahead by
    # time travel is ahead of the wall clock.
    try:
        consumer = OracleConsumer(url, engine, verifier, market, client_id=client_id, expect_session=marker.exists(),
                                  clock=lambda: max(int(time.time()), conn.latest_timestamp()), **mqtt_tls(settings))
    except ValueError as exc:
        raise ConfigurationError(f"the oracle's broker settings: {exc}",
                                 hint="set FLEXLEDGER_MQTT_CA_FILE, _CERT_FILE and _KEY_FILE with an mqtts:// URL") from None
    # gateways keep a reading until its receipt: the broker's ACL must let the oracle publish
    # flexledger/v1/receipts/+ (the embedded broker's oracle user may)
    consumer.receipts = True
    # each receipt signed with the anchoring key: "accepted" is a promise a gateway can hold it to
    consumer.receipt_signer = ReceiptSigner(bytes(signer.account.key), separator, market)
    consumer.anchor_grace, consumer.isp_seconds = grace, params.isp_seconds
    claims = (OmissionClaimsClient(conn, manifest.address("OmissionClaims"), signer=signer)
              if "OmissionClaims" in manifest.contracts else None)
    challenges = (BaselineDisputesClient(conn, manifest.address("BaselineDisputes"), signer=signer)
                  if "BaselineDisputes" in manifest.contracts else None)
    consumer.start()
    if not consumer.wait_subscribed():
        consumer.stop()
        raise ConfigurationError(f"the oracle could not subscribe at {redact_url(url)} as {client_id}",
                                 hint="check the broker's user, password, ACL and client id (`flexledger config "
                                 "--check`; `flexledger broker status` for the embedded one)")
    marker.touch()  # from now on a broker without this session has lost it: the consumer raises the alarm
    if not json_:
        console.print(f"oracle {signer.address} keeping readings from {redact_url(url)} as {client_id}; "
                      f"anchoring market {market}")
    depth = None if finalized else confirmations  # reorganised anchors are found and anchored again
    anchored: list[int] = []
    baseline_days: set[int] = set()
    started, last = time.monotonic(), float("-inf")
    try:
        while seconds is None or time.monotonic() - started < seconds:
            if time.monotonic() - last >= interval:
                last = time.monotonic()
                now = conn.latest_timestamp()
                # day-ahead, in the last minutes before the next open day's gate closure (the
                # contract's window is the day before it): sellers know their baseline when they
                # offer, and it reads the readings anchored by then
                ahead = params.day_start(now) + 86_400
                if now > params.gate_closure(ahead):
                    ahead += 86_400
                due = params.gate_closure(ahead) - BASELINE_LEAD
                if baselines and now >= due and ahead not in baseline_days:
                    done_isps, failed = anchor_day_baselines(engine, oracle, market, ahead, params.isp_seconds)
                    if not failed:
                        baseline_days.add(ahead)
                    if not json_ and done_isps:
                        console.print(f"anchored the standard baselines of {len(done_isps)} ISPs of {iso(ahead)[:10]}")
                done = anchor_due(engine, oracle, market, conn.latest_timestamp(), isp_seconds=params.isp_seconds,
                                  grace=grace, confirmations=depth)
                anchored += done.anchored
                for isp in done.anchored:
                    if not json_:
                        console.print(f"anchored the root of {iso(isp)}")
                if claims is not None:  # a claim that a receipted reading is missing: prove it is not
                    try:
                        answered_now = answer_claims(engine, claims, market)
                    except ChainError as exc:  # the node is out of reach: the next round asks again
                        console.print(f"[yellow]omission claims not checked this round: {exc}[/]")
                        answered_now = []
                    for answered in answered_now:
                        if not json_:
                            console.print(f"answered the omission claim on {answered['meter']} at "
                                          f"{iso(answered['ispStart'])} with its proof")
                if challenges is not None:  # a challenge that a baseline's input day was invented: prove it was not
                    try:
                        answered_now = answer_challenges(engine, challenges, oracle, market)
                    except ChainError as exc:
                        console.print(f"[yellow]baseline challenges not checked this round: {exc}[/]")
                        answered_now = []
                    for answered in answered_now:
                        if not json_:
                            console.print(f"answered the challenge of {answered['meter']}'s baseline at "
                                          f"{iso(answered['ispStart'])} ({answered['daysBack']} days back) with "
                                          "the day's anchored reading")
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        consumer.stop()
    anchored += anchor_due(engine, oracle, market, conn.latest_timestamp(), isp_seconds=params.isp_seconds,
                           grace=grace, confirmations=depth).anchored
    if json_:
        emit_json({"outcomes": dict(consumer.outcomes), "anchored": anchored, "sessions_lost": consumer.sessions_lost})
    else:
        console.print(f"stopped: {dict(consumer.outcomes)}; {len(anchored)} roots anchored")
    if consumer.sessions_lost:
        console.print(f"[bold red]ALARM:[/] the broker lost the oracle's persistent session {consumer.sessions_lost} "
                      "time(s): readings it had queued for the oracle are gone")


BASELINE_LEAD = 900  # seconds before a day's gate closure its standard baselines are anchored


@contextmanager
def _baseline_window(market: int) -> Iterator[None]:
    """A baseline anchored outside its window: say when the window is, and that retrying won't help."""
    from flexledger.chain.revert_errors import MeterOracleBaselineWindow

    try:
        yield
    except MeterOracleBaselineWindow as exc:
        raise ChainError(f"the standard baselines of the ISP starting at {iso(exc.isp_start)} in market {market} "
                         f"are anchored from {iso(exc.opens)} to {iso(exc.closes)} (its gate closure) only",
                         hint="anchor a market day's baselines in the day before its gate closure") from None


@app.command("baselines")
def oracle_baselines(
    day: str = DayOption,
    market: int = MarketOption,
    isp: str | None = typer.Option(None, "--isp", help="Only this ISP (ISO 8601 UTC or Unix seconds)."),
    key: Path | None = typer.Option(None, "--key", help="Keystore of the oracle (it must hold the ORACLE role)."),
    json_: bool = JsonOption,
) -> None:
    """Compute the standard (ROLLING_AVERAGE) baseline of every meter with history, for each ISP of
    the market day, from the readings this oracle keeps, and anchor each ISP's root in MeterOracle:
    offers naming the method are settled against these values. An ISP already anchored is left as is."""
    from flexledger.chain.bindings import MeterOracleClient
    from flexledger.oracle.baselines import anchor_baselines, anchor_day_baselines
    from flexledger.oracle.store import open_store

    settings = STATE.settings
    conn, _ = connect(settings)
    manifest = load_manifest(settings, conn)
    signer = load_signer(conn, key)
    params, start = market_day_start(conn, manifest, market, day)
    oracle = MeterOracleClient(conn, manifest.address("MeterOracle"), signer=signer)
    engine = open_store(settings.effective_database_url)
    with console.status("computing and anchoring standard baselines..."), _baseline_window(market):
        if isp is not None:
            try:
                one = anchor_baselines(engine, oracle, market, parse_time(isp))
            except ValueError:
                raise typer.BadParameter(f"--isp {isp!r} is not Unix seconds or an ISO 8601 time") from None
            done = [one] if one is not None else []
        else:
            done, failed = anchor_day_baselines(engine, oracle, market, start, params.isp_seconds)
            if failed:
                raise ChainError(f"anchoring the standard baselines of {len(failed)} ISPs failed, the first "
                                 f"{iso(failed[0])}; the others are anchored", hint="run the command again")
    anchored: list[dict[str, object]] = [{"ispStart": a.isp_start, "meters": a.leaf_count, "root": "0x" + a.root.hex(),
                                          "txHash": a.tx_hash} for a in done]
    if json_:
        emit_json({"market": market, "day_start": start, "anchored": anchored})
        return
    for a in anchored:
        console.print(f"{iso(int(str(a['ispStart'])))}: {a['meters']} meters' baselines anchored ({a['root']})")
    if not anchored:
        console.print("no meter has enough history (3 similar days before the ISP): nothing anchored")


def _oracle(key: Path | None) -> tuple[MeterOracleClient, str]:
    from flexledger.chain.bindings import MeterOracleClient

    settings = STATE.settings
    conn, _ = connect(settings)
    manifest = load_manifest(settings, conn)
    signer = load_signer(conn, key)
    return MeterOracleClient(conn, manifest.address("MeterOracle"), signer=signer), signer.address


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
    oracle, _ = _oracle(key)
    oracle.set_required_stake(market, amount)
    if json_:
        emit_json({"market": market, "required_stake": amount})
    else:
        console.print(f"market {market} requires a stake of {amount:,} base units of its oracles")


@app.command("stake")
def oracle_stake(
    market: int = MarketOption,
    amount: int = typer.Option(..., "--amount", help="Token base units to add to your stake."),
    key: Path | None = typer.Option(None, "--key", help="Keystore of the oracle."),
    json_: bool = JsonOption,
) -> None:
    """Add to your stake in a market (the tokens are approved and moved in)."""
    from flexledger.chain.bindings import SettlementTokenClient

    oracle, who = _oracle(key)
    token = SettlementTokenClient(oracle.conn, oracle.stake_token(), signer=oracle.signer)
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
    key: Path | None = typer.Option(None, "--key", help="Keystore of the oracle."),
    json_: bool = JsonOption,
) -> None:
    """Take your stake out of a market: the first call stops your anchoring there and starts the
    lock (a day, then two dispute windows: every dispute of what you anchored is over by then);
    a call after the lock withdraws the stake."""
    oracle, who = _oracle(key)
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
