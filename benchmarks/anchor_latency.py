"""How soon after an ISP ends its readings' root is on chain, with the oracle as it runs in
production: `flexledger oracle run` (a separate process: readings from the MQTT broker, verified
against the chain's credentials and assets, kept in SQLite; `anchor_due` every --interval seconds,
for ISPs ended at least --grace seconds ago), fed by meters that all publish at the ISP boundary.

Run: .venv/bin/python benchmarks/anchor_latency.py [--meters 10000] [--loads 1000,10000]
        [--grace 60] [--interval 30] [--block-time 2]        (or `make bench`, with the defaults)
Target (metering issue): a root on chain within one ISP (900 s) of the ISP's end.

The chain is a local anvil that mines a block every --block-time seconds once set up (as a
Besu/QBFT or an L2 does), not on every transaction: a transaction then waits for its block, and
the service's clock (the latest block's time) trails the wall clock by up to a block. Between
ISPs the chain's clock jumps ahead to just before the next ISP's end; from there on everything
runs in real time, so each ISP costs the grace period and a round of real waiting.

Per ISP it reports the latency on the chain's own clock (the RootAnchored event's anchoredAt
minus the ISP's end: what anyone can check from chain data) and, on the wall clock, its parts:
  grace        the configured wait after the ISP's end, for readings still on their way;
  round wait   until the service's next round that sees the ISP due (rounds are --interval apart;
               "due" needs a block whose time is past end + grace);
  tree         building the ISP's Merkle tree from the store (re-measured here with the same code
               on the same readings, after the anchor; the service does not report its own);
  confirmation from the anchor transaction entering the node's pool to the bench seeing its block.
It also reports how many of the ISP's readings the oracle had kept by then, i.e. made it into the
root: readings verified after the anchor are kept but flagged late, in no root.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from _common import local_chain, report  # benchmarks/ is on sys.path when a script runs
from coincurve import PrivateKey
from eth_account import Account
from eth_utils import keccak, to_checksum_address
from sqlalchemy import func, select

from flexledger.chain import structs
from flexledger.chain.bindings import (
    AssetRegistryClient,
    GridZonesClient,
    MarketRegistryClient,
    MeterOracleClient,
    RoleRegistryClient,
)
from flexledger.chain.client import TxResult, wait_all
from flexledger.chain.connection import ChainConnection
from flexledger.chain.deploy import deploy_all
from flexledger.chain.transactions import Signer
from flexledger.delivery.broker import LocalBroker
from flexledger.grid.owners import register_with_meters
from flexledger.identity import keys
from flexledger.identity.eip712 import read_domain
from flexledger.identity.roles import Role
from flexledger.oracle.anchoring import ProofError, proof_for, tree_of
from flexledger.oracle.readings import Reading
from flexledger.oracle.store import StoredReading, open_store, readings_of_isp, session
from flexledger.oracle.verify import ChainMeters
from flexledger.rules.market import MarketParams

ISP = 900
FOREVER = 2**64 - 1
PER_TX = 200  # credentials, registrations or mappings per setup transaction
POLL_S = 0.05
LEAD_S = 3  # the chain's clock is set this far before an ISP's end, then runs in real time


@dataclass
class Meters:
    keys: list[PrivateKey]
    addresses: list[str]


@dataclass
class IspResult:
    load: int
    isp_start: int
    published: int = 0
    kept: int = 0
    leaf_count: int = 0
    late: int = 0
    anchored_at: int = 0
    latency_chain_s: int = 0
    latency_wall_s: float = 0.0
    ingest_done_s: float | None = None  # wall seconds after the ISP's end when every reading was kept
    ingest_per_s: float = 0.0  # readings kept per second from the ISP's end, until all were or the anchor
    submitted_s: float | None = None  # wall seconds after the ISP's end when the anchor entered the pool
    confirmation_s: float | None = None
    tree_ms: float = 0.0
    root_matches: bool = False
    unrooted: int = 0  # kept, not flagged late, yet not in the root
    proof_error: str | None = None
    service_lines: list[str] = field(default_factory=list)


def make_meters(count: int) -> Meters:
    private = [PrivateKey(keccak(f"anchor-latency meter {k}".encode())) for k in range(count)]
    return Meters(private, [to_checksum_address(keccak(k.public_key.format(compressed=False)[1:])[-20:]) for k in private])


def set_up_chain(conn: ChainConnection, meters: Meters, oracle_address: str) -> tuple[Any, int]:
    """Deploy; credential and map every meter's asset (what the oracle checks each reading against)."""
    dev = keys.dev_accounts()
    authority, tso, dso, owner = (keys.signer(a, conn) for a in dev[:4])
    manifest = deploy_all(conn, authority)
    roles = RoleRegistryClient(conn, manifest.address("RoleRegistry"), signer=authority)
    grants = [(tso.address, Role.TSO), (dso.address, Role.DSO), (owner.address, Role.PROSUMER),
              (oracle_address, Role.ORACLE), *((m, Role.METER) for m in meters.addresses)]
    pending: list[TxResult] = []
    for i in range(0, len(grants), PER_TX):
        chunk = grants[i:i + PER_TX]
        pending.append(roles.issue_credentials([a for a, _ in chunk], [r.id for _, r in chunk], [0] * len(chunk),
                                               [FOREVER] * len(chunk), [b"\x01" * 32] * len(chunk), wait=False,
                                               gas=15_000_000))
    wait_all(conn, pending)
    market = MarketRegistryClient(conn, manifest.address("MarketRegistry"), signer=authority).create_market(
        structs.MarketParams.like(MarketParams())).event("MarketCreated").args["marketId"]
    grid = GridZonesClient(conn, manifest.address("GridZones"))
    area = grid.add_zone(0, tso.address, 0, sender=tso).event("ZoneAdded").args["zoneId"]
    zone = grid.add_zone(area, dso.address, 10**6, sender=tso).event("ZoneAdded").args["zoneId"]
    assets = AssetRegistryClient(conn, manifest.address("AssetRegistry"))
    first = assets.asset_count() + 1
    accounts = [Account.from_key(k.secret) for k in meters.keys]
    pending = [register_with_meters(assets, accounts[i:i + PER_TX], [2] * len(accounts[i:i + PER_TX]), sender=owner,
                                    fresh=True, wait=False, gas=25_000_000)
               for i in range(0, len(accounts), PER_TX)]
    wait_all(conn, pending)
    ids = list(range(first, first + len(meters.addresses)))
    pending = [assets.map_assets(ids[i:i + PER_TX], [zone] * len(ids[i:i + PER_TX]), [5000] * len(ids[i:i + PER_TX]),
                                 [5000] * len(ids[i:i + PER_TX]), [market] * len(ids[i:i + PER_TX]), sender=dso,
                                 wait=False, gas=25_000_000)
               for i in range(0, len(ids), PER_TX)]
    wait_all(conn, pending)
    return manifest, market


def meter_check_ms(conn: ChainConnection, manifest: Any, meters: Meters, sample: int = 300) -> float:
    """What the service pays per reading of a meter it has not checked within its cache's lifetime."""
    check = ChainMeters(RoleRegistryClient(conn, manifest.address("RoleRegistry")),
                        AssetRegistryClient(conn, manifest.address("AssetRegistry")))
    started = time.perf_counter()
    problems = [check.problem(m) for m in meters.addresses[-sample:]]
    elapsed = time.perf_counter() - started
    if any(problems):
        raise SystemExit(f"set-up left meters the oracle would refuse: {set(problems) - {None}}")
    return elapsed / len(problems) * 1000


def signed_readings(meters: Meters, count: int, separator: bytes, isp_start: int, sequence: int) -> list[tuple[str, bytes]]:
    """The first ``count`` meters' readings of one ISP, signed, as the edge agent publishes them."""
    out = []
    for m in range(count):
        reading = Reading(meters.addresses[m], isp_start, sequence, 150 + m % 997, m % 13)
        raw = meters.keys[m].sign_recoverable(reading.digest(separator), hasher=None)
        signature = raw[:64] + bytes([raw[64] + 27])
        body = (f'{{"meter":"{reading.meter}","ispStart":{isp_start},"sequence":{sequence},'
                f'"importWh":{reading.import_wh},"exportWh":{reading.export_wh},"signature":"0x{signature.hex()}"}}')
        out.append((f"flexledger/v1/readings/{reading.meter.lower()}", body.encode()))
    return out


def publish(url: str, payloads: list[tuple[str, bytes]]) -> None:
    """Two clients publish at QoS 1 as fast as the broker takes it (every meter sends at the boundary)."""
    host, port = url.split("://")[1].split("@")[-1].rsplit(":", 1)
    clients = []
    for p in range(2):
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-meters-{p}-{os.getpid()}")
        client.max_inflight_messages_set(1000)
        client.max_queued_messages_set(0)
        client.connect(host, int(port))
        client.loop_start()
        clients.append(client)
    deadline = time.time() + 10
    while not all(c.is_connected() for c in clients):  # a message published before CONNACK reports a failure
        if time.time() > deadline:
            raise SystemExit(f"the meters could not connect to the broker at {url}")
        time.sleep(0.01)
    infos = [clients[n % 2].publish(topic, body, qos=1) for n, (topic, body) in enumerate(payloads)]
    for info in infos:
        info.wait_for_publish(timeout=120)
    for client in clients:
        client.loop_stop()
        client.disconnect()


class Service:
    """`flexledger oracle run` in its own process, its output lines kept with their times."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        exe = Path(sys.executable).with_name("flexledger")
        self.proc = subprocess.Popen([str(exe), "oracle", "run", *args], env=env, cwd=cwd, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.lines: list[tuple[float, str]] = []
        self.ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append((time.time(), line.rstrip()))
            if "keeping readings" in line:
                self.ready.set()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # the service's own way to stop: a last round, then exit
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)


def measure_isp(conn: ChainConnection, oracle: MeterOracleClient, market: int, db_url: str, url: str,
                meters: Meters, load: int, separator: bytes, index: int, grace: int, service: Service) -> IspResult:
    now = conn.latest_timestamp()
    isp_start = (now // ISP + 1) * ISP
    end = isp_start + ISP
    result = IspResult(load, isp_start)
    payloads = signed_readings(meters, load, separator, isp_start, index + 1)  # signed before the boundary
    first_block = int(conn.w3.eth.block_number) + 1
    # anvil keeps whole seconds: jumping just after a wall-clock second begins pins its clock to the
    # wall clock, so that the ISP's end on the chain is a known wall time
    time.sleep(1.02 - time.time() % 1)
    jumped = math.floor(time.time())
    conn.set_next_block_timestamp(end - LEAD_S)
    conn.mine()
    end_wall = jumped + LEAD_S
    while conn.latest_timestamp() < end:
        time.sleep(POLL_S)
    lines_before = len(service.lines)
    publisher = threading.Thread(target=publish, args=(url, payloads), daemon=True)
    publisher.start()
    result.published = load
    engine = open_store(db_url)
    next_count = 0.0
    deadline = time.time() + grace + 600
    found = None
    seen = 0.0
    while found is None and time.time() < deadline:
        if result.submitted_s is None and int(conn.request("txpool_status")["pending"], 16) > 0:
            result.submitted_s = time.time() - end_wall
        events = [e for e in oracle.events("RootAnchored", from_block=first_block) if e.args["ispStart"] == isp_start]
        if events:
            found = events[0]
            seen = time.time()
            break
        if result.ingest_done_s is None and time.time() >= next_count:
            next_count = time.time() + 0.5
            with session(engine) as s:
                kept = s.scalar(select(func.count()).select_from(StoredReading).where(
                    StoredReading.isp_start == isp_start)) or 0
            since_end = time.time() - end_wall
            result.ingest_per_s = kept / since_end if since_end > 0 else 0.0
            if kept >= load:
                result.ingest_done_s = since_end
        time.sleep(POLL_S)
    if found is None:
        raise SystemExit(f"no root for the ISP at {isp_start} within {grace + 600} s of its end; service said: "
                         + " | ".join(line for _, line in service.lines[-5:]))
    publisher.join(120)
    result.anchored_at = int(found.args["anchoredAt"])
    result.leaf_count = int(found.args["leafCount"])
    result.latency_chain_s = result.anchored_at - end
    result.latency_wall_s = seen - end_wall
    if result.submitted_s is not None:
        result.confirmation_s = seen - end_wall - result.submitted_s
    # else: submitted and mined between two polls, so confirmation was under POLL_S; left unknown
    started = time.perf_counter()
    with session(engine) as s:
        rows = readings_of_isp(s, isp_start)
        tree = tree_of(rows)
    result.tree_ms = (time.perf_counter() - started) * 1000
    result.root_matches = tree.root == bytes(found.args["root"])
    # the store's own view of the root's readings (not late) must give the anchored root, or no
    # proof of this ISP can be served
    result.unrooted = len(rows) - result.leaf_count
    try:
        proof_for(engine, meters.addresses[0], isp_start)
    except ProofError as exc:
        result.proof_error = str(exc)
    # readings that reach the oracle after the anchor are kept but flagged late, in no root: count them
    until = time.time() + 120
    while time.time() < until:
        with session(engine) as s:
            kept = s.scalar(select(func.count()).select_from(StoredReading).where(
                StoredReading.isp_start == isp_start)) or 0
            result.late = s.scalar(select(func.count()).select_from(StoredReading).where(
                StoredReading.isp_start == isp_start, StoredReading.late.is_(True))) or 0
        if kept >= load:
            break
        time.sleep(0.5)
    result.kept = kept
    engine.dispose()
    result.service_lines = [line for _, line in service.lines[lines_before:]]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--meters", type=int, default=10_000, help="meters credentialed and mapped on chain")
    parser.add_argument("--loads", default="1000,10000", help="readings published per measured ISP, comma-separated")
    parser.add_argument("--grace", type=int, default=60, help="the service's --grace (its default: 60 s)")
    parser.add_argument("--interval", type=float, default=30.0, help="the service's --interval (its default: 30 s)")
    parser.add_argument("--block-time", type=int, default=2, help="seconds between blocks once set up")
    args = parser.parse_args()
    loads = [int(x) for x in args.loads.split(",")]
    if max(loads) > args.meters:
        parser.error("a load cannot exceed --meters")
    folder = Path(tempfile.mkdtemp(prefix="flexledger-bench-anchor-latency-"))
    oracle_account = keys.new_account()
    password = "anchor-latency-bench"
    keystore = keys.save_keystore(oracle_account, password, folder / "keys")
    meters = make_meters(args.meters)
    started = time.perf_counter()
    with local_chain() as conn:
        conn.request("anvil_setBalance", [oracle_account.address, hex(10**20)])
        manifest, market = set_up_chain(conn, meters, oracle_account.address)
        setup_s = time.perf_counter() - started
        check_ms = meter_check_ms(conn, manifest, meters)
        manifest_path = folder / "manifest.json"
        manifest.save(manifest_path)
        oracle = MeterOracleClient(conn, manifest.address("MeterOracle"), signer=Signer(oracle_account, conn))
        separator = read_domain(conn, oracle.address).separator()
        conn.request("evm_setAutomine", [False])
        conn.request("evm_setIntervalMining", [args.block_time])
        broker = LocalBroker(folder / "broker", auth=False)  # anonymous benchmark clients
        url = broker.start().url
        db_url = f"sqlite:///{folder / 'oracle.db'}"
        env = {**os.environ, "FLEXLEDGER_RPC_URL": conn.rpc_url, "FLEXLEDGER_MANIFEST": str(manifest_path),
               "FLEXLEDGER_DATABASE_URL": db_url, "FLEXLEDGER_MQTT_URL": url, "FLEXLEDGER_DATA_DIR": str(folder),
               "FLEXLEDGER_KEY_PASSWORD": password, "PYTHONUNBUFFERED": "1",
               "COLUMNS": "200"}  # one line per message, whatever rich would wrap at
        service = Service(["--market", str(market), "--grace", str(args.grace), "--interval", str(args.interval),
                           "--key", str(keystore)], env, folder)
        results: list[IspResult] = []
        try:
            if not service.ready.wait(60):
                raise SystemExit("the oracle service did not start: " + " | ".join(line for _, line in service.lines))
            for index, load in enumerate(loads):
                results.append(measure_isp(conn, oracle, market, db_url, url, meters, load, separator, index,
                                           args.grace, service))
                r = results[-1]
                print(f"  ISP of {load:,} readings: root on chain {r.latency_chain_s} s after the ISP's end (chain "
                      f"clock; {r.latency_wall_s:.1f} s wall), {r.leaf_count:,} readings in it", flush=True)
        finally:
            service.stop()
            broker.stop()
    print(f"  set-up: {args.meters:,} meters credentialed and mapped in {setup_s:.0f} s; blocks every "
          f"{args.block_time:g} s; oracle service: grace {args.grace} s, a round every {args.interval:g} s")
    print(f"  checking a meter on chain as the service does (ChainMeters.problem, not cached): {check_ms:.1f} ms, "
          f"{1000 / check_ms:,.0f} meters a second")
    for r in results:
        confirmation = f"{r.confirmation_s:.1f} s" if r.confirmation_s is not None else f"< {POLL_S} s"
        rest = r.latency_wall_s - args.grace - r.tree_ms / 1000 - (r.confirmation_s or 0.0)
        print(f"  {r.load:>6,} readings: {r.latency_chain_s} s on the chain's clock ({r.latency_wall_s:.1f} s wall) = "
              f"grace {args.grace} s + round wait {rest:.1f} s + tree {r.tree_ms:.0f} ms + confirmation {confirmation}")
        if r.ingest_done_s is not None:
            ingest = f"all kept {r.ingest_done_s:.1f} s after the ISP's end"
        else:
            ingest = (f"not all kept by the anchor: {r.late:,} arrived after it (kept, flagged late, in no root), "
                      f"{r.published - r.kept:,} not kept yet 2 minutes later")
        print(f"  {'':>6}           ingest {r.ingest_per_s:,.0f} readings/s: {ingest}; {r.leaf_count:,} of "
              f"{r.published:,} in the root (the same root rebuilt here: {'yes' if r.root_matches else 'NO'})")
        if r.unrooted or r.proof_error:
            print(f"  {'':>6}           INCONSISTENT STORE: {r.unrooted:,} readings kept, not flagged late, yet not in "
                  f"the root; a proof of this ISP: {r.proof_error or 'served'}")
    worst = max(r.latency_chain_s for r in results)
    print(f"  target, a root on chain within one ISP ({ISP} s) of the ISP's end: {'met' if worst <= ISP else 'MISSED'} "
          f"(worst {worst} s, {worst / ISP:.0%} of an ISP); the bound is grace + interval + a block + the tree and "
          f"signing = {args.grace + args.interval + args.block_time:g} s and a little")
    incomplete = [r for r in results if r.leaf_count < r.published]
    if incomplete:
        print("  but the root is incomplete when the oracle cannot keep every reading within the grace period: "
              + ", ".join(f"{r.leaf_count:,} of {r.published:,}" for r in incomplete))
    report("anchor_latency", {
        "meters": args.meters, "meter_check_ms": round(check_ms, 1), "grace_s": args.grace, "interval_s": args.interval, "block_time_s": args.block_time,
        "target_s": ISP,
        "isps": [{"readings": r.load, "in_root": r.leaf_count, "late": r.late, "not_kept": r.published - r.kept,
                  "ingest_per_s": round(r.ingest_per_s), "unrooted": r.unrooted, "root_matches": r.root_matches,
                  "proof_served": r.proof_error is None, "latency_chain_s": r.latency_chain_s,
                  "latency_wall_s": round(r.latency_wall_s, 2), "tree_ms": round(r.tree_ms),
                  "confirmation_s": None if r.confirmation_s is None else round(r.confirmation_s, 2),
                  "ingest_done_s": None if r.ingest_done_s is None else round(r.ingest_done_s, 1)}
                 for r in results]})


if __name__ == "__main__":
    main()
