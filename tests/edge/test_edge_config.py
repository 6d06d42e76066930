"""Configuration: a good file is read into typed settings; each mistake says what to fix."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from flexledger_edge.config import (
    BatteryConfig,
    ConfigError,
    HeatPumpConfig,
    ModbusDriverConfig,
    SimulatedDriverConfig,
    load_config,
)

ORACLE = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
KEY = "0x" + "4c" * 32


ASSET = {"id": 7, "device": {"kind": "battery", "capacity_wh": 10_000, "max_power_w": 5_000}}


def _config(**over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "chain_id": 31337,
        "oracle_address": ORACLE.lower(),
        "mode": "development",
        "state_dir": "state",
        "meter": {"private_key": KEY},
        "broker": {"url": "mqtt://broker.local:1883"},
        "driver": {"kind": "simulated", "base_load_w": 500, "pv_peak_w": 3000, "seed": 7},
    }
    data.update(over)
    return data


def test_a_simulated_config(write_config: Callable[..., Path], tmp_path: Path) -> None:
    data = _config(asset={"id": 7, "device": {"kind": "battery", "capacity_wh": 10_000, "max_power_w": 5_000}})
    config = load_config(write_config(data))
    assert config.chain_id == 31337 and config.oracle_address == ORACLE  # checksummed
    assert config.isp_seconds == 900 and config.override is False
    assert config.state_dir == tmp_path / "state"
    assert config.override_file == tmp_path / "state" / "override"
    assert config.broker.host == "broker.local" and config.broker.port == 1883 and not config.broker.tls
    assert config.driver == SimulatedDriverConfig(500.0, 3000.0, 7)
    assert config.asset is not None and config.asset.device == BatteryConfig(10_000, 5_000, 0.5)
    assert config.meter.load_private_key() == bytes.fromhex(KEY[2:])


def test_a_modbus_tls_keystore_config(
    write_config: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = Account.create()
    (tmp_path / "meter.json").write_text(json.dumps(Account.encrypt(account.key, "s3cret", iterations=2)))
    (tmp_path / "ca.pem").write_text("x")
    monkeypatch.setenv("METER_PW", "s3cret")
    monkeypatch.setenv("BROKER_PW", "b-pw")
    data = _config(
        isp_seconds=300,
        override=True,
        meter={"keystore": "meter.json", "password_env": "METER_PW"},
        broker={"url": "mqtts://mq.example:8883", "username": "gw", "password_env": "BROKER_PW", "ca_file": "ca.pem"},
        driver={"kind": "modbus", "host": "10.0.0.5", "unit_id": 2},
        asset={"id": 3, "device": {"kind": "heat_pump", "rated_power_w": 3000}},
    )
    config = load_config(write_config(data))
    assert config.isp_seconds == 300 and config.override
    assert config.broker.tls and config.broker.port == 8883 and config.broker.ca_file == tmp_path / "ca.pem"
    assert (config.broker.username, config.broker.password) == ("gw", "b-pw")
    assert config.driver == ModbusDriverConfig("10.0.0.5", 502, 2, 3.0)
    assert config.asset is not None and config.asset.device == HeatPumpConfig(3000, 1500)
    assert config.meter.load_private_key() == bytes(account.key)
    monkeypatch.setenv("METER_PW", "wrong")
    with pytest.raises(ConfigError, match="cannot be decrypted"):
        config.meter.load_private_key()
    monkeypatch.delenv("METER_PW")
    with pytest.raises(ConfigError, match="METER_PW is not set"):
        config.meter.load_private_key()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"chain_id": None}, "chain_id: missing"),
        ({"chain_id": "1"}, "chain_id: must be an integer"),
        ({"oracle_address": "0x1234"}, "oracle_address: must be a 0x-prefixed 20-byte hex address"),
        ({"isp_seconds": 7}, "must divide a day"),
        ({"colour": "red"}, "unknown key(s) in the top level: colour"),
        ({"meter": None}, "[meter] is missing"),
        ({"meter": {"private_key": KEY, "keystore": "k.json"}}, "exactly one of keystore"),
        ({"meter": {"private_key": "0x12"}}, "32 bytes of hex"),
        ({"meter": {"keystore": "missing.json", "password_env": "X"}}, "no such file"),
        ({"broker": {"url": "http://x:1883"}}, "mqtt:// or mqtts://"),
        ({"broker": {"url": "mqtt://"}}, "names no host"),
        ({"broker": {"url": "mqtt://h:1883", "password": "p"}}, "a password needs a username"),
        ({"broker": {"url": "mqtt://h:1883", "username": "u", "password_env": "NOPE_UNSET"}}, "NOPE_UNSET is not set"),
        ({"broker": {"url": "mqtt://h:1883", "ca_file": "agent.toml"}}, "write mqtts://"),
        ({"driver": {"kind": "serial"}}, 'must be "simulated" or "modbus"'),
        ({"driver": {"kind": "modbus"}}, "driver.host: missing"),
        ({"driver": {"kind": "modbus", "host": "h", "port": 70000}}, "between 1 and 65535"),
        ({"driver": {"kind": "simulated", "base_load": 5}}, "unknown key(s) in [driver]: base_load"),
        ({"asset": {"id": 1}}, "[asset.device] is missing"),
        ({"asset": {"id": 1, "device": {"kind": "ev"}}}, 'must be "battery" or "heat_pump"'),
        ({"asset": {"id": 1, "device": {"kind": "battery", "capacity_wh": 1, "max_power_w": 1, "initial_soc": 2}}}, "initial_soc"),
        ({"override": "yes"}, "override: must be true or false"),
        ({"mode": "prod"}, 'mode: must be "production" or "development"'),
        ({"orders": {"market": 1, "market_registry": ORACLE, "dispatcher": ORACLE}}, "[orders] needs [asset]"),
        ({"asset": ASSET, "orders": {"market": 1, "market_registry": ORACLE}}, "orders.dispatcher: missing"),
        ({"asset": ASSET, "orders": {"market": 1, "market_registry": "0x12", "dispatcher": ORACLE}}, "20-byte hex"),
        ({"asset": ASSET, "orders": {"market": 1, "market_registry": ORACLE, "rpc_url": "http://n:8545"}},
         "orders.clearing_commitment: missing"),
        ({"asset": ASSET, "orders": {"market": 1, "market_registry": ORACLE, "rpc_url": "ws://n",
                                     "clearing_commitment": ORACLE}}, "http:// or https://"),
        ({"asset": ASSET, "orders": {"market": 1, "market_registry": ORACLE, "dispatcher": ORACLE, "max_isps": 1000}},
         "orders.max_isps: must be between 1 and 672"),
    ],
)
def test_config_errors_say_what_to_fix(write_config: Callable[..., Path], change: dict[str, Any], message: str) -> None:
    data = _config()
    for key, value in change.items():
        if value is None:
            data.pop(key)
        else:
            data[key] = value
    with pytest.raises(ConfigError) as info:
        load_config(write_config(data))
    assert message in str(info.value)
    assert "agent.toml" in str(info.value)


def test_missing_and_unparsable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("chain_id = = 3\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def test_a_raw_private_key_is_refused_in_production(write_config: Callable[..., Path]) -> None:
    """Also seen (issue 17): a production agent must name an encrypted keystore, not a raw key."""
    data = _config()
    data.pop("mode")  # production is the default
    with pytest.raises(ConfigError) as info:
        load_config(write_config(data))
    assert "a raw private key is refused in production" in str(info.value)
    assert "keystore" in str(info.value) and 'mode = "development"' in str(info.value)
    data["mode"] = "production"
    with pytest.raises(ConfigError, match="refused in production"):
        load_config(write_config(data))


def test_orders_config(write_config: Callable[..., Path]) -> None:
    data = _config(asset=ASSET, orders={"market": 2, "market_registry": ORACLE.lower(), "rpc_url": "http://n:8545",
                                        "clearing_commitment": ORACLE, "block_tag": "finalized",
                                        "prequalified_up_w": 3000})
    orders = load_config(write_config(data)).orders
    assert orders is not None and orders.market == 2 and orders.market_registry == ORACLE
    assert orders.dispatcher is None and orders.block_tag == "finalized" and orders.prequalified_up_w == 3000
    assert orders.prequalified_down_w is None and (orders.horizon_s, orders.max_isps) == (2 * 86_400, 96)


def test_receipts_are_on_by_default_and_the_resend_interval_is_bounded(write_config: Callable[..., Path]) -> None:
    broker = load_config(write_config()).broker
    assert (broker.receipts, broker.resend_s, broker.resend_max_s) == (True, 60, 900)
    off = load_config(write_config(broker={"url": "mqtt://127.0.0.1:1", "receipts": False})).broker
    assert not off.receipts
    tuned = load_config(write_config(broker={"url": "mqtt://127.0.0.1:1", "resend_s": 5, "resend_max_s": 30})).broker
    assert (tuned.resend_s, tuned.resend_max_s) == (5, 30)
    with pytest.raises(ConfigError, match="resend_s"):
        load_config(write_config(broker={"url": "mqtt://127.0.0.1:1", "resend_s": 0}))
    with pytest.raises(ConfigError, match="resend_max_s"):
        load_config(write_config(broker={"url": "mqtt://127.0.0.1:1", "resend_s": 60, "resend_max_s": 10}))
