"""The agent's configuration: one TOML file read into typed, frozen dataclasses.

A minimal simulated gateway::

    chain_id = 31337
    oracle_address = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
    isp_seconds = 900                 # optional, 900 by default
    state_dir = "state"               # outbox and sequence numbers; relative to this file
    override = false                  # the owner's switch: true = never act on orders
    mode = "production"               # or "development": only then is a raw private key accepted

    [meter]                           # exactly one of keystore, signer, private_key
    keystore = "meter-key.json"       # an Ethereum keystore (V3) file, encrypted
    password_env = "METER_KEY_PASSWORD"   # the environment variable holding its password
    # signer = "socket:/run/flexledger/meter.sock"   # an external signer (the key is not here);
    # address = "0x..."               # with signer: the meter's address, every signature checked
    # timeout_s = 5.0                 # with signer: how long to wait for an answer
    # private_key = "0x..."           # mode = "development" only (simulations)

    [broker]
    url = "mqtt://127.0.0.1:1883"     # or mqtts://host:8883 (TLS)
    # username = "gw-17"; password_env = "BROKER_PASSWORD" (or password = "...")
    # ca_file = "ca.pem"; cert_file = "client.pem"; key_file = "client.key"
    # client_id = "..."               # default: the username; without one, random per install
    #                                   (kept in <state_dir>/client-id)
    # receipts = true                 # keep a reading until the oracle's receipt on
    #                                   flexledger/v1/receipts/<meter>, not just the broker's PUBACK
    #                                   (false only for an oracle that sends none)
    # resend_s = 60; resend_max_s = 900   # re-send a reading without a receipt after resend_s,
    #                                   doubling up to resend_max_s
    # give_up_s = 604800                # a reading still without a receipt this long after it was
    #                                   signed is quarantined (with its reason), not re-sent for ever
    # receipts_keep_s = 691200          # the oracle's signed receipts are kept this long (claims)

    [driver]
    kind = "simulated"                # base_load_w, pv_peak_w, seed
    # kind = "modbus"                 # host, port = 502, unit_id = 1, timeout_s = 3.0

    [asset]                           # optional: a flexible asset that takes activation orders
    id = 7
    [asset.device]
    kind = "battery"                  # capacity_wh, max_power_w, initial_soc (0..1)
    # kind = "heat_pump"              # rated_power_w, baseline_w (default: half the rated power)

    [orders]                          # who may order the asset; without it every order is refused
    market = 1
    market_registry = "0x..."         # MarketRegistry: names the dispatcher, and the signing domain
    dispatcher = "0x..."              # the dispatcher the registry names (required without rpc_url)
    # rpc_url = "https://..."         # check each order's award on chain (then clearing_commitment too)
    # clearing_commitment = "0x..."; asset_registry = "0x..." (portfolio offers); block_tag = "finalized"
    # prequalified_up_w / prequalified_down_w (default: the device's ability)
    # horizon_s = 172800; max_isps = 96    # bounds on an order when no chain is asked

Every mistake raises :class:`ConfigError` with a message that names the file, the key and
what to write instead. Relative paths are relative to the configuration file.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

DEFAULT_ISP_SECONDS = 900
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_PRIVATE_KEY = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")
_UINT64_MAX = 2**64 - 1
_SOCKET_PATH_MAX = 107  # sun_path holds 108 bytes on Linux, the last one a NUL


class ConfigError(Exception):
    """The configuration cannot be used; the message says what to fix."""


@dataclass(frozen=True)
class MeterKeyConfig:
    """Where the meter's signatures come from: a keystore file, an external signer on a Unix socket
    (the key is elsewhere; ``address`` is the meter it must sign for), or a raw key (simulations)."""

    keystore: Path | None = None
    password_env: str | None = None
    private_key: str | None = None
    signer_socket: Path | None = None
    address: str | None = None
    timeout_s: float = 5.0

    def load_private_key(self) -> bytes:
        """The 32-byte key; reads the keystore and its password from the environment."""
        if self.signer_socket is not None:
            raise ConfigError(
                f"[meter] signer: the meter's key is in the external signer at {self.signer_socket}, not here; "
                "use it where the key is (the signer's host, with its keystore)"
            )
        if self.private_key is not None:
            return bytes.fromhex(self.private_key.removeprefix("0x"))
        assert self.keystore is not None and self.password_env is not None
        from eth_account import Account

        password = os.environ.get(self.password_env)
        if password is None:
            raise ConfigError(
                f"[meter] password_env: the environment variable {self.password_env} is not set; "
                "set it to the keystore's password"
            )
        try:
            text = self.keystore.read_text()
        except OSError as exc:
            raise ConfigError(f"[meter] keystore: cannot read {self.keystore}: {exc.strerror}") from exc
        try:
            key: bytes = Account.decrypt(text, password)
        except ValueError as exc:
            raise ConfigError(
                f"[meter] keystore: {self.keystore} cannot be decrypted ({exc}); "
                f"check the password in {self.password_env}"
            ) from exc
        return bytes(key)


@dataclass(frozen=True)
class BrokerConfig:
    """The MQTT broker the agent publishes to and takes orders from."""

    url: str
    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    client_id: str | None = None
    keepalive_s: int = 30
    # End-to-end acknowledgement: a reading leaves the outbox on the oracle's receipt, not the
    # broker's PUBACK (the broker accepting a reading does not mean the oracle stored it).
    receipts: bool = True
    resend_s: int = 60
    resend_max_s: int = 900
    give_up_s: int = 7 * 86_400
    receipts_keep_s: int = 8 * 86_400


@dataclass(frozen=True)
class OrdersConfig:
    """Who may order the asset (the market's dispatcher) and how an order is checked."""

    market: int
    market_registry: str
    dispatcher: str | None = None
    rpc_url: str | None = None
    clearing_commitment: str | None = None
    asset_registry: str | None = None
    block_tag: str = "latest"
    prequalified_up_w: int | None = None
    prequalified_down_w: int | None = None
    horizon_s: int = 2 * 86_400
    max_isps: int = 96


@dataclass(frozen=True)
class SimulatedDriverConfig:
    """A simulated meter: a daily household load with rooftop PV, plus seeded noise."""

    base_load_w: float = 400.0
    pv_peak_w: float = 0.0
    seed: int = 0
    kind: Literal["simulated"] = "simulated"


@dataclass(frozen=True)
class ModbusDriverConfig:
    """A Modbus TCP meter (Eastron SDM630-like register map)."""

    host: str
    port: int = 502
    unit_id: int = 1
    timeout_s: float = 3.0
    kind: Literal["modbus"] = "modbus"


DriverConfig = SimulatedDriverConfig | ModbusDriverConfig


@dataclass(frozen=True)
class BatteryConfig:
    """A simulated home battery."""

    capacity_wh: int
    max_power_w: int
    initial_soc: float = 0.5
    kind: Literal["battery"] = "battery"


@dataclass(frozen=True)
class HeatPumpConfig:
    """A simulated heat pump; it runs at ``baseline_w`` on average when left alone."""

    rated_power_w: int
    baseline_w: int
    kind: Literal["heat_pump"] = "heat_pump"


DeviceConfig = BatteryConfig | HeatPumpConfig


@dataclass(frozen=True)
class AssetConfig:
    """The flexible asset behind this meter, by its on-chain id, and the device that acts for it."""

    id: int
    device: DeviceConfig


@dataclass(frozen=True)
class AgentConfig:
    """Everything the agent needs, read from one file."""

    source: Path
    meter: MeterKeyConfig
    chain_id: int
    oracle_address: str
    broker: BrokerConfig
    state_dir: Path
    driver: DriverConfig
    isp_seconds: int = DEFAULT_ISP_SECONDS
    asset: AssetConfig | None = None
    override: bool = False
    orders: OrdersConfig | None = None
    mode: Literal["production", "development"] = "production"

    @property
    def override_file(self) -> Path:
        """The owner's switch as a file: while it exists, the agent acts on no order."""
        return self.state_dir / "override"

    @property
    def outbox_path(self) -> Path:
        return self.state_dir / "outbox.sqlite3"

    @property
    def orders_path(self) -> Path:
        """Answered orders and accepted activations, kept across restarts."""
        return self.state_dir / "orders.sqlite3"

    @property
    def unsigned_path(self) -> Path:
        """Measured ISPs waiting for their signature (the signer was unavailable)."""
        return self.state_dir / "unsigned.sqlite3"

    @property
    def status_path(self) -> Path:
        return self.state_dir / "status.json"

    @property
    def client_id_path(self) -> Path:
        return self.state_dir / "client-id"


class _Section:
    """Typed access to one TOML table, with errors that name the key and the file."""

    def __init__(self, data: dict[str, Any], name: str, source: Path) -> None:
        self.data = data
        self.name = name
        self.source = source
        self.used: set[str] = set()

    def where(self, key: str) -> str:
        return f"{self.name}.{key}" if self.name else key

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: {self.where(key)}: {message}")

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str) -> Any:
        self.used.add(key)
        return self.data.get(key)

    def get_int(self, key: str, default: int | None = None, *, minimum: int = 0, maximum: int = _UINT64_MAX) -> int:
        value = self.raw(key)
        if value is None:
            if default is None:
                raise self.error(key, "missing; write an integer")
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"must be an integer, not {value!r}")
        if not minimum <= value <= maximum:
            raise self.error(key, f"must be between {minimum} and {maximum}, not {value}")
        return value

    def get_number(self, key: str, default: float | None = None, *, minimum: float = 0.0, maximum: float = float("inf")) -> float:
        value = self.raw(key)
        if value is None:
            if default is None:
                raise self.error(key, "missing; write a number")
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, f"must be a number, not {value!r}")
        if not minimum <= value <= maximum:
            raise self.error(key, f"must be between {minimum} and {maximum}, not {value}")
        return float(value)

    def get_str(self, key: str, default: str | None = None, *, required: bool = True) -> str | None:
        value = self.raw(key)
        if value is None:
            if default is None and required:
                raise self.error(key, "missing; write a string")
            return default
        if not isinstance(value, str) or not value:
            raise self.error(key, f"must be a non-empty string, not {value!r}")
        return value

    def get_bool(self, key: str, default: bool) -> bool:
        value = self.raw(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, not {value!r}")
        return value

    def get_path(self, key: str, *, must_exist: bool, required: bool = False) -> Path | None:
        text = self.get_str(key, required=required)
        if text is None:
            return None
        path = Path(text).expanduser()
        if not path.is_absolute():
            path = self.source.parent / path
        if must_exist and not path.is_file():
            raise self.error(key, f"no such file: {path}")
        return path

    def get_table(self, key: str, *, required: bool) -> _Section | None:
        value = self.raw(key)
        if value is None:
            if required:
                raise ConfigError(f"{self.source}: the table [{self.where(key)}] is missing")
            return None
        if not isinstance(value, dict):
            raise self.error(key, "must be a table ([" + self.where(key) + "])")
        return _Section(value, self.where(key), self.source)

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            where = f"[{self.name}]" if self.name else "the top level"
            raise ConfigError(f"{self.source}: unknown key(s) in {where}: {', '.join(unknown)} (misspelt?)")


def load_config(path: str | os.PathLike[str]) -> AgentConfig:
    """Read and check the agent's TOML configuration file."""
    source = Path(path).expanduser().absolute()
    try:
        text = source.read_bytes()
    except FileNotFoundError as exc:
        raise ConfigError(f"{source}: no such configuration file") from exc
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read the configuration: {exc.strerror}") from exc
    try:
        data = tomllib.loads(text.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
    return parse_config(data, source)


def parse_config(data: dict[str, Any], source: Path) -> AgentConfig:
    """Check a configuration already parsed from TOML (``source`` anchors relative paths)."""
    top = _Section(data, "", source)
    chain_id = top.get_int("chain_id", minimum=1)
    oracle = top.get_str("oracle_address")
    assert oracle is not None
    if not _ADDRESS.match(oracle):
        raise top.error("oracle_address", f"must be a 0x-prefixed 20-byte hex address, not {oracle!r}")
    from eth_utils import to_checksum_address

    isp_seconds = top.get_int("isp_seconds", DEFAULT_ISP_SECONDS, minimum=1, maximum=86_400)
    if 86_400 % isp_seconds:
        raise top.error("isp_seconds", f"must divide a day (86400 s) evenly, not {isp_seconds}")
    state_dir_text = top.get_str("state_dir")
    assert state_dir_text is not None
    state_dir = Path(state_dir_text).expanduser()
    if not state_dir.is_absolute():
        state_dir = source.parent / state_dir
    override = top.get_bool("override", False)
    mode = top.get_str("mode", "production")
    if mode not in ("production", "development"):
        raise top.error("mode", f'must be "production" or "development", not {mode!r}')

    meter_section = top.get_table("meter", required=True)
    assert meter_section is not None
    meter = _parse_meter(meter_section, development=mode == "development")
    broker_section = top.get_table("broker", required=True)
    assert broker_section is not None
    broker = _parse_broker(broker_section)
    driver_section = top.get_table("driver", required=True)
    assert driver_section is not None
    driver = _parse_driver(driver_section)
    asset_section = top.get_table("asset", required=False)
    asset = _parse_asset(asset_section) if asset_section is not None else None
    orders_section = top.get_table("orders", required=False)
    orders = _parse_orders(orders_section) if orders_section is not None else None
    if orders is not None and asset is None:
        raise ConfigError(f"{source}: [orders] needs [asset] (the asset the orders are for)")
    top.finish()
    return AgentConfig(
        source=source,
        meter=meter,
        chain_id=chain_id,
        oracle_address=to_checksum_address(oracle),
        broker=broker,
        state_dir=state_dir,
        driver=driver,
        isp_seconds=isp_seconds,
        asset=asset,
        override=override,
        orders=orders,
        mode="development" if mode == "development" else "production",
    )


def _parse_meter(section: _Section, *, development: bool) -> MeterKeyConfig:
    sources = [key for key in ("keystore", "signer", "private_key") if section.has(key)]
    if len(sources) != 1:
        raise ConfigError(
            f"{section.source}: [meter] needs exactly one of keystore (with password_env), signer "
            f"(an external signer, with address) or private_key (simulations only), not {sources or 'none'}"
        )
    if sources == ["private_key"] and not development:
        # a key in clear text in a file on the gateway is one backup or copy away from anyone
        raise section.error(
            "private_key",
            "a raw private key is refused in production: name an encrypted keystore (keystore = \"...\" "
            "with password_env) or an external signer (signer = \"socket:/run/flexledger/meter.sock\" with "
            "address), or set mode = \"development\" at the top level for a simulation",
        )
    if sources == ["signer"]:
        return _parse_external_signer(section)
    for key in ("address", "timeout_s"):
        if section.has(key):
            raise section.error(key, "is read only with signer (an external signer); remove it")
    if sources == ["private_key"]:
        raw = section.get_str("private_key")
        assert raw is not None
        if not _PRIVATE_KEY.match(raw):
            raise section.error("private_key", "must be 32 bytes of hex (64 hex digits, 0x optional)")
        section.finish()
        return MeterKeyConfig(private_key=raw)
    keystore = section.get_path("keystore", must_exist=True, required=True)
    password_env = section.get_str("password_env")
    section.finish()
    return MeterKeyConfig(keystore=keystore, password_env=password_env)


def _parse_external_signer(section: _Section) -> MeterKeyConfig:
    from eth_utils import to_checksum_address

    text = section.get_str("signer")
    assert text is not None
    scheme, colon, rest = text.partition(":")
    if not colon or scheme != "socket" or not rest:
        raise section.error("signer", f'must be "socket:/path/to/signer.sock" (a Unix socket), not {text!r}')
    path = Path(rest).expanduser()
    if not path.is_absolute():
        path = section.source.parent / path
    if len(os.fsencode(path)) > _SOCKET_PATH_MAX:
        raise section.error("signer", f"the socket path {path} is longer than {_SOCKET_PATH_MAX} bytes "
                                      "(the limit of a Unix socket's address); choose a shorter one")
    address = section.get_str("address", required=False)
    if address is None:
        raise section.error("address", "missing: with signer, write the meter's address (address = \"0x...\"), "
                                       "so that every signature the signer returns is checked against it")
    if not _ADDRESS.match(address):
        raise section.error("address", f"must be a 0x-prefixed 20-byte hex address, not {address!r}")
    timeout = section.get_number("timeout_s", 5.0, minimum=0.1, maximum=60.0)
    for key in ("keystore", "password_env"):
        if section.has(key):
            raise section.error(key, "is not read with signer (the key is in the external signer); remove it")
    section.finish()
    return MeterKeyConfig(signer_socket=path, address=str(to_checksum_address(address)), timeout_s=timeout)


def _parse_broker(section: _Section) -> BrokerConfig:
    url = section.get_str("url")
    assert url is not None
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts"):
        raise section.error("url", f"must start with mqtt:// or mqtts://, not {url!r}")
    if not parts.hostname:
        raise section.error("url", f"names no host: {url!r} (write mqtt://host:1883)")
    try:
        port = parts.port
    except ValueError as exc:
        raise section.error("url", f"has a bad port: {url!r}") from exc
    tls = parts.scheme == "mqtts"
    username = section.get_str("username", required=False)
    if username is None and parts.username:
        username = unquote(parts.username)
    password = section.get_str("password", required=False)
    password_env = section.get_str("password_env", required=False)
    if password is not None and password_env is not None:
        raise section.error("password", "write either password or password_env, not both")
    if password_env is not None:
        password = os.environ.get(password_env)
        if password is None:
            raise section.error("password_env", f"the environment variable {password_env} is not set")
    if password is None and parts.password:
        password = unquote(parts.password)
    if password is not None and username is None:
        raise section.error("password", "a password needs a username")
    ca_file = section.get_path("ca_file", must_exist=True)
    cert_file = section.get_path("cert_file", must_exist=True)
    key_file = section.get_path("key_file", must_exist=True)
    if (ca_file or cert_file or key_file) and not tls:
        raise section.error("url", "TLS files are set but the URL is mqtt://; write mqtts:// to use TLS")
    if key_file is not None and cert_file is None:
        raise section.error("key_file", "a client key needs cert_file (the client certificate)")
    client_id = section.get_str("client_id", required=False)
    keepalive = section.get_int("keepalive_s", 30, minimum=5, maximum=3600)
    receipts = section.get_bool("receipts", True)
    resend_s = section.get_int("resend_s", 60, minimum=1, maximum=86_400)
    resend_max_s = section.get_int("resend_max_s", max(900, resend_s), minimum=resend_s, maximum=86_400)
    give_up_s = section.get_int("give_up_s", max(7 * 86_400, resend_max_s), minimum=resend_max_s, maximum=30 * 86_400)
    receipts_keep_s = section.get_int("receipts_keep_s", 8 * 86_400, minimum=86_400, maximum=366 * 86_400)
    section.finish()
    return BrokerConfig(
        url=url, host=parts.hostname, port=port or (8883 if tls else 1883), tls=tls,
        username=username, password=password, ca_file=ca_file, cert_file=cert_file,
        key_file=key_file, client_id=client_id, keepalive_s=keepalive,
        receipts=receipts, resend_s=resend_s, resend_max_s=resend_max_s, give_up_s=give_up_s,
        receipts_keep_s=receipts_keep_s,
    )


def _address(section: _Section, key: str, *, required: bool) -> str | None:
    from eth_utils import to_checksum_address

    text = section.get_str(key, required=required)
    if text is None:
        return None
    if not _ADDRESS.match(text):
        raise section.error(key, f"must be a 0x-prefixed 20-byte hex address, not {text!r}")
    return str(to_checksum_address(text))


def _parse_orders(section: _Section) -> OrdersConfig:
    market = section.get_int("market", minimum=1, maximum=2**32 - 1)
    registry = _address(section, "market_registry", required=True)
    assert registry is not None
    rpc_url = section.get_str("rpc_url", required=False)
    dispatcher = _address(section, "dispatcher", required=rpc_url is None)
    clearing = _address(section, "clearing_commitment", required=rpc_url is not None)
    assets = _address(section, "asset_registry", required=False)
    if rpc_url is not None and urlsplit(rpc_url).scheme not in ("http", "https"):
        raise section.error("rpc_url", f"must start with http:// or https://, not {rpc_url!r}")
    block_tag = section.get_str("block_tag", "latest")
    if block_tag not in ("latest", "safe", "finalized"):
        raise section.error("block_tag", f'must be "latest", "safe" or "finalized", not {block_tag!r}')
    up = section.get_int("prequalified_up_w", minimum=1, maximum=2**32 - 1) if section.has("prequalified_up_w") else None
    down = section.get_int("prequalified_down_w", minimum=1, maximum=2**32 - 1) \
        if section.has("prequalified_down_w") else None
    horizon = section.get_int("horizon_s", 2 * 86_400, minimum=1, maximum=7 * 86_400)
    max_isps = section.get_int("max_isps", 96, minimum=1, maximum=672)
    section.finish()
    return OrdersConfig(market=market, market_registry=registry, dispatcher=dispatcher, rpc_url=rpc_url,
                        clearing_commitment=clearing, asset_registry=assets, block_tag=str(block_tag),
                        prequalified_up_w=up, prequalified_down_w=down, horizon_s=horizon, max_isps=max_isps)


def _parse_driver(section: _Section) -> DriverConfig:
    kind = section.get_str("kind")
    driver: DriverConfig
    if kind == "simulated":
        driver = SimulatedDriverConfig(
            base_load_w=section.get_number("base_load_w", 400.0, maximum=1e7),
            pv_peak_w=section.get_number("pv_peak_w", 0.0, maximum=1e7),
            seed=section.get_int("seed", 0, maximum=2**63 - 1),
        )
    elif kind == "modbus":
        host = section.get_str("host")
        assert host is not None
        driver = ModbusDriverConfig(
            host=host,
            port=section.get_int("port", 502, minimum=1, maximum=65535),
            unit_id=section.get_int("unit_id", 1, minimum=0, maximum=247),
            timeout_s=section.get_number("timeout_s", 3.0, minimum=0.1, maximum=60.0),
        )
    else:
        raise section.error("kind", f'must be "simulated" or "modbus", not {kind!r}')
    section.finish()
    return driver


def _parse_asset(section: _Section) -> AssetConfig:
    asset_id = section.get_int("id")
    device_section = section.get_table("device", required=True)
    assert device_section is not None
    kind = device_section.get_str("kind")
    device: DeviceConfig
    if kind == "battery":
        device = BatteryConfig(
            capacity_wh=device_section.get_int("capacity_wh", minimum=1),
            max_power_w=device_section.get_int("max_power_w", minimum=1),
            initial_soc=device_section.get_number("initial_soc", 0.5, maximum=1.0),
        )
    elif kind == "heat_pump":
        rated = device_section.get_int("rated_power_w", minimum=1)
        baseline = device_section.get_int("baseline_w", rated // 2, maximum=rated)
        device = HeatPumpConfig(rated_power_w=rated, baseline_w=baseline)
    else:
        raise device_section.error("kind", f'must be "battery" or "heat_pump", not {kind!r}')
    device_section.finish()
    section.finish()
    return AssetConfig(id=asset_id, device=device)
