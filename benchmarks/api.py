"""Offer intake over HTTP: signed offers checked (signature, domain, owner, window, power, nonce,
against the chain's state) and queued in SQL, per second, through the real server.

Run: .venv/bin/python benchmarks/api.py [--assets 200] [--offers 20000] [--per-request 1,20,200]
        [--clients 4] [--workers 1,2]
Target (backend issue): at least 2,000 signed offers per second checked and queued, on 2 cores.

The server is `flexledger api serve --no-relay --workers N` (uvicorn; one run per --workers value)
over a fresh SQLite database and a local anvil with one market, an aggregator and --assets assets
of one prosumer. The offers are signed beforehand; the load generator is another process (this script
with --load) posting them over loopback with --clients connections at once, authenticated by an API
key, in lists of --per-request offers. Each offer is a new nonce of its asset, so every one is
judged and queued (none refused). It reports offers queued per second and the latency of a
request (p50, p99) for each list size, with the machine's load average.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from _common import local_chain, report  # benchmarks/ is on sys.path when a script runs
from coincurve import PrivateKey

from flexledger.chain import structs
from flexledger.chain.deploy import deploy_all
from flexledger.deployment import Deployment
from flexledger.grid.owners import register_with_meters
from flexledger.identity import keys
from flexledger.identity.roles import Role
from flexledger.rules.market import MarketParams
from flexledger.rules.orders import BaselineMethod, Mode, Offer

FOREVER = 2**64 - 1
BOND = 10**9


def _setup(conn: Any, assets_count: int) -> tuple[Deployment, Any, list[int], int, int]:
    """A market with an aggregator and one prosumer's ``assets_count`` assets, bonded."""
    deployer = keys.signer(keys.dev_accounts()[0], conn)
    manifest = deploy_all(conn, deployer)
    d = Deployment(conn, manifest, deployer)
    tso, dso, aggregator = (keys.signer(keys.dev_accounts()[i], conn) for i in (1, 2, 4))
    owner = keys.dev_accounts()[5]
    owner_signer = keys.signer(owner, conn)
    meters = [keys.new_account() for _ in range(assets_count)]
    grants = [(tso.address, Role.TSO), (dso.address, Role.DSO), (aggregator.address, Role.AGGREGATOR),
              (owner.address, Role.PROSUMER), *((m.address, Role.METER) for m in meters)]
    for first in range(0, len(grants), 200):
        part = grants[first:first + 200]
        d.roles.issue_credentials([a for a, _ in part], [r.id for _, r in part], [0] * len(part),
                                  [FOREVER] * len(part), [b"\x01" * 32] * len(part))
    params = MarketParams()
    market = d.markets.create_market(structs.MarketParams.like(params)).event("MarketCreated").args["marketId"]
    root = d.zones.add_zone(0, tso.address, 0, sender=tso).event("ZoneAdded").args["zoneId"]
    feeder = d.zones.add_zone(root, dso.address, 10**9, sender=tso).event("ZoneAdded").args["zoneId"]
    ids: list[int] = []
    for first in range(0, len(meters), 50):
        tx = register_with_meters(d.assets, meters[first:first + 50], [2] * len(meters[first:first + 50]),
                                  sender=owner_signer, fresh=True)
        ids += [e.args["assetId"] for e in tx.events if e.name == "AssetRegistered"]
        part = ids[first:]
        d.assets.map_assets(part, [feeder] * len(part), [10_000] * len(part), [10_000] * len(part),
                            [market] * len(part), sender=dso)
    d.token.mint(owner.address, BOND)
    d.token.approve(d.order_book.address, BOND, sender=owner_signer)
    d.order_book.post_bond(owner.address, BOND, sender=owner_signer)
    day = params.day_start(conn.latest_timestamp()) + 2 * 86_400
    return d.signed_by(aggregator), owner, ids, market, day


def _signed_offers(d: Deployment, owner: Any, ids: list[int], market: int, day: int, first: int,
                   count: int) -> list[dict[str, Any]]:
    """Offers ``first`` to ``first + count`` of a sequence whose nonces rise per asset, in the wire
    format, signed with coincurve (fast)."""
    domain = d.order_book_domain
    separator = domain.separator()
    key = PrivateKey(bytes(owner.key))
    expiry = d.conn.latest_timestamp() + 7 * 86_400
    out = []
    for i in range(first, first + count):
        offer = Offer(market, ids[i % len(ids)], 0, day + (i % 90) * 900, 1, 0, 5_000, 15_000, Mode.DIVISIBLE, 0,
                      BaselineMethod.ROLLING_AVERAGE, bytes(32), expiry, i // len(ids) + 1)
        raw = key.sign_recoverable(offer.digest(separator), hasher=None)
        signature = raw[:64] + bytes([raw[64] + 27])
        out.append({"typedData": offer.typed(domain).to_json(), "signature": "0x" + signature.hex()})
    return out


def _serve(d: Deployment, folder: Path, workers: int) -> tuple[str, subprocess.Popen[bytes]]:
    """`flexledger api serve --no-relay --workers N` over ``d``'s chain, a fresh SQLite and the
    aggregator's keystore, as an operator runs it; returns its URL once it answers."""
    import httpx

    from flexledger.chain.node import free_port

    assert d.signer is not None
    port = free_port()
    data = folder / f"serve-{workers}"
    data.mkdir()
    d.manifest.save(data / "manifest.json")
    keystore = keys.save_keystore(d.signer.account, "bench", data / "keys")
    env = {**os.environ, "FLEXLEDGER_DATA_DIR": str(data), "FLEXLEDGER_RPC_URL": d.conn.rpc_url,
           "FLEXLEDGER_MANIFEST": str(data / "manifest.json"), "FLEXLEDGER_KEY": str(keystore),
           "FLEXLEDGER_KEY_PASSWORD": "bench", "FLEXLEDGER_API_DATABASE_URL": f"sqlite:///{data / 'api.db'}",
           "FLEXLEDGER_API_DOMAIN": f"127.0.0.1:{port}", "FLEXLEDGER_API_URI": f"http://127.0.0.1:{port}",
           "FLEXLEDGER_API_MAX_BODY_BYTES": "50000000"}
    flexledger = Path(sys.executable).with_name("flexledger")
    server = subprocess.Popen([str(flexledger), "api", "serve", "--no-relay", "--workers", str(workers),
                               "--port", str(port)], env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/openapi.json", timeout=2).status_code == 200:
                return url, server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("the API server did not answer within 2 minutes")


def _api_key(url: str, account: Any) -> str:
    """Sign in as ``account`` (EIP-4361) and create an API key, as an aggregator's server would."""
    import datetime as dt

    import httpx
    from eth_account import Account
    from eth_account.messages import encode_defunct

    from flexledger.api.siwe import SiweMessage, format_time

    with httpx.Client(base_url=url) as client:
        issued = client.post("/v1/auth/nonce").json()
        text = SiweMessage(domain=issued["domain"], address=account.address, uri=issued["uri"],
                           chain_id=issued["chainId"], nonce=issued["nonce"],
                           issued_at=format_time(dt.datetime.now(dt.UTC))).to_text()
        signature = "0x" + bytes(Account.sign_message(encode_defunct(text=text), account.key).signature).hex()
        token = client.post("/v1/auth/login", json={"message": text, "signature": signature}).json()["token"]
        key: str = client.post("/v1/keys", json={"label": "bench"}, headers={"Authorization": f"Bearer {token}"}
                               ).json()["key"]
    return key


def load(url: str, key: str, path: Path, per_request: int, clients: int) -> None:
    """The load generator (its own process): post the offers in ``path``, print the figures as JSON."""
    import httpx

    offers = json.loads(path.read_text())
    # each asset's offers in one lane, in nonce order: a lane's requests go one after the other, so
    # no offer reaches the server after a newer one of its asset (which would make it stale)
    by_lane: list[list[Any]] = [[] for _ in range(clients)]
    for offer in offers:
        by_lane[int(offer["typedData"]["message"]["asset"]) % clients].append(offer)
    lanes = [[json.dumps(lane[i:i + per_request]).encode() for i in range(0, len(lane), per_request)]
             for lane in by_lane]
    requests = sum(len(lane) for lane in lanes)
    headers = {"Authorization": f"Bearer {key}", "content-type": "application/json"}
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def run(lane: list[bytes]) -> None:
        with httpx.Client(base_url=url, timeout=120) as client:
            for body in lane:
                started = time.perf_counter()
                response = client.post("/v1/offers", content=body, headers=headers)
                with lock:
                    latencies.append(time.perf_counter() - started)
                    if response.status_code != 202:
                        failures.append(f"{response.status_code} {response.text[:300]}")

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        list(pool.map(run, lanes))
    elapsed = time.perf_counter() - started
    latencies.sort()
    print(json.dumps({"offers": len(offers), "requests": requests, "seconds": round(elapsed, 2),
                      "offers_per_second": round(len(offers) / elapsed),
                      "p50_ms": round(1000 * latencies[len(latencies) // 2], 1),
                      "p99_ms": round(1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 1),
                      "failures": len(failures), "first_failure": failures[0] if failures else None}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assets", type=int, default=200)
    parser.add_argument("--offers", type=int, default=20_000, help="offers per list size")
    parser.add_argument("--per-request", default="1,20,200", help="list sizes, comma-separated")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", default="1,2", help="server processes, comma-separated (one run each)")
    parser.add_argument("--load", nargs=3, metavar=("URL", "KEY", "FILE"), help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        load(args.load[0], args.load[1], Path(args.load[2]), args.size, args.clients)
        return
    sizes = [int(s) for s in args.per_request.split(",")]
    folder = Path(tempfile.mkdtemp(prefix="flexledger-bench-api-"))
    figures: dict[str, Any] = {"assets": args.assets, "clients": args.clients}
    with local_chain() as conn:
        d, owner, ids, market, day = _setup(conn, args.assets)
        first = 0
        for workers in [int(w) for w in args.workers.split(",")]:
            url, server = _serve(d, folder, workers)
            try:
                key = _api_key(url, keys.dev_accounts()[4])
                for size in sizes:
                    count = args.offers if size > 1 else min(args.offers, 2_000)  # one a request is slow: fewer
                    offers = _signed_offers(d, owner, ids, market, day, first, count)
                    first += count  # every run's offers are new (later nonces): none is a duplicate
                    file = folder / f"offers-{workers}-{size}.json"
                    file.write_text(json.dumps(offers))
                    load_before = os.getloadavg()[0]
                    out = subprocess.run([sys.executable, __file__, "--load", url, key, str(file), "--size", str(size),
                                          "--clients", str(args.clients)], capture_output=True, text=True,
                                         check=True).stdout
                    result = json.loads(out.strip().splitlines()[-1])
                    result["load_average_1m"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
                    figures[f"workers_{workers}_per_request_{size}"] = result
                    print(f"{workers} workers, {size} offers a request: {result}", flush=True)
            finally:
                server.terminate()
                server.wait(timeout=60)
    report("api", {**figures, "target_offers_per_second": 2_000})


if __name__ == "__main__":
    main()
