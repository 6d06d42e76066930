"""The demo's metering step: the demo day's evening peak passes (anvil time travel); a thousand
simulated meters sign what they measured, as the edge agent does, and publish it through the MQTT
broker; the oracle verifies and keeps each reading, anchors each ISP's root in MeterOracle, and one
reading's proof is checked on chain."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from eth_account.signers.local import LocalAccount
from rich.console import Console
from rich.progress import Progress

from flexledger.broker import BrokerError, LocalBroker
from flexledger.chain.bindings import AssetRegistryClient, MeterOracleClient, RoleRegistryClient
from flexledger.chain.connection import ChainConnection
from flexledger.chain.manifest import Manifest
from flexledger.chain.transactions import Signer
from flexledger.config import Settings
from flexledger.identity.eip712 import read_domain
from flexledger.oracle.anchoring import anchor_due, proof_for
from flexledger.oracle.consumer import OracleConsumer
from flexledger.oracle.store import open_store
from flexledger.oracle.verify import ChainMeters, Verifier
from flexledger.times import iso
from flexledger_edge.drivers.simulated import LoadProfile, SimulatedMeter
from flexledger_edge.reading import MeterSigner, OracleDomain
from flexledger_edge.topics import readings_topic

PV = 1  # the demo's asset type code for PV
ISPS = range(72, 76)  # 18:00-19:00, the TSO's request window


def metering_step(
    conn: ChainConnection, manifest: Manifest, accounts: dict[str, LocalAccount], meters: list[tuple[int, LocalAccount, int]],
    market: int, day: int, folder: Path, settings: Settings, console: Console,
) -> dict[str, Any]:
    started = time.perf_counter()
    conn.set_next_block_timestamp(day + ISPS[-1] * 900 + 900 + 120)  # two minutes after the last ISP ends
    conn.mine()
    oracle_signer = Signer(accounts["oracle"], conn)
    conn.request("anvil_setBalance", [oracle_signer.address, hex(10**20)])
    oracle = MeterOracleClient(conn, manifest.address("MeterOracle"), signer=oracle_signer)
    roles = RoleRegistryClient(conn, manifest.address("RoleRegistry"))
    assets = AssetRegistryClient(conn, manifest.address("AssetRegistry"))
    separator = read_domain(conn, oracle.address).separator()
    engine = open_store(f"sqlite:///{folder / 'oracle.db'}")
    broker = None if settings.mqtt_url else LocalBroker(folder / "broker")
    url = settings.mqtt_url or broker.start().url  # type: ignore[union-attr]
    consumer = OracleConsumer(url, engine, Verifier(separator, ChainMeters(roles, assets).problem), market,
                              client_id="flexledger-demo-oracle", clock=conn.latest_timestamp)
    consumer.start()
    if not consumer.wait_subscribed():
        raise BrokerError(f"the oracle could not subscribe at {url}", hint="check the broker (flexledger broker status)")
    domain = OracleDomain(conn.chain_id, oracle.address)
    publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="flexledger-demo-meters")
    host, port = url.split("://")[1].rsplit(":", 1)
    publisher.connect(host.split("@")[-1], int(port))
    publisher.loop_start()
    sent = 0
    try:
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("meters sign their readings and publish them (QoS 1)", total=len(meters) * len(ISPS))
            for asset, meter, kind in meters:
                signer = MeterSigner(meter.key, domain)
                sim = SimulatedMeter(LoadProfile(base_load_w=400, pv_peak_w=3000 if kind == PV else 0, seed=asset), 900)
                for n, q in enumerate(ISPS):
                    imported, exported = sim.isp_energy_wh(day + q * 900)
                    signed = signer.sign_new(isp_start=day + q * 900, sequence=n + 1, import_wh=int(imported),
                                             export_wh=int(exported))
                    while sent - sum(consumer.outcomes.values()) > 800:  # keep within what a broker queues
                        time.sleep(0.005)
                    publisher.publish(readings_topic(meter.address), signed.to_json(), qos=1)
                    sent += 1
                    progress.advance(task)
            deadline = time.time() + 60
            while sum(consumer.outcomes.values()) < sent and time.time() < deadline:
                time.sleep(0.05)
    finally:
        publisher.loop_stop()
        publisher.disconnect()
        consumer.stop()
        if broker is not None:
            broker.stop()
    rounds = anchor_due(engine, oracle, market, conn.latest_timestamp(), isp_seconds=900, grace=60)
    asset, meter, _kind = meters[0]
    proof = proof_for(engine, meter.address, day + ISPS[0] * 900)
    anchor = proof["anchor"]
    verified = oracle.verify_reading(
        market, proof["ispStart"], (bytes.fromhex(anchor["root"][2:]), anchor["oracle"], anchor["leafCount"],
                                    anchor["anchoredAt"]),
        proof["meter"], proof["sequence"], proof["importWh"], proof["exportWh"], [bytes.fromhex(p[2:]) for p in proof["proof"]])
    stored = consumer.outcomes.get("stored", 0)
    console.print(f"{len(meters)} meters signed {sent} readings for {iso(day + ISPS[0] * 900)[11:16]}-"
                  f"{iso(day + ISPS[-1] * 900 + 900)[11:16]} and published them through the broker; the oracle kept "
                  f"{stored}, refused {sent - stored}, and anchored {len(rounds.anchored)} roots in MeterOracle")
    console.print(f"the reading of meter {meter.address[:10]}… (asset {asset}) at {iso(proof['ispStart'])[11:16]}: "
                  f"{proof['importWh']} Wh in, {proof['exportWh']} Wh out; its proof of {len(proof['proof'])} hashes "
                  f"checked by MeterOracle.verifyReading: {'valid' if verified else 'INVALID'}")
    return {"meters": len(meters), "readings": sent, "stored": stored, "roots": len(rounds.anchored),
            "proof_verified": bool(verified), "seconds": round(time.perf_counter() - started, 1)}
