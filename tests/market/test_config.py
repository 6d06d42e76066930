"""Configuration: embedded defaults, environment over file, clear errors for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from flexledger.config import load_settings
from flexledger.errors import ConfigurationError


def test_embedded_defaults_need_no_configuration(tmp_path: Path) -> None:
    settings = load_settings()
    assert settings.embedded_chain
    assert settings.effective_database_url.startswith("sqlite:///")
    assert settings.mqtt_url is None
    assert settings.manifest_path == settings.data_dir / "manifest.json"


def test_environment_selects_production_services(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEXLEDGER_RPC_URL", "https://besu.grid.example:8545")
    monkeypatch.setenv("FLEXLEDGER_DATABASE_URL", "postgresql+psycopg://flex@db/flex")
    monkeypatch.setenv("FLEXLEDGER_MQTT_URL", "mqtts://broker.grid.example:8883")
    settings = load_settings()
    assert not settings.embedded_chain
    assert settings.effective_database_url == "postgresql+psycopg://flex@db/flex"
    assert settings.mqtt_url == "mqtts://broker.grid.example:8883"


def test_config_file_is_read_and_environment_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "flexledger.toml"
    path.write_text('rpc_url = "http://file.example:8545"\nnode_port = 9545\n')
    monkeypatch.setenv("FLEXLEDGER_CONFIG", str(path))
    assert load_settings().node_port == 9545
    assert load_settings().rpc_url == "http://file.example:8545"
    monkeypatch.setenv("FLEXLEDGER_RPC_URL", "http://env.example:8545")
    assert load_settings().rpc_url == "http://env.example:8545"


def test_bad_values_name_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEXLEDGER_MQTT_URL", "http://not-a-broker")
    with pytest.raises(ConfigurationError, match="mqtt_url"):
        load_settings()


def test_unknown_keys_in_the_file_are_errors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('rpc_ulr = "typo"\n')
    monkeypatch.setenv("FLEXLEDGER_CONFIG", str(path))
    with pytest.raises(ConfigurationError, match="rpc_ulr"):
        load_settings()


def test_a_missing_config_file_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FLEXLEDGER_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_settings()
