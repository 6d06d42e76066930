"""The agent's loop: at each ISP boundary read the meter, sign, store, publish; take orders.

At every ISP boundary (UTC multiples of ``isp_seconds``) the agent

1. reads the meter's cumulative registers and turns the last ISP into its energy
   (:mod:`flexledger_edge.metering`);
2. keeps the ISP's energy on disk until it is signed (:mod:`flexledger_edge.unsigned`), then has
   the meter's signer (:mod:`flexledger_edge.signer`: its key, or an external signer) sign a
   Reading under the next sequence number and stores it in the outbox in the same transaction
   (:mod:`flexledger_edge.outbox`); while the signer is unavailable, the ISPs wait and are
   signed, in order, as soon as it answers (tried again every ``SIGN_RETRY_S``);
3. lets the publisher, running in its own thread, send it to the broker; rows leave the
   outbox on the oracle's receipt for that reading (or on the broker's PUBACK with
   ``receipts = false``), and are sent again while none comes (:mod:`flexledger_edge.publisher`);
4. starts the device's part of any accepted activation for the ISP that begins now, unless
   the owner's override is on (:mod:`flexledger_edge.devices`).

Activation orders for the configured asset are answered as they arrive
(:mod:`flexledger_edge.orders`).
"""

from __future__ import annotations

import json
import logging
import math
import os
import secrets
import threading
from pathlib import Path

from .activation import RegistryDomain
from .chainview import JsonRpcChain
from .clock import Clock
from .config import AgentConfig, DriverConfig, ModbusDriverConfig, SimulatedDriverConfig
from .devices import FlexDevice, build_device
from .drivers import DriverError, MeterDriver
from .drivers.simulated import LoadProfile, SimulatedMeter
from .metering import IspEnergyTracker
from .orders import OrderHandler, OrderPolicy
from .outbox import Outbox
from .publisher import Backoff, ReadingPublisher, ResendPolicy, SessionFactory, paho_factory
from .reading import OracleDomain, SignedReading
from .signer import build_signer
from .topics import acks_topic, orders_topic, receipts_topic
from .unsigned import UnsignedQueue, sign_waiting

log = logging.getLogger(__name__)

SIGN_RETRY_S = 30.0  # the agent's clock seconds between attempts while readings wait for the signer


def build_driver(config: DriverConfig, isp_seconds: int, device: FlexDevice | None) -> MeterDriver:
    """The meter driver a configuration describes; a simulated meter also sees the simulated device."""
    if isinstance(config, SimulatedDriverConfig):
        profile = LoadProfile(config.base_load_w, config.pv_peak_w, config.seed)
        return SimulatedMeter(profile, isp_seconds, extra_power_w=device.power_during if device else None)
    if isinstance(config, ModbusDriverConfig):
        from .drivers.modbus import ModbusMeter

        return ModbusMeter(config.host, config.port, config.unit_id, config.timeout_s)
    raise TypeError(f"unknown driver configuration {config!r}")


def install_client_id(path: Path) -> str:
    """This install's MQTT client id: random, made once and kept in the state directory.

    A client id anyone can guess (the meter's address) lets anyone's CONNECT with a clean
    session wipe the agent's persistent session and the orders waiting in it.
    """
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        text = ""
    if text:
        return text
    client_id = f"flexledger-edge-{secrets.token_hex(12)}"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(client_id + "\n")
    return client_id


def build_policy(config: AgentConfig, device: FlexDevice) -> OrderPolicy | None:
    """Who may order the configured asset; None when no dispatcher is configured (no orders taken)."""
    orders = config.orders
    if orders is None:
        return None
    chain = None
    domain: RegistryDomain | None = RegistryDomain(config.chain_id, orders.market_registry)
    if orders.rpc_url is not None:
        assert orders.clearing_commitment is not None
        chain = JsonRpcChain(orders.rpc_url, market_registry=orders.market_registry,
                             clearing_commitment=orders.clearing_commitment, asset_registry=orders.asset_registry,
                             block_tag=orders.block_tag)
        domain = None  # read from the registry itself (ERC-5267)
    from .devices import Direction

    return OrderPolicy(
        market=orders.market, domain=domain, dispatcher=orders.dispatcher, chain=chain,
        prequalified_up_w=orders.prequalified_up_w or device.max_power_w(Direction.UP),
        prequalified_down_w=orders.prequalified_down_w or device.max_power_w(Direction.DOWN),
        horizon_s=orders.horizon_s, max_isps=orders.max_isps,
    )


class EdgeAgent:
    """One gateway: one meter, optionally one flexible asset."""

    def __init__(
        self,
        config: AgentConfig,
        clock: Clock,
        *,
        driver: MeterDriver | None = None,
        session_factory: SessionFactory | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.isp_seconds = config.isp_seconds
        self.signer = build_signer(config.meter, OracleDomain(config.chain_id, config.oracle_address))
        self.meter = self.signer.address
        self.unsigned = UnsignedQueue(config.unsigned_path)
        self.signed_count = 0
        self.device: FlexDevice | None = build_device(config.asset.device) if config.asset else None
        self.driver = driver or build_driver(config.driver, config.isp_seconds, self.device)
        self.tracker = IspEnergyTracker(config.isp_seconds)
        self.outbox = Outbox(config.outbox_path, isp_seconds=config.isp_seconds,
                             receipts_keep_s=config.broker.receipts_keep_s)
        # a broker that authenticates binds the session to the user: the id is the user name there;
        # an anonymous one must not be handed a guessable id (anyone could take the session over)
        self.client_id = config.broker.client_id or config.broker.username or install_client_id(config.client_id_path)
        broker = config.broker
        resend = ResendPolicy(broker.resend_s, broker.resend_max_s, broker.give_up_s) if broker.receipts else None
        self.publisher = ReadingPublisher(self.outbox, session_factory or paho_factory(broker, self.client_id),
                                          backoff=backoff, receipts=resend, wall=clock.now)
        if resend is not None:
            self.publisher.subscribe(receipts_topic(self.meter), self.publisher.on_receipt)
        self.orders: OrderHandler | None = None
        self.left_in_outbox = 0
        if config.asset is not None and self.device is not None:
            self.orders = OrderHandler(
                config.asset.id, self.device, config.isp_seconds,
                clock=clock.now, override_active=self.override_reason,
                policy=build_policy(config, self.device), log_path=config.orders_path,
            )
            self.publisher.subscribe(orders_topic(config.asset.id), self._on_order)

    def write_status(self) -> dict[str, object]:
        """Write what the publisher reports (``<state_dir>/status.json``, read by ``flexledger-edge
        status``): a gateway whose receipts are ``refused`` or ``silent`` says so there, not only in
        its log."""
        status = {"meter": self.meter, **self.publisher.status(), "at": int(self.clock.now())}
        try:
            tmp = self.config.status_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(status, indent=1))
            tmp.replace(self.config.status_path)
        except OSError as exc:
            log.warning("cannot write the status file %s: %s", self.config.status_path, exc)
        return status

    def override_reason(self) -> str | None:
        """Why the owner's override is on (config flag or override file), or None."""
        if self.config.override:
            return "owner override: override = true in the configuration"
        if self.config.override_file.exists():
            return f"owner override: {self.config.override_file} exists"
        return None

    def _on_order(self, topic: str, payload: bytes) -> None:
        assert self.orders is not None and self.config.asset is not None
        ack = self.orders.handle(payload)
        self.publisher.publish_now(acks_topic(self.config.asset.id), ack.to_json())

    def at_boundary(self, boundary: int) -> SignedReading | None:
        """Everything due at one ISP boundary; the last reading signed and stored, if any (readings
        that waited for the signer are signed first)."""
        try:
            snapshot = self.driver.read(boundary)
        except DriverError as exc:
            log.error("meter read at %d failed: %s; no reading for this ISP or the next", boundary, exc)
            self.tracker.reset()
        else:
            energy = self.tracker.at_boundary(boundary, snapshot)
            if energy is not None:
                self.unsigned.add(self.meter, energy, self.clock.now())
        done = self.sign_waiting()
        if self.device is not None:
            self.device.begin_isp(boundary, self.isp_seconds, override=self.override_reason() is not None)
        return done[-1] if done else None

    def sign_waiting(self) -> list[SignedReading]:
        """Sign and store the measured ISPs still waiting for their signature, oldest first."""
        done = sign_waiting(self.unsigned, self.outbox, self.signer, self.clock.now())
        for signed in done:
            r = signed.reading
            log.info("reading %d: ISP %d import %d Wh export %d Wh (%d waiting for the broker)",
                     r.sequence, r.isp_start, r.import_wh, r.export_wh, self.outbox.count())
        self.signed_count += len(done)
        return done

    def run(self, *, isps: int | None = None, stop: threading.Event | None = None, drain_s: float = 10.0) -> int:
        """Run until ``stop`` is set, or until ``isps`` ISPs were measured; the number of readings signed.

        Before returning, the publisher gets up to ``drain_s`` seconds to empty the outbox;
        whatever is left is sent on the next start.
        """
        stop = stop or threading.Event()
        publisher_stop = threading.Event()
        thread = threading.Thread(target=self.publisher.run, args=(publisher_stop,), name="publisher", daemon=True)
        thread.start()
        signed_before = self.signed_count
        boundaries = 0
        boundary = math.ceil(self.clock.now() / self.isp_seconds) * self.isp_seconds
        log.info("meter %s; first ISP boundary at %d", self.meter, boundary)
        try:
            while True:
                # readings waiting for the signer are tried again between boundaries too
                wake = min(boundary, self.clock.now() + SIGN_RETRY_S) if self.unsigned.count() else boundary
                if not self.clock.wait_until(wake, stop):
                    break
                if wake < boundary:
                    self.sign_waiting()
                    continue
                self.at_boundary(boundary)
                self.write_status()
                boundaries += 1
                if isps is not None and boundaries > isps:
                    break
                boundary += self.isp_seconds
        finally:
            publisher_stop.set()
            thread.join()
            if drain_s > 0 and not self.publisher.drain(drain_s):
                log.warning("%d reading(s) not yet acknowledged; they stay in %s", self.outbox.count(), self.outbox.path)
            self.left_in_outbox = self.outbox.count()
            self.write_status()
            self.publisher.close()
            self.driver.close()
            self.outbox.close()
            self.unsigned.close()
            if self.orders is not None:
                self.orders.close()
        return self.signed_count - signed_before

