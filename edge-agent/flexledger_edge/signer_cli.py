"""`flexledger-edge signer serve|address`: the reference external signer's command line."""

from __future__ import annotations

import argparse
import grp
import logging
import pwd
import signal
import sys
import threading
from pathlib import Path
from types import FrameType


def signer_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.signer_command == "serve":
        return _serve(args)
    if args.signer_command == "address":
        return _address(args)
    parser.parse_args(["signer", "--help"])
    return 0


def _address(args: argparse.Namespace) -> int:
    from .reading import OracleDomain
    from .signer import SignerError, SocketSigner

    # the domain and address do not matter to the "address" method
    probe = SocketSigner(Path(args.socket), "0x" + "00" * 20, OracleDomain(1, "0x" + "00" * 20))
    try:
        print(probe.remote_address())
    except SignerError as exc:
        print(f"flexledger-edge: {exc}", file=sys.stderr)
        return 1
    return 0


def _serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=getattr(logging, args.log_level),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from eth_utils import is_address, to_checksum_address

    from .config import ConfigError, MeterKeyConfig
    from .reading import OracleDomain
    from .signer_daemon import ReadingJournal, ReadingSigner, SignerServer, serve

    keystore = Path(args.keystore).expanduser().absolute()
    try:
        mode = int(args.socket_mode, 8)
        if not 0 <= mode <= 0o777:
            raise ValueError
    except ValueError:
        return _fail(f"--socket-mode must be octal permissions like 0660, not {args.socket_mode!r}")
    if mode & 0o007:
        return _fail(f"--socket-mode {args.socket_mode} lets every user on the host ask for signatures; "
                     "give access through the group (0660)")
    if not is_address(args.oracle):
        return _fail(f"--oracle must be a 0x-prefixed 20-byte address, not {args.oracle!r}")
    group: int | None = None
    if args.group is not None:
        try:
            group = grp.getgrnam(args.group).gr_gid
        except KeyError:
            return _fail(f"--group {args.group}: no such group")
    allowed: frozenset[int] | None = None
    if args.allow_user:
        uids = set()
        for user in args.allow_user:
            try:
                uids.add(int(user) if user.isdigit() else pwd.getpwnam(user).pw_uid)
            except KeyError:
                return _fail(f"--allow-user {user}: no such user")
        allowed = frozenset(uids)
    try:
        key = MeterKeyConfig(keystore=keystore, password_env=args.password_env).load_private_key()
    except ConfigError as exc:
        return _fail(str(exc).removeprefix("[meter] "))
    domain = OracleDomain(args.chain_id, to_checksum_address(args.oracle))
    journal_path = Path(args.journal).expanduser().absolute() if args.journal else \
        keystore.with_name(keystore.name + ".signed.sqlite3")
    try:
        journal = ReadingJournal(journal_path)
        rules = ReadingSigner(key, domain, journal, isp_seconds=args.isp_seconds)
        server = SignerServer(Path(args.socket).expanduser().absolute(), rules, mode=mode, group=group,
                              allowed_uids=allowed)
    except OSError as exc:
        return _fail(str(exc))
    del key
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    logging.getLogger(__name__).info(
        "signing readings of meter %s (chain %d, MeterOracle %s) on %s; journal %s (%d ISP(s) signed before)",
        rules.address, domain.chain_id, domain.verifying_contract, server.socket_path, journal_path,
        journal.signed_count(),
    )
    try:
        serve(server, stop)
    finally:
        journal.close()
    return 0


def _fail(message: str) -> int:
    print(f"flexledger-edge signer: {message}", file=sys.stderr)
    return 2
