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


def test_an_unknown_key_names_its_file_and_the_setting_meant(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('rpc_ulr = "typo"\n')
    monkeypatch.setenv("FLEXLEDGER_CONFIG", str(path))
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert f"unknown setting 'rpc_ulr' in {path} (did you mean 'rpc_url'?)" in caught.value.message
    assert caught.value.hint is not None and "node_port" in caught.value.hint


def test_a_toml_syntax_error_names_the_file_and_the_place(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('rpc_url = "unclosed\n')
    monkeypatch.setenv("FLEXLEDGER_CONFIG", str(path))
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert f"the config file {path} is not valid TOML" in caught.value.message and "line 1" in caught.value.message


def test_a_bad_value_names_the_variable_to_correct(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEXLEDGER_NODE_PORT", "abc")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert "node_port" in caught.value.message
    assert caught.value.hint is not None and "FLEXLEDGER_NODE_PORT" in caught.value.hint


def test_a_sqlite_url_is_shown_whole(tmp_path: Path) -> None:
    public = load_settings(data_dir=tmp_path).public()
    assert public["database_url"] == f"sqlite:///{tmp_path / 'flexledger.db'}"
    assert public["node_port"] == 8545 and public["node_chain_id"] == 31337
