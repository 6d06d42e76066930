"""The demo's assets step: a thousand prosumers, each with a meter and an asset, registered
without gas (signed by the owner and by the meter's own key, as its gateway would, relayed by
aggregators) and mapped to feeders by their DSOs in batches."""

from __future__ import annotations

import random
import time
from typing import Any

from eth_account.signers.local import LocalAccount
from rich.console import Console
from rich.progress import Progress

from flexledger.chain.client import TxResult, wait_all
from flexledger.chain.transactions import Signer
from flexledger.deployment import Deployment
from flexledger.identity import keys
from flexledger.identity.credentials import NO_EXPIRY, credential_hash, issue_role_credential
from flexledger.identity.eip712 import read_domain
from flexledger.identity.roles import Role
from flexledger.rules.assets import registration, sign_meter_registration

ASSETS = 1000
CREDENTIALS_PER_TX = 250
REGISTRATIONS_PER_TX = 150  # two signatures to check per asset (owner, meter)
MAPPINGS_PER_TX = 250
ASSET_TYPES = {1: "PV", 2: "battery", 3: "heat pump", 4: "EV charger"}


def assets_step(
    chain: Deployment,
    accounts: dict[str, LocalAccount],
    feeders_of: dict[str, list[int]],
    console: Console,
    count: int = ASSETS,
    market: int = 1,
) -> dict[str, Any]:
    rng = random.Random(11)
    started = time.perf_counter()
    conn, authority = chain.conn, chain.signer  # the market authority, who registers the owners' roles
    assert authority is not None
    roles, assets = chain.roles, chain.assets
    owners = [keys.new_account() for _ in range(count)]
    meters = [keys.new_account() for _ in range(count)]
    now = conn.latest_timestamp()
    domain = read_domain(conn, roles.address)
    grants = [(o.address, Role.PROSUMER) for o in owners] + [(m.address, Role.METER) for m in meters]
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("signing and anchoring role credentials", total=len(grants))
        pending: list[TxResult] = []
        for i in range(0, len(grants), CREDENTIALS_PER_TX):
            chunk = grants[i:i + CREDENTIALS_PER_TX]
            hashes = [credential_hash(issue_role_credential(authority.account, s, r, domain, valid_from=now)) for s, r in chunk]
            pending.append(roles.issue_credentials([s for s, _ in chunk], [r.id for _, r in chunk], [now] * len(chunk),
                                                   [NO_EXPIRY] * len(chunk), hashes, wait=False, gas=15_000_000))
            progress.advance(task, len(chunk))
        wait_all(conn, pending)

        aggregators = [Signer(accounts[f"aggregator {i}"], conn) for i in (1, 2, 3)]
        for a in aggregators:
            conn.request("anvil_setBalance", [a.address, hex(10**20)])
        asset_domain = read_domain(conn, assets.address)
        deadline = now + 86_400
        types = [rng.choice(list(ASSET_TYPES)) for _ in range(count)]
        task = progress.add_task("owners and meters sign, aggregators relay the registrations", total=count)
        pending = []
        for n, i in enumerate(range(0, count, REGISTRATIONS_PER_TX)):
            idx = range(i, min(i + REGISTRATIONS_PER_TX, count))
            signatures = [registration(asset_domain, owners[k].address, meters[k].address, types[k], deadline).sign(owners[k])
                          for k in idx]
            # fresh meter keys: each meter's registration nonce is 0
            meter_signatures = [sign_meter_registration(meters[k], asset_domain, owners[k].address, types[k], 0, deadline)
                                for k in idx]
            pending.append(assets.register_assets_signed(
                [owners[k].address for k in idx], [meters[k].address for k in idx], [types[k] for k in idx], signatures,
                meter_signatures, deadline, sender=aggregators[n % len(aggregators)], wait=False, gas=25_000_000))
            progress.advance(task, len(idx))
        wait_all(conn, pending)
        first = assets.asset_count() - count + 1

        task = progress.add_task("DSOs map the assets to their feeders", total=count)
        dsos = list(feeders_of)
        plan: dict[str, list[tuple[int, int, int, int]]] = {d: [] for d in dsos}
        for k in range(count):
            dso = dsos[k % len(dsos)]
            feeder = rng.choice(feeders_of[dso])
            power = rng.choice([3_000, 5_000, 7_000, 11_000, 22_000])
            plan[dso].append((first + k, feeder, power, power))
        pending = []
        for dso_name, rows in plan.items():
            dso_signer = Signer(accounts[dso_name], conn)
            for i in range(0, len(rows), MAPPINGS_PER_TX):
                batch = rows[i:i + MAPPINGS_PER_TX]
                pending.append(assets.map_assets([r[0] for r in batch], [r[1] for r in batch], [r[2] for r in batch],
                                                 [r[3] for r in batch], [market] * len(batch), sender=dso_signer,
                                                 wait=False, gas=25_000_000))
                progress.advance(task, len(batch))
        wait_all(conn, pending)

    mapped = sum(1 for k in range(count) if assets.asset(first + k).status == 2)
    by_type: dict[str, int] = {}
    for t in types:
        by_type[ASSET_TYPES[t]] = by_type.get(ASSET_TYPES[t], 0) + 1
    seconds = time.perf_counter() - started
    console.print(f"{count} prosumers with a meter and an asset each: {len(grants)} credentials anchored, "
                  f"{count} assets registered (owners paid no gas) and {mapped} mapped to "
                  f"{sum(len(f) for f in feeders_of.values())} feeders in {seconds:.1f} s")
    return {"assets": count, "mapped": mapped, "by_type": by_type, "first_asset": first, "seconds": round(seconds, 1),
            # for the order book step: who owns which asset, where, with what power
            "holdings": [(first + k, owners[k], row[1], row[2]) for k, row in
                         enumerate(sorted((r for rows in plan.values() for r in rows), key=lambda r: r[0]))],
            # for the metering step: each asset's meter key and asset type
            "meters": [(first + k, meters[k], types[k]) for k in range(count)]}
