"""The demo's metering step: the demo day's evening peak passes (anvil time travel); a thousand
meters sign what they measured and publish it through the MQTT broker; the oracle verifies and keeps
each reading, anchors each ISP's root in MeterOracle, and one reading's proof is checked on chain.

The meters measure every ISP with an award (17:00-19:00): each household's own consumption
(:mod:`flexledger.demo.households`) shifted by its asset's activation (:mod:`flexledger.demo.delivery`).
One stored reading is deliberately corrupted before its ISP is anchored (an injected oracle fault,
announced in the output) so that the settlement step can dispute it with the meter's signed original.

Most meters are simulated in-process (signed as the edge agent signs). A few are SDM630 meters on
Modbus TCP, simulated by pymodbus servers whose energy registers advance with a household profile;
each of those has a gateway running the edge agent itself (its configuration file, Modbus driver,
outbox and publisher) on accelerated time, so that path is shown end to end from a register to a
proof on chain."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from eth_account.signers.local import LocalAccount
from rich.console import Console
from rich.progress import Progress
from sqlalchemy import select
from sqlalchemy.engine import Engine

from flexledger.chain.transactions import Signer
from flexledger.config import Settings
from flexledger.delivery.broker import BrokerError, BrokerUser, LocalBroker, meter_user
from flexledger.delivery.dispatch import SignedActivation
from flexledger.demo.delivery import DeliveryPlan
from flexledger.demo.households import PV, forecast_wh, profile
from flexledger.deployment import Deployment
from flexledger.errors import FlexledgerError
from flexledger.identity.eip712 import read_domain
from flexledger.oracle.anchoring import anchor_due, proof_for
from flexledger.oracle.consumer import BrokerEndpoint, OracleConsumer
from flexledger.oracle.store import StoredReading, open_store, session
from flexledger.oracle.verify import ChainMeters, Verifier
from flexledger.redaction import redact_url
from flexledger.settlement.records import reading_in
from flexledger.times import iso
from flexledger_edge.agent import EdgeAgent
from flexledger_edge.clock import AcceleratedClock
from flexledger_edge.config import load_config
from flexledger_edge.drivers.modbus_sim import Sdm630Model, SimulatedSdm630s
from flexledger_edge.drivers.simulated import LoadProfile
from flexledger_edge.orders import OrderLog
from flexledger_edge.reading import MeterSigner, OracleDomain, SignedReading
from flexledger_edge.topics import readings_topic

ISPS = range(68, 76)  # 17:00-19:00: every ISP a request (and so an award) may cover
MODBUS_METERS = 3
SECONDS_PER_ISP = 1.0  # the Modbus gateways' accelerated time: short enough to hide behind the other meters' signing


class ActivatedSdm630(Sdm630Model):
    """An SDM630's household with its flexible device activated: the net power of each ISP is
    the profile's plus the activation's (negative for an UP activation)."""

    def __init__(self, profile: LoadProfile, isp_seconds: int, shift_w: Callable[[int], float], *, start: float,
                 import_kwh: float, export_kwh: float) -> None:
        super().__init__(profile, isp_seconds, start=start, import_kwh=import_kwh, export_kwh=export_kwh)
        self._shift_w = shift_w

    def net_power_w(self, at: float) -> float:
        isp_start = int(at) - int(at) % self.isp_seconds
        return super().net_power_w(at) + self._shift_w(isp_start)


def corrupt_stored_reading(engine: Engine, meter: str, isp_start: int, add_wh: int) -> tuple[int, int]:
    """FAULT INJECTION, for the demo's dispute: raise a kept reading's import in the oracle's store,
    as a corrupted database would, before its ISP is anchored. The row keeps the meter's signature
    of the true values. Returns (import before, import after)."""
    with session(engine) as s:
        row = s.scalars(select(StoredReading).where(StoredReading.meter == meter,
                                                    StoredReading.isp_start == isp_start)).one()
        before = row.import_wh
        row.import_wh = before + add_wh
    return before, before + add_wh


class ModbusGateways:
    """Prosumers whose meter is an SDM630 on Modbus TCP, each with a gateway running the edge agent.

    The meters are pymodbus servers (:mod:`flexledger_edge.drivers.modbus_sim`); every gateway
    is configured by its own agent.toml, as a prosumer's would be, and runs the agent's loop on a
    shared accelerated clock from just before the first ISP boundary to the last one, in threads
    beside the demo's other work.
    """

    def __init__(self, meters: list[tuple[int, LocalAccount, int]], *, day: int, chain_id: int, oracle: str,
                 broker_url: Callable[[int, str], str], folder: Path, plan: DeliveryPlan,
                 orders: Mapping[int, list[SignedActivation]] | None = None, chain: dict[str, Any] | None = None) -> None:
        self.meters = meters
        self.orders = dict(orders or {})
        self.chain = chain or {}  # rpc_url, market and contract addresses: the gateways check orders on chain
        self.agents: list[EdgeAgent] = []
        # simulated time starts just under an ISP before the window's first boundary, so that an
        # agent whose thread starts late still takes that boundary as its first
        self.origin = day + ISPS[0] * 900 - 899
        self.clock: AcceleratedClock | None = None  # started once the gateways are built
        models: list[Sdm630Model] = [
            ActivatedSdm630(profile(asset, kind), 900, partial(plan.shift_w, asset), start=self.origin,
                            import_kwh=3_000.0 + asset % 997, export_kwh=float(asset % 89) if kind == PV else 0.0)
            for asset, _m, kind in meters]
        self.simulators = SimulatedSdm630s(models, self._now)
        self.chain_id, self.oracle, self.broker_url, self.folder = chain_id, oracle, broker_url, folder
        self.readings: list[int] = []
        self.errors: list[Exception] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def _now(self) -> float:
        return self.clock.now() if self.clock is not None else self.origin

    def start(self) -> None:
        served = self.simulators.start()
        configs = []
        for (asset, meter, _kind), where in zip(self.meters, served, strict=True):
            path = self.folder / f"gateway-{asset}" / "agent.toml"
            path.parent.mkdir(parents=True)
            path.write_text(f"""chain_id = {self.chain_id}
oracle_address = "{self.oracle}"
state_dir = "state"
mode = "development"  # a simulation: a real gateway names an encrypted keystore
[meter]
private_key = "0x{bytes(meter.key).hex()}"  # a simulation: a real gateway names a keystore
[broker]
url = "{self.broker_url(asset, meter.address)}"
[driver]
kind = "modbus"
host = "{where.host}"
port = {where.port}
unit_id = {where.unit_id}
timeout_s = 2.0
{self._orders_config(asset)}""")
            configs.append(load_config(path))
        self.clock = AcceleratedClock(self.origin, 900, SECONDS_PER_ISP)
        agents = self.agents = [EdgeAgent(config, self.clock) for config in configs]
        self.clock.restart()  # opening the agents' stores is not simulated time: the first boundary stays ahead
        self.readings = [0] * len(agents)
        for n, agent in enumerate(agents):
            thread = threading.Thread(target=self._run, args=(n, agent), name=f"gateway-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _orders_config(self, asset: int) -> str:
        """The gateway's asset and who may order it: the market's dispatcher, each order checked on chain."""
        orders = self.orders.get(asset)
        if not orders or not self.chain:
            return ""
        power = max(o.order.power_w for o in orders)
        c = self.chain
        return f"""[asset]
id = {asset}
[asset.device]
kind = "battery"
capacity_wh = {power * 100}
max_power_w = {power}
[orders]
market = {c["market"]}
market_registry = "{c["market_registry"]}"
rpc_url = "{c["rpc_url"]}"
clearing_commitment = "{c["clearing_commitment"]}"
asset_registry = "{c["asset_registry"]}"
"""

    def dispatch(self, publish: Callable[[str, bytes], None], timeout: float = 5.0) -> int:
        """Publish each gateway's orders once it is subscribed; how many were published."""
        deadline = time.monotonic() + timeout
        while not all(a.publisher.connected for a in self.agents) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.1)  # the SUBSCRIBE is sent on connecting; let the broker take it first
        sent = 0
        for agent in self.agents:
            if agent.config.asset is None:
                continue
            for signed in self.orders.get(agent.config.asset.id, []):
                publish(signed.topic, signed.payload)
                sent += 1
        return sent

    def answers(self) -> dict[str, int]:
        """The gateways' answers to the orders published, by status ("unanswered" when none came)."""
        counts: dict[str, int] = defaultdict(int)
        for agent in self.agents:
            if agent.config.asset is None:
                continue
            log = OrderLog(agent.config.orders_path)  # the agent closed its own on stopping
            for signed in self.orders.get(agent.config.asset.id, []):
                ack = log.answer_of(signed.order.order_id_hex)
                counts[ack.status if ack is not None else "unanswered"] += 1
            log.close()
        return dict(counts)

    def _run(self, n: int, agent: EdgeAgent) -> None:
        try:
            # the agent reads one boundary more than the ISPs it measures: the first sets the baseline
            self.readings[n] = agent.run(isps=len(ISPS), stop=self._stop, drain_s=10.0)
            if agent.left_in_outbox:
                raise BrokerError(f"gateway {n}: {agent.left_in_outbox} reading(s) not acknowledged by the broker")
        except Exception as exc:  # raised again by join(), in the demo's own thread
            self.errors.append(exc)

    def join(self, timeout: float) -> int:
        """Wait for the gateways to finish the window; the readings they made (and the broker acknowledged)."""
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if any(t.is_alive() for t in self._threads):
            raise FlexledgerError("the Modbus gateways did not finish the demo's window in time")
        if self.errors:
            raise self.errors[0]
        return sum(self.readings)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(15)
        self.simulators.stop()


def metering_step(
    deployment: Deployment, accounts: dict[str, LocalAccount], meters: list[tuple[int, LocalAccount, int]],
    market: int, day: int, folder: Path, settings: Settings, console: Console, plan: DeliveryPlan,
    activations: Mapping[int, list[SignedActivation]] | None = None,
) -> dict[str, Any]:
    started = time.perf_counter()
    conn = deployment.conn
    conn.set_next_block_timestamp(day + ISPS[-1] * 900 + 900 + 120)  # two minutes after the last ISP ends
    conn.mine()
    oracle_signer = Signer(accounts["oracle"], conn)
    conn.request("anvil_setBalance", [oracle_signer.address, hex(10**20)])
    oracle = deployment.signed_by(oracle_signer).oracle
    roles, assets = deployment.roles, deployment.assets
    separator = read_domain(conn, oracle.address).separator()
    engine = open_store(f"sqlite:///{folder / 'oracle.db'}")
    # The embedded broker admits only its users, each under its own client id: the oracle, the
    # simulated meters' publisher, and one user per Modbus gateway (what `flexledger broker user add`
    # makes for a real one). A configured broker is used as its URL says.
    broker = None if settings.mqtt_url else LocalBroker(folder / "broker")
    info = broker.start() if broker is not None else None
    if broker is not None and info is not None:
        url, oracle_id = broker.oracle_url(info)
        meters_url = broker.client_url(info, BrokerUser("flexledger-demo-meters", ("flexledger/v1/readings/+",), ()))
        dispatcher_id = "flexledger-demo-dispatcher"
        dispatcher_url = broker.client_url(info, BrokerUser(dispatcher_id, ("flexledger/v1/orders/+",),
                                                            ("flexledger/v1/acks/+",)))

        def gateway_url(asset: int, meter: str) -> str:
            return broker.client_url(info, meter_user(meter, asset))
    else:
        url, oracle_id, meters_url = settings.mqtt_url or "", "flexledger-demo-oracle", settings.mqtt_url or ""
        dispatcher_id, dispatcher_url = "flexledger-demo-dispatcher", settings.mqtt_url or ""

        def gateway_url(asset: int, meter: str) -> str:
            return url
    meters_on_chain = ChainMeters(roles, assets)
    consumer = OracleConsumer(url, engine, Verifier(separator, meters_on_chain.problem,
                                                    prefetch=meters_on_chain.prefetch), market,
                              client_id=oracle_id, clock=conn.latest_timestamp)
    consumer.receipts = True  # as `flexledger oracle run`: the gateways keep each reading until its receipt
    consumer.start()
    if not consumer.wait_subscribed():
        raise BrokerError(f"the oracle could not subscribe at {redact_url(url)}",
                          hint="check the broker (flexledger broker status)")
    domain = OracleDomain(conn.chain_id, oracle.address)
    publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="flexledger-demo-meters")
    meters_endpoint = BrokerEndpoint.from_url(meters_url)
    meters_endpoint.apply(publisher)
    publisher.connect(meters_endpoint.host, meters_endpoint.port)
    publisher.loop_start()
    modbus, simulated = meters[:MODBUS_METERS], meters[MODBUS_METERS:]
    chain = {"rpc_url": conn.rpc_url, "market": market, "market_registry": deployment.markets.address,
             "clearing_commitment": deployment.clearing.address, "asset_registry": deployment.assets.address}
    gateways = ModbusGateways(modbus, day=day, chain_id=conn.chain_id, oracle=oracle.address, broker_url=gateway_url,
                              folder=folder, plan=plan, orders=activations, chain=chain)
    # the dispatcher is the one broker user that may publish orders (the gateways only read their asset's)
    dispatcher_client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=dispatcher_id)
    dispatcher_endpoint = BrokerEndpoint.from_url(dispatcher_url)
    dispatcher_endpoint.apply(dispatcher_client)
    dispatcher_client.connect(dispatcher_endpoint.host, dispatcher_endpoint.port)
    dispatcher_client.loop_start()
    disputed = plan.deliveries[plan.disputed] if plan.disputed is not None else None
    kept_original: SignedReading | None = None  # the disputed reading, as the prosumer's gateway keeps it
    sent = modbus_sent = 0
    try:
        gateways.start()
        dispatched = gateways.dispatch(
            lambda topic, payload: dispatcher_client.publish(topic, payload, qos=1).wait_for_publish(5))
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("meters sign their readings and publish them (QoS 1)",
                                     total=len(simulated) * len(ISPS))
            for asset, meter, kind in simulated:
                signer = MeterSigner(meter.key, domain)
                for n, q in enumerate(ISPS):
                    t = day + q * 900
                    # the household's net consumption, shifted by the activation; within an ISP a
                    # household either imports or exports (its net power is constant there)
                    net = forecast_wh(asset, kind, t) + plan.shift_wh(asset, t)
                    signed = signer.sign_new(isp_start=t, sequence=n + 1, import_wh=max(net, 0), export_wh=max(-net, 0))
                    if disputed is not None and disputed.kept.offer.asset == asset and t == plan.disputed_isp:
                        kept_original = signed
                    while sent - sum(consumer.outcomes.values()) > 800:  # keep within what a broker queues
                        time.sleep(0.005)
                    publisher.publish(readings_topic(meter.address), signed.to_json(), qos=1)
                    sent += 1
                    progress.advance(task)
            modbus_sent = gateways.join(timeout=30)
            answers = gateways.answers()
            sent += modbus_sent
            deadline = time.time() + 60
            while sum(consumer.outcomes.values()) < sent and time.time() < deadline:
                time.sleep(0.05)
    finally:
        gateways.stop()
        publisher.loop_stop()
        publisher.disconnect()
        dispatcher_client.loop_stop()
        dispatcher_client.disconnect()
        consumer.stop()
        if broker is not None:
            broker.stop()
    fault: dict[str, Any] = {}
    if disputed is not None and kept_original is not None:
        delivered_wh = abs(disputed.shift_wh(plan.disputed_isp, 900))
        before, after = corrupt_stored_reading(engine, disputed.kept.meter, plan.disputed_isp, delivered_wh)
        fault = {"meter": disputed.kept.meter, "isp_start": plan.disputed_isp, "import_wh": before, "stored": after,
                 "signed": kept_original}
        console.print(f"[bold red]FAULT INJECTED (demo):[/] the oracle's stored reading of meter "
                      f"{disputed.kept.meter[:10]}… (asset {disputed.kept.offer.asset}) for "
                      f"{iso(plan.disputed_isp)[11:16]} is altered before anchoring, as a corrupted database would: "
                      f"import {before:,} Wh -> {after:,} Wh (its activation erased); the meter's signature of "
                      f"the true values stays beside it, and the prosumer's gateway kept the signed reading")
    rounds = anchor_due(engine, oracle, market, conn.latest_timestamp(), isp_seconds=900, grace=60)
    asset, meter, _kind = meters[0]
    proof = proof_for(engine, meter.address, day + ISPS[0] * 900)
    verified = oracle.verify_reading(
        market, proof["ispStart"], reading_in(proof).anchor,
        proof["meter"], proof["sequence"], proof["importWh"], proof["exportWh"], bytes.fromhex(proof["signature"][2:]),
        [bytes.fromhex(p[2:]) for p in proof["proof"]])
    stored = consumer.outcomes.get("stored", 0)
    modbus_addresses = {m.address.lower() for _a, m, _k in modbus}
    with session(engine) as s:
        modbus_stored = sum(1 for kept in s.scalars(select(StoredReading.meter)) if kept.lower() in modbus_addresses)
    console.print(f"{len(meters)} meters signed {sent} readings for {iso(day + ISPS[0] * 900)[11:16]}-"
                  f"{iso(day + ISPS[-1] * 900 + 900)[11:16]} and published them through the broker; the oracle kept "
                  f"{stored}, refused {sent - stored}, and anchored {len(rounds.anchored)} roots in MeterOracle")
    console.print(f"{len(modbus)} of the meters are SDM630s on Modbus TCP (pymodbus servers): their gateways ran the "
                  f"edge agent on accelerated time (an ISP every {SECONDS_PER_ISP} s), read the energy registers at "
                  f"each ISP boundary through its Modbus driver ({gateways.simulators.reads} Modbus requests) and "
                  f"published {modbus_sent} readings from their outboxes; the oracle kept {modbus_stored}")
    if dispatched:
        console.print(f"the dispatcher's {dispatched} signed activation order(s) for the gateways' assets went out over "
                      f"MQTT; each gateway checked the signature against MarketRegistry.dispatcher and the award against "
                      f"the final result on chain (isAwarded) before its device acted: "
                      + ", ".join(f"{n} {status}" for status, n in sorted(answers.items())))
    via = ", read over Modbus TCP" if meters[0] in modbus else ""
    console.print(f"the reading of meter {meter.address[:10]}… (asset {asset}{via}) at {iso(proof['ispStart'])[11:16]}: "
                  f"{proof['importWh']} Wh in, {proof['exportWh']} Wh out; its proof of {len(proof['proof'])} hashes "
                  f"checked by MeterOracle.verifyReading: {'valid' if verified else 'INVALID'}")
    return {"meters": len(meters), "readings": sent, "stored": stored, "roots": len(rounds.anchored),
            "modbus_meters": len(modbus), "modbus_readings": modbus_sent, "modbus_stored": modbus_stored,
            "proof_verified": bool(verified), "orders_dispatched": dispatched, "order_answers": answers, "fault_injected": bool(fault), "seconds": round(time.perf_counter() - started, 1),
            # for the settlement step: the oracle's store (its proofs) and the fault to dispute
            "store": engine, "fault": fault}
