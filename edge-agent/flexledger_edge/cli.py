"""`flexledger-edge`: the gateway program's command line."""

from __future__ import annotations

import argparse
import logging
import math
import signal
import sys
import threading
from types import FrameType
from typing import TYPE_CHECKING

from . import __version__

if TYPE_CHECKING:
    from .clock import Clock
    from .config import AgentConfig

DAY_SECONDS = 86_400

DESCRIPTION = """\
flexledger's edge agent, the program on a prosumer's gateway.

At every ISP boundary it reads the meter, signs the ISP's energy (EIP-712, with the
meter's own key), stores the signed reading in a local outbox and publishes it to the
MQTT broker; readings stay in the outbox until the broker acknowledges them, so nothing
is lost while the network is down. It also executes activation orders for the configured
asset through its device: only orders signed by the market's dispatcher (named on chain in
MarketRegistry), checked against the final award when [orders] names an rpc_url, and never
while the owner's override is on (override = true in the configuration, or a file named
"override" in the state directory).
"""

EPILOG = """\
examples:
  flexledger-edge run --config /etc/flexledger-edge/agent.toml
  flexledger-edge signer serve --keystore /var/lib/flexledger-signer/meter-key.json \\
      --socket /run/flexledger/meter.sock --group flexledger-edge --chain-id 100 --oracle 0xMETERORACLE
      (as the signer's own user: the agent then names signer = "socket:/run/flexledger/meter.sock")
  flexledger-edge run --config demo.toml --accelerated 2 --isps 8
      (a demo: one simulated 15-minute ISP every 2 seconds, stop after 8 ISPs)
  flexledger-edge run --config demo.toml --day 2026-12-07 --backfill
      (a simulated meter's readings of every ISP of a past day, signed and sent at once)
  flexledger-edge sign-registration --config agent.toml --owner 0xOWNER --type 2 --nonce 0 \\
      --deadline 1893456000 --chain-id 31337 --registry 0xASSETREGISTRY --out meter-consent.json
      (the meter consents to be registered for its owner: flexledger asset register --meter-signature)
"""


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flexledger-edge", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"flexledger-edge {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = commands.add_parser(
        "run", help="run the agent's loop (read, sign, store, publish; execute orders)",
        description="Run the agent until stopped (Ctrl-C or SIGTERM), or for --isps ISPs.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
    )
    run.add_argument("--config", required=True, metavar="FILE", help="the agent's TOML configuration file")
    run.add_argument(
        "--accelerated", type=_positive_float, metavar="SECONDS_PER_ISP",
        help="simulated time for demos: one ISP passes every SECONDS_PER_ISP real seconds",
    )
    run.add_argument("--isps", type=_positive_int, metavar="N", help="stop after N ISPs have been measured")
    when = run.add_mutually_exclusive_group()
    when.add_argument("--start", type=_moment, metavar="TIME",
                      help="simulated meter only: meter from TIME (ISO 8601, UTC unless a zone is named, or Unix "
                           "seconds), with --accelerated or --backfill")
    when.add_argument("--day", type=_day, metavar="YYYY-MM-DD",
                      help="simulated meter only: meter that UTC day, every ISP of it unless --isps says fewer")
    run.add_argument("--backfill", action="store_true",
                     help="simulated meter only: meter past ISPs as fast as they are signed (with --start or --day)")
    run.add_argument(
        "--drain-seconds", type=float, default=10.0, metavar="S",
        help="on stopping, wait up to S seconds for the broker to acknowledge stored readings (default 10)",
    )
    run.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="default INFO")
    sign = commands.add_parser(
        "sign-registration", help="sign, with the meter's key, its consent to be registered for its owner",
        description="Sign the meter's EIP-712 MeterRegistration for AssetRegistry and write it to a file that "
                    "the owner passes to `flexledger asset register --meter-signature FILE` (that command "
                    "prints the values to use when it is run without the file).",
    )
    source = sign.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", metavar="FILE", help="the agent's TOML configuration file (its meter key)")
    source.add_argument("--keystore", metavar="FILE",
                        help="the meter's keystore instead (where an external signer holds the key: run it there)")
    sign.add_argument("--password-env", default="METER_KEY_PASSWORD", metavar="VAR",
                      help="with --keystore: the variable holding its password (default METER_KEY_PASSWORD)")
    sign.add_argument("--owner", required=True, metavar="ADDRESS", help="the owner the meter is registered for")
    sign.add_argument("--type", dest="asset_type", type=int, default=0, metavar="N", help="the asset type code")
    sign.add_argument("--nonce", type=int, required=True, metavar="N", help="AssetRegistry.meterNonce of the meter")
    sign.add_argument("--deadline", type=int, required=True, metavar="UNIX_SECONDS", help="the consent's deadline")
    sign.add_argument("--chain-id", type=_positive_int, required=True, metavar="ID", help="the chain's id")
    sign.add_argument("--registry", required=True, metavar="ADDRESS", help="the AssetRegistry contract")
    sign.add_argument("--out", required=True, metavar="FILE", help="where to write the signed consent (JSON)")
    _add_signer_commands(commands)
    receipts = commands.add_parser(
        "receipts", help="print the oracle's signed receipts of readings accepted for their roots (JSON lines)",
        description="Each line is a receipt the oracle signed promising a reading is in its ISP's root; "
                    "`flexledger omission claim --receipt FILE` files a claim with one if it is not.",
    )
    receipts.add_argument("--config", required=True, metavar="FILE", help="the agent's TOML configuration file")
    status = commands.add_parser(
        "status", help="print the agent's delivery status and quarantine (exit 1 if no receipts can come)",
        description="The running agent's last status (receipts ok, waiting, refused or silent; outbox, "
                    "re-sends, quarantine) from <state_dir>/status.json and the outbox.",
    )
    status.add_argument("--config", required=True, metavar="FILE", help="the agent's TOML configuration file")
    return parser


def _add_signer_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    signer = commands.add_parser(
        "signer", help="the external signer: hold a meter's key outside the agent (serve, address)",
        description="A meter's key behind a Unix socket, for `[meter] signer = \"socket:PATH\"` in the "
                    "agent's configuration. Run `serve` as another OS user than the agent's: the agent's "
                    "user may ask for signatures through the socket, never read the key.",
    )
    actions = signer.add_subparsers(dest="signer_command", metavar="ACTION")
    serve = actions.add_parser(
        "serve", help="answer signing requests on a Unix socket until stopped",
        description="Sign readings of the keystore's meter, in one MeterOracle domain, one reading per ISP "
                    "(kept in the journal: a different reading of an ISP already signed is refused).",
    )
    serve.add_argument("--keystore", required=True, metavar="FILE", help="the meter's encrypted keystore (V3)")
    serve.add_argument("--password-env", default="METER_KEY_PASSWORD", metavar="VAR",
                       help="the environment variable holding the keystore's password (default METER_KEY_PASSWORD)")
    serve.add_argument("--socket", required=True, metavar="PATH", help="the Unix socket to listen on")
    serve.add_argument("--chain-id", type=_positive_int, required=True, metavar="ID", help="the chain's id")
    serve.add_argument("--oracle", required=True, metavar="ADDRESS", help="the MeterOracle contract (the domain)")
    serve.add_argument("--journal", metavar="FILE",
                       help="what was signed, one reading per ISP (default: KEYSTORE.signed.sqlite3)")
    serve.add_argument("--isp-seconds", type=_positive_int, default=900, metavar="S", help="the ISP (default 900)")
    serve.add_argument("--group", metavar="GROUP",
                       help="give the socket this group (the agent's user's group); the signer's user must be in it")
    serve.add_argument("--socket-mode", default="0660", metavar="OCTAL",
                       help="the socket's permissions (default 0660: its owner and group may connect)")
    serve.add_argument("--allow-user", action="append", metavar="USER",
                       help="answer only processes of this user (name or uid; repeatable), checked on each "
                            "connection beyond the socket's permissions")
    serve.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    address = actions.add_parser("address", help="ask a running signer for its meter's address (a health check)")
    address.add_argument("--socket", required=True, metavar="PATH", help="the signer's Unix socket")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "sign-registration":
        return _sign_registration(args)
    if args.command == "signer":
        from .signer_cli import signer_command

        return signer_command(args, parser)
    if args.command == "receipts":
        return _receipts(args)
    if args.command == "status":
        return _status(args)
    if args.command != "run":
        parser.print_help()
        return 0
    return _run(args)


def _receipts(args: argparse.Namespace) -> int:
    """Print the oracle's kept signed receipts, one JSON object a line: what `flexledger omission
    claim --receipt FILE` files a claim with when a reading is missing from its ISP's root."""
    from .config import ConfigError, load_config
    from .outbox import Outbox, OutboxError

    try:
        config = load_config(args.config)
        with Outbox(config.outbox_path, isp_seconds=config.isp_seconds,
                    receipts_keep_s=config.broker.receipts_keep_s) as outbox:
            kept = outbox.receipts()
    except (ConfigError, OutboxError) as exc:
        print(f"flexledger-edge: {exc}", file=sys.stderr)
        return 2
    for receipt in kept:
        print(receipt.body.decode())
    return 0


def _status(args: argparse.Namespace) -> int:
    """Print the running agent's last status (``<state_dir>/status.json``) and the outbox's
    quarantine; exit 1 when its receipts are refused or silent."""
    import json

    from .config import ConfigError, load_config
    from .outbox import Outbox, OutboxError

    try:
        config = load_config(args.config)
        status = json.loads(config.status_path.read_text()) if config.status_path.exists() else {}
        with Outbox(config.outbox_path, isp_seconds=config.isp_seconds) as outbox:
            status["quarantine"] = [{"meter": m, "ispStart": t, "reason": r} for m, t, r in outbox.quarantined()]
    except (ConfigError, OutboxError, ValueError) as exc:
        print(f"flexledger-edge: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(status, indent=1))
    return 1 if status.get("receipts") in ("refused", "silent") else 0


def _sign_registration(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .config import ConfigError, MeterKeyConfig, load_config
    from .registration import RegistrationError, sign_registration, write_registration

    try:
        if args.keystore is not None:
            meter = MeterKeyConfig(keystore=Path(args.keystore).expanduser(), password_env=args.password_env)
        else:
            meter = load_config(args.config).meter
        key = meter.load_private_key()
        terms, signature = sign_registration(key, args.owner, args.asset_type, args.nonce, args.deadline,
                                             args.chain_id, args.registry)
        write_registration(Path(args.out), terms, signature)
    except (ConfigError, RegistrationError, ValueError, OSError) as exc:
        print(f"flexledger-edge: {exc}", file=sys.stderr)
        return 2
    print(f"flexledger-edge: meter {terms.meter} consents to be registered for {terms.owner}: {args.out}")
    return 0


def _run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=getattr(logging, args.log_level), format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL if args.log_level != "DEBUG" else logging.DEBUG)
    from .agent import EdgeAgent
    from .config import ConfigError, load_config
    from .outbox import OutboxError

    try:
        config = load_config(args.config)
        clock, isps = _clock(args, config)
        agent = EdgeAgent(config, clock)
    except (ConfigError, OutboxError) as exc:
        print(f"flexledger-edge: {exc}", file=sys.stderr)
        return 2

    _check_signer(agent.signer)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        logging.getLogger(__name__).info("signal %d: stopping after the current step", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    readings = agent.run(isps=isps, stop=stop, drain_s=max(args.drain_seconds, 0.0))
    print(f"flexledger-edge: {readings} reading(s) signed; {agent.left_in_outbox} left in the outbox")
    return 0


def _clock(args: argparse.Namespace, config: AgentConfig) -> tuple[Clock, int | None]:
    """The run's clock and how many ISPs it meters: real time; simulated time from now or from
    ``--start``/``--day`` (``--accelerated``); or a backfill that jumps ISP to ISP (``--backfill``)."""
    import time

    from .clock import AcceleratedClock, RealClock, SteppedClock
    from .config import ConfigError, SimulatedDriverConfig

    chosen = args.start if args.start is not None else args.day
    isps = args.isps
    if args.day is not None and isps is None:
        isps = DAY_SECONDS // config.isp_seconds
    if (chosen is not None or args.backfill) and not isinstance(config.driver, SimulatedDriverConfig):
        raise ConfigError(f"{args.config}: --start, --day and --backfill meter simulated time, which only a simulated "
                          "meter has ([driver] kind = \"simulated\"); a real meter is read now")
    if chosen is not None and chosen % config.isp_seconds:
        raise ConfigError(f"--start {chosen} is not the start of a {config.isp_seconds} s ISP")
    if args.backfill:
        if chosen is None or isps is None:
            raise ConfigError("--backfill needs the past ISPs to meter: --day D, or --start TIME with --isps N")
        if chosen + isps * config.isp_seconds > time.time():
            raise ConfigError("--backfill meters past ISPs only: the last one asked for has not ended yet "
                              "(the oracle would refuse its reading as future)")
        return SteppedClock(chosen), isps
    if args.accelerated is not None:
        start = chosen if chosen is not None else math.floor(time.time() / config.isp_seconds) * config.isp_seconds
        return AcceleratedClock(start, config.isp_seconds, args.accelerated), isps
    if chosen is not None:
        raise ConfigError("--start and --day need --accelerated SECONDS_PER_ISP or --backfill: real time starts now")
    return RealClock(), isps


def _moment(text: str) -> int:
    """Unix seconds from digits or an ISO 8601 time (UTC unless it names a zone)."""
    import datetime as dt

    value = text.strip()
    if value.isdigit():
        return int(value)
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not Unix seconds nor an ISO 8601 time: {text!r}") from None
    return int((moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).timestamp())


def _day(text: str) -> int:
    """The first second (UTC) of the day YYYY-MM-DD."""
    import datetime as dt

    try:
        day = dt.date.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a day written YYYY-MM-DD: {text!r}") from None
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())


def _check_signer(signer: object) -> None:
    """Say at the start whether an external signer answers for the meter; readings wait for it anyway."""
    from .signer import SignerError, SocketSigner

    if not isinstance(signer, SocketSigner):
        return
    log = logging.getLogger(__name__)
    try:
        address = signer.remote_address()
    except SignerError as exc:
        log.warning("%s; measured ISPs will wait until it answers", exc)
        return
    if address.lower() != signer.address.lower():
        log.error("the signer at %s holds the key of %s, not of the meter %s; its signatures will be refused",
                  signer.path, address, signer.address)
    else:
        log.info("meter %s signs through %s", signer.address, signer.path)


if __name__ == "__main__":
    sys.exit(main())
