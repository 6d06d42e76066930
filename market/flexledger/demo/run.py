"""`flexledger demo`: the whole market flow, as far as it is built, on a fresh local chain.

Each capability adds a step here so that a newcomer sees it work, and the run ends with a
readable summary. The demo uses anvil's well-known development keys, so it refuses to run
against any chain that is not a local development chain.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_keys import keys as eth_keys
from eth_typing import Hash32
from rich.console import Console
from rich.rule import Rule
from rich.table import Table

from flexledger.chain.bindings import (
    DIDRegistryClient,
)
from flexledger.chain.connection import ChainConnection
from flexledger.chain.deploy import deploy_all
from flexledger.chain.node import LocalNode
from flexledger.chain.transactions import Signer
from flexledger.clearing.commitment import award_proofs
from flexledger.config import Settings
from flexledger.demo.assets import ASSETS, assets_step
from flexledger.demo.attacks import attacks_step
from flexledger.demo.clearing import clearing_step
from flexledger.demo.delivery import Behaviour, plan_delivery
from flexledger.demo.dispatch import dispatch_step
from flexledger.demo.grid import grid_step
from flexledger.demo.metering import MODBUS_METERS, metering_step
from flexledger.demo.money import check_token, eur
from flexledger.demo.orders import orders_step
from flexledger.demo.portfolio import overriding
from flexledger.demo.settlement import settlement_step
from flexledger.deployment import Deployment
from flexledger.identity import keys
from flexledger.identity.credentials import (
    NO_EXPIRY,
    credential_hash,
    issue_role_credential,
    verify_on_chain,
)
from flexledger.identity.did import did_for
from flexledger.identity.eip712 import read_domain
from flexledger.identity.resolver import DIDResolver
from flexledger.identity.roles import Role
from flexledger.times import iso

DEMO_PROSUMERS = 12


@contextlib.contextmanager
def demo_chain(settings: Settings, *, keep: bool, console: Console) -> Iterator[ChainConnection]:
    """A fresh local chain of its own (or the configured chain), stopped afterwards unless ``keep``."""
    if settings.rpc_url:
        yield ChainConnection.connect(settings.rpc_url, timeout=settings.rpc_timeout)
        return
    folder = Path(tempfile.mkdtemp(prefix="flexledger-demo-")) if not keep else settings.data_dir / "demo"
    node = LocalNode(folder, port=settings.node_port, chain_id=settings.node_chain_id, persist=keep)
    node.stop()
    (folder / "anvil-state.json").unlink(missing_ok=True)  # a demo starts empty, even after an earlier --keep
    info = node.start()
    console.print(f"local chain started at {info.rpc_url} (chain id {info.chain_id})")
    try:
        yield ChainConnection.connect(info.rpc_url)
    finally:
        if keep:
            console.print(f"the demo chain keeps running at {info.rpc_url} (its data is in {folder})")
        else:
            node.stop()


def run_demo(settings: Settings, *, keep: bool = False, quiet: bool = False, asset_count: int = ASSETS) -> dict[str, Any]:
    console = Console(quiet=quiet)
    started = time.perf_counter()
    summary: dict[str, Any] = {}
    with demo_chain(settings, keep=keep, console=console) as conn:
        deployer = keys.signer(keys.dev_accounts()[0], conn)

        console.print(Rule("1. Contracts"))
        manifest = deploy_all(conn, deployer)
        chain = Deployment(conn, manifest)  # every step's clients; `authority`'s sign as the market authority
        authority = chain.signed_by(deployer)
        check_token(chain)
        if keep and not settings.rpc_url:  # so that the CLI can go on where the demo stops
            kept_manifest = settings.data_dir / "demo" / "manifest.json"
            manifest.save(kept_manifest)
            summary["kept"] = {"rpc_url": conn.rpc_url, "manifest": str(kept_manifest)}
        table = Table("contract", "address", "gas")
        for name, c in manifest.contracts.items():
            table.add_row(name, c.address, f"{c.gas_used:,}")
        console.print(table)
        summary["chain_id"] = conn.chain_id
        summary["contracts"] = {n: c.address for n, c in manifest.contracts.items()}
        summary["deploy_gas"] = {n: c.gas_used for n, c in manifest.contracts.items()}

        console.print(Rule("2. Identities and roles"))
        summary["identity"], accounts = identities_step(authority, console)

        console.print(Rule("3. The grid and its traffic lights"))
        summary["grid"] = grid_step(authority, accounts, console)
        console.print(Rule("4. Assets"))
        summary["assets"] = assets_step(authority, accounts, summary["grid"]["feeders_of"], console,
                                        count=asset_count, market=summary["grid"]["market"])
        console.print(Rule("5. The order book"))
        grid_info = {k: summary["grid"].pop(k) for k in ("feeders_of", "substation_of", "area", "day")}
        grid_info["market"] = summary["grid"]["market"]
        summary["orders"] = orders_step(authority, accounts, grid_info,
                                        summary["assets"].pop("holdings"), summary["assets"]["meters"], console)
        kept = summary["orders"].pop("kept")
        console.print(Rule("6. Clearing"))
        summary["clearing"] = clearing_step(chain, accounts["clearing operator"], grid_info["market"],
                                            grid_info["day"], console)
        console.print(Rule("7. Metering"))
        meters = summary["assets"].pop("meters")
        awards = award_proofs(chain.clearing, summary["clearing"]["result_id"])
        plan = plan_delivery(awards, kept, {asset for asset, _meter, _kind in meters[:MODBUS_METERS]})
        pooled = plan.portfolios
        console.print(f"the final result's awards are activation orders for {len(plan.deliveries)} offers: "
                      f"{plan.count(Behaviour.FULL) - len(pooled)} assets deliver in full ({plan.over_modbus} of them "
                      "behind the SDM630 gateways, whose controllers aim 10 % above the award), "
                      f"{plan.count(Behaviour.SHORT)} fall short (their prosumers override: 40 % arrives), "
                      f"{plan.count(Behaviour.OVER)} over-delivers (150 %)")
        for d in pooled:
            console.print(f"portfolio {d.kept.offer.portfolio}'s award is split among its {len(d.kept.members)} "
                          f"members by their power: asset {overriding(d.kept.members).asset}'s prosumer overrides "
                          f"(40 % of its share arrives) and {d.kept.aggregator} dispatches the other members for the "
                          "rest, so that their sum meets the award")
        if not pooled:
            console.print("[red]the portfolio's offer was not awarded[/]")
        summary["dispatch"], activations = dispatch_step(
            authority, grid_info["market"], summary["clearing"]["result_id"], awards, kept,
            summary["grid"]["isp_seconds"], console)
        summary["bonds"] = summary["orders"].pop("bonds")  # posted before the offers: a seller needs free bond
        folder = Path(tempfile.mkdtemp(prefix="flexledger-demo-metering-"))
        try:
            metered = metering_step(chain, accounts, meters, grid_info["market"], grid_info["day"], folder,
                                    settings, console, plan, activations)
            store, fault = metered.pop("store"), metered.pop("fault")
            summary["metering"] = metered
            console.print(Rule("8. Settlement"))
            summary["settlement"] = settlement_step(chain, accounts, grid_info["market"], grid_info["day"],
                                                    summary["clearing"]["result_id"], plan, store, fault, console)
            store.dispose()
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        console.print(Rule("9. Attacks, refused"))
        summary["attacks"] = attacks_step(chain, deployer, accounts, grid_info["market"], meters, kept,
                                          MODBUS_METERS, console)
        for n, (name, step) in enumerate(installed_steps(), start=10):
            console.print(Rule(f"{n}. {(step.__doc__ or name).splitlines()[0].rstrip('.')}"))
            summary[name] = step(chain, accounts, console)

    summary["seconds"] = round(time.perf_counter() - started, 1)
    console.print(Rule("Summary"))
    ident = summary["identity"]
    table = Table("step", "result")
    table.add_row("contracts", f"{len(summary['contracts'])} deployed on chain {summary['chain_id']}")
    table.add_row("identities", f"{ident['dids']} did:ethr DIDs ({ident['parties']} parties, {ident['meters']} meters)")
    table.add_row("roles", ", ".join(f"{n} {r}" for r, n in ident["roles"].items()))
    table.add_row("credentials", f"W3C VCs signed by the authority, hashes anchored; {ident['verified']} verified on chain")
    table.add_row("meter keys", f"{ident['meters']} published by signed ERC-1056 changes (the meters paid no gas)")
    grid = summary["grid"]
    table.add_row("market", f"market {grid['market']}: {grid['isp_seconds'] // 60}-minute ISPs, gate closure "
                  f"{grid['gate_closure_seconds'] // 60} min ahead")
    table.add_row("grid", f"{grid['zones']} zones (1 TSO area, 2 DSO perimeters, {grid['substations']} substations, "
                  f"{grid['feeders']} feeders)")
    table.add_row("lights", f"static lights on every DSO zone; a day of dynamic lights: {grid['yellow']} YELLOW and "
                  f"{grid['red']} RED entries ({grid['publish_gas']:,} gas)")
    assets = summary["assets"]
    table.add_row("assets", f"{assets['assets']} registered by signed, relayed registrations, {assets['mapped']} mapped "
                  "by their DSOs (" + ", ".join(f"{n} {t}" for t, n in sorted(assets["by_type"].items())) + ")")
    orders = summary["orders"]
    pooled = orders["portfolio"]
    table.add_row("offers", f"{orders['offers_signed'] - 1} signed by prosumers in their wallets and 1 by "
                  f"{pooled['aggregator']} for its portfolio, relayed by 3 aggregators: {orders['accepted']} accepted ({orders['replaced']} later replaced by newer ones), "
                  f"{orders['skipped']} skipped with their reasons; {orders['gas_per_offer']:,} gas per offer")
    table.add_row("portfolio", f"{pooled['aggregator']} pooled {len(pooled['members'])} households of feeder "
                  f"{pooled['zone']} (assets {', '.join(map(str, pooled['members']))}) with their owners' signed "
                  f"consent, and offered them as portfolio {pooled['id']}: {pooled['power_w'] / 1000:,.1f} kW at "
                  f"{eur(pooled['price'], 0)} €/MWh, signed by the aggregator")
    table.add_row("requests", f"{orders['requests']} posted by 2 DSOs and the TSO, {eur(orders['escrow'])} EUR in "
                  f"escrow; {orders['gas_per_request']:,} gas per request")
    cleared = summary["clearing"]
    table.add_row("clearing", f"{cleared['awards']} awards from {cleared['offers']} offers and {cleared['requests']} "
                  f"requests read from the chain, DSO first; welfare {eur(cleared['welfare'])} EUR, "
                  f"{cleared['status']} (gap {cleared['gap']:.2g}); committed as result {cleared['result_id']}, every "
                  f"award checked by the contract ({cleared['gas_per_award']:,} gas per award), final after the "
                  f"challenge window; the auditor's re-run: {cleared['audit']}")
    dispatched = summary["dispatch"]
    answers = summary["metering"]["order_answers"]
    table.add_row("dispatch", f"{dispatched['orders']} activation orders signed by the dispatcher MarketRegistry names "
                  f"(EIP-712); the SDM630 gateways checked theirs on chain: "
                  + (", ".join(f"{n} {status}" for status, n in sorted(answers.items())) or "none for them"))
    metered = summary["metering"]
    table.add_row("metering", f"{metered['meters']} meters signed {metered['readings']} readings through the MQTT "
                  f"broker ({metered['modbus_readings']} of them read over Modbus TCP by the edge agent from "
                  f"{metered['modbus_meters']} SDM630 meters); the oracle kept {metered['stored']} and anchored "
                  f"{metered['roots']} Merkle roots in MeterOracle; a proof checked on chain: "
                  f"{'valid' if metered['proof_verified'] else 'INVALID'}"
                  + ("; one stored reading corrupted on purpose before anchoring (the dispute's fault)"
                     if metered["fault_injected"] else ""))
    settled = summary["settlement"]
    table.add_row("settlement", f"{settled['offers']} awarded offers settled ({settled['lines']} award-ISP lines, "
                  f"{settled['gas_per_line']:,} gas per line in batches) from revealed baselines and anchored "
                  f"readings: {settled['full']} delivered in full, {settled['short']} fell short (penalised), "
                  f"{settled['over']} over-delivered (paid for its award only); made final, refunded, every claim "
                  f"withdrawn; the demo's own check of every line and balance: "
                  f"{'OK' if settled['checked'] else 'FAILED'}")
    outcome = settled["portfolio"]
    if outcome:
        table.add_row("portfolio settled", f"portfolio {outcome['id']}: {outcome['awarded_wh'] / 1000:,.2f} kWh "
                      f"awarded, {outcome['delivered_wh'] / 1000:,.2f} kWh delivered by its members' meters summed "
                      f"(asset {outcome['overriding']} fell short, the others made up for it); "
                      f"{eur(outcome['paid'])} EUR paid to {outcome['aggregator']}, the record's seller "
                      f"(penalty {eur(outcome['penalty'])} EUR), and withdrawn")
    dispute = settled["dispute"]
    if dispute:
        table.add_row("dispute", f"asset {dispute['asset']}'s owner showed the reading its meter signed: "
                      f"{'upheld' if dispute['upheld'] else 'REFUSED'}, paid {eur(dispute['paid_before'])} -> "
                      f"{eur(dispute['paid_after'])} EUR, penalty {eur(dispute['penalty_before'])} -> "
                      f"{eur(dispute['penalty_after'])} EUR; {dispute['faults']} fault counted against the "
                      "oracle (ReadingDisputes.faultsOf)")
    table.add_row("money", ", ".join(f"{name} paid {eur(cents)}" for name, cents in settled["paid"].items())
                  + f" EUR net of penalties; of the {summary['bonds']['prosumers']} bonded sellers the awarded received "
                  f"{eur(settled['prosumers'])} EUR; bond draws {eur(settled['bond_draws'])} EUR "
                  f"(of {eur(summary['bonds']['posted'])} posted), debts {eur(settled['debts'])} EUR")
    table.add_row("settlement audit", f"the auditor's recomputation from public chain data: {settled['audit']}"
                  + ("; its figures are the demo's own" if settled["audit_agrees"] else "; its figures DIFFER"))
    attacks = summary["attacks"]
    for line in attacks["refused"]:
        table.add_row("attack", line)
    std = attacks["baselines"]
    answered = std["answered"]
    table.add_row("baseline challenge", f"upheld: the oracle's standard baseline of asset {std['asset']} for "
                  f"{std['isp']} averaged a day it had no reading of ({std['days_back']} days before, {std['net']} Wh); "
                  f"the {std['challenger']} challenged it with a {eur(std['bond'])} EUR bond, nobody answered, "
                  f"and anyone upheld it after the window: {std['baseline_was']} -> {std['baseline_now']} Wh. The "
                  f"oracle was slashed once ({std['faults']} fault, {eur(std['slashed'])} EUR of its stake), the "
                  f"{std['challenger']} received {eur(std['challenger_gained'])} EUR (the stake and its bond "
                  f"back); asset {std['asset']}'s offer re-settled on the correction: paid "
                  f"{eur(std['before']['payment'])} -> {eur(std['after']['payment'])} EUR, penalty "
                  f"{eur(std['before']['penalty'])} -> {eur(std['after']['penalty'])} EUR")
    table.add_row("baseline challenge", f"answered: {answered['challenger']} challenged a day of asset "
                  f"{answered['asset']}'s honest standard baseline; "
                  + (f"the oracle's service loop (`oracle run`) answered with that day's anchored reading, the "
                     f"challenge failed and its {eur(answered['bond'])} EUR bond paid the oracle "
                     f"(+{eur(answered['oracle_gained'])} EUR), its stake untouched"
                     if answered["answered"] else "NOT ANSWERED: the bond stays in BaselineDisputes"))
    table.add_row("attack day audit", f"the attack day {attacks['day']} re-checked from public chain data (its debt "
                  f"of {eur(attacks['debt'])} EUR recorded, repaid and collected): {attacks['audit']}")
    for name, _step in installed_steps():
        table.add_row(name, summary[name]["line"])
    table.add_row("time", f"{summary['seconds']} s")
    console.print(table)
    if "kept" in summary:
        day = iso(grid_info["day"])[:10]
        console.print(f"the demo chain keeps running; the CLI goes on from there with\n"
                      f"  export FLEXLEDGER_RPC_URL={summary['kept']['rpc_url']} "
                      f"FLEXLEDGER_MANIFEST={summary['kept']['manifest']}\n"
                      f"  flexledger audit day {day}      # the demo day's clearing and settlement, re-checked",
                      soft_wrap=True)
        summary["kept"]["day"] = day
    return summary


# A step another installed distribution adds to the demo (the backend's index and API): called with
# the deployment, the demo's accounts and the console; returns its part of the summary, whose
# "line" is its row in the summary table. Its docstring's first line titles it.
DemoStep = Callable[[Deployment, dict[str, LocalAccount], Console], dict[str, Any]]


def installed_steps() -> list[tuple[str, DemoStep]]:
    """The steps of the ``flexledger.demo_steps`` entry points, in name order: the market's demo
    shows what the distributions above it add without importing them."""
    from importlib.metadata import entry_points

    return [(e.name, e.load()) for e in sorted(entry_points(group="flexledger.demo_steps"), key=lambda e: e.name)]


def identities_step(chain: Deployment, console: Console) -> tuple[dict[str, Any], dict[str, LocalAccount]]:
    """DIDs for a TSO, two DSOs, three aggregators, an oracle, an auditor, prosumers and meters.

    The authority signs each role credential (W3C VC, EIP-712) and anchors the hashes in batches;
    each meter publishes its signing key and its MQTT topic in its DID document through signed
    ERC-1056 changes that an aggregator relays, so the meter itself needs no gas.
    """
    conn, authority = chain.conn, chain.signer  # the market authority signs the role credentials
    assert authority is not None
    roles, dids = chain.roles, chain.dids
    domain = read_domain(conn, roles.address)
    now = conn.latest_timestamp()
    parties: list[tuple[str, Role]] = [("TSO", Role.TSO), ("DSO north", Role.DSO), ("DSO south", Role.DSO)]
    parties += [(f"aggregator {i}", Role.AGGREGATOR) for i in (1, 2, 3)]
    parties += [("oracle", Role.ORACLE), ("auditor", Role.AUDITOR), ("clearing operator", Role.CLEARING)]
    parties += [(f"prosumer {i:02d}", Role.PROSUMER) for i in range(1, DEMO_PROSUMERS + 1)]
    accounts = {name: keys.new_account() for name, _ in parties}
    meters = [keys.new_account() for _ in range(DEMO_PROSUMERS)]
    grants = [(accounts[name].address, role) for name, role in parties] + [(m.address, Role.METER) for m in meters]

    credentials = [
        issue_role_credential(authority.account, subject, role, domain, valid_from=now, valid_until=NO_EXPIRY)
        for subject, role in grants
    ]
    tx = roles.issue_credentials(
        [s for s, _ in grants], [r.id for _, r in grants], [now] * len(grants), [NO_EXPIRY] * len(grants),
        [credential_hash(vc) for vc in credentials],
    )
    console.print(f"{len(grants)} role credentials signed and anchored in one transaction ({tx.gas_used:,} gas)")
    for vc in credentials:  # raises on any credential that does not check out
        verify_on_chain(vc, roles)
    verified = len(credentials)

    relayer = Signer(keys.dev_accounts()[1], conn)  # an aggregator's gas pays for the meters' changes
    for meter in meters:
        for name, value in (
            ("did/pub/Secp256k1/veriKey/hex", eth_keys.PrivateKey(meter.key).public_key.to_compressed_bytes()),
            ("did/svc/FlexledgerReadings", f"mqtt://broker/flexledger/v1/readings/{meter.address}".encode()),
        ):
            name32 = name.encode().ljust(32, b"\0")
            validity = 10 * 365 * 86400
            owner = dids.identity_owner(meter.address)
            digest = _erc1056_digest(dids, meter.address, owner, b"setAttribute" + name32 + value + validity.to_bytes(32, "big"))
            signed = meter.unsafe_sign_hash(Hash32(digest))
            dids.set_attribute_signed(
                meter.address, signed.v, signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big"), name32, value,
                validity, sender=relayer,
            )
    resolver = DIDResolver(conn, dids.address)
    meter_did = did_for(meters[0].address, conn.chain_id)
    console.print(f"DID document of one meter ({meter_did}):")
    console.print_json(data=resolver.resolve(meter_did).document)
    counts: dict[str, int] = {}
    for _, role in grants:
        counts[role.value] = counts.get(role.value, 0) + 1
    summary = {"dids": len(grants), "parties": len(parties), "meters": len(meters), "roles": counts,
               "verified": verified, "meter_did": str(meter_did)}
    return summary, accounts


def _erc1056_digest(dids: DIDRegistryClient, identity: str, owner: str, tail: bytes) -> bytes:
    """The hash an ERC-1056 owner signs for a ``...Signed`` change (the standard's own layout)."""
    from eth_utils import keccak

    return keccak(
        b"\x19\x00" + bytes.fromhex(dids.address[2:]) + dids.nonce(owner).to_bytes(32, "big")
        + bytes.fromhex(identity[2:]) + tail
    )
