"""Configuration: embedded defaults with no setup at all, production by URLs.

Sources, strongest first: arguments given in code or on the command line, environment
variables (``FLEXLEDGER_*``), the TOML config file, then the defaults. The config file is
``$FLEXLEDGER_CONFIG`` (or ``flexledger --config``) if set, else
``~/.config/flexledger/config.toml`` if present. A ``./flexledger.toml`` in the current folder is
never read implicitly, and its presence unnamed is an error: a file in whatever folder a command
runs from could otherwise redirect the RPC URL and the manifest without a word.

The market's own parameters (ISP length, gate closure, windows...) are not configuration: they
are read from the chain, so every party sees the same ones.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from flexledger.errors import ConfigurationError
from flexledger.redaction import redact_url

if TYPE_CHECKING:
    from flexledger.chain.node import LocalNode


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "flexledger"


LOCAL_CONFIG = "flexledger.toml"


def config_file() -> Path | None:
    explicit = os.environ.get("FLEXLEDGER_CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigurationError(
                f"FLEXLEDGER_CONFIG names {path}, which does not exist",
                hint="create the file or unset FLEXLEDGER_CONFIG",
            )
        return path
    if Path(LOCAL_CONFIG).is_file():
        raise ConfigurationError(
            f"./{LOCAL_CONFIG} is in the current folder but not named: flexledger does not read a config file "
            "from wherever it runs (it could point the RPC URL and the manifest elsewhere)",
            hint=f"name it (`flexledger --config {LOCAL_CONFIG} ...` or FLEXLEDGER_CONFIG={LOCAL_CONFIG}), or move it away",
        )
    home = Path.home() / ".config" / "flexledger" / "config.toml"
    return home if home.is_file() else None


class Settings(BaseSettings):
    """Where flexledger keeps its data and which chain, database and broker it talks to."""

    model_config = SettingsConfigDict(env_prefix="FLEXLEDGER_", extra="forbid")

    data_dir: Path = Field(default_factory=default_data_dir, description="Local state: node, keys, SQLite.")
    rpc_url: str | None = Field(
        default=None, description="JSON-RPC URL of the chain; unset = the local anvil the CLI starts."
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; unset = SQLite under the data directory."
    )
    mqtt_url: str | None = Field(
        default=None, description="mqtt:// or mqtts:// broker URL; unset = the embedded local broker."
    )
    mqtt_client_id: str | None = Field(
        default=None, description="The oracle's MQTT client id; unset = a random one per data directory."
    )
    mqtt_share_group: str | None = Field(
        default=None, description="Consumers sharing the readings ($share/<group>/...); unset = one consumer.",
        pattern=r"^[A-Za-z0-9._-]+$",
    )
    mqtt_ca_file: Path | None = Field(default=None, description="CA certificate(s) of an mqtts:// broker.")
    mqtt_cert_file: Path | None = Field(default=None, description="The oracle's TLS client certificate (PEM).")
    mqtt_key_file: Path | None = Field(default=None, description="The key of the oracle's TLS client certificate.")
    manifest: Path | None = Field(default=None, description="Deployment manifest; unset = <data dir>/manifest.json.")
    keystore_dir: Path | None = Field(default=None, description="Encrypted keystores; unset = <data dir>/keys.")
    node_port: int = Field(default=8545, ge=1, le=65535, description="Preferred port of the local anvil.")
    node_chain_id: int = Field(default=31337, ge=1, description="Chain id of the local anvil.")
    rpc_timeout: float = Field(default=30.0, gt=0)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = config_file()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    @field_validator("rpc_url", "database_url", "mqtt_url", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("mqtt_url")
    @classmethod
    def _mqtt_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("mqtt://", "mqtts://", "ws://", "wss://")):
            raise ValueError("mqtt_url must start with mqtt://, mqtts://, ws:// or wss://")
        return value

    @property
    def embedded_chain(self) -> bool:
        return self.rpc_url is None

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'flexledger.db'}"

    def local_node(self) -> LocalNode:
        """The embedded anvil these settings describe (its folder, port and chain id)."""
        from flexledger.chain.node import LocalNode

        return LocalNode(self.data_dir, port=self.node_port, chain_id=self.node_chain_id)

    @property
    def manifest_path(self) -> Path:
        return self.manifest or self.data_dir / "manifest.json"

    @property
    def keys_path(self) -> Path:
        return self.keystore_dir or self.data_dir / "keys"

    def public(self) -> dict[str, Any]:
        """What may be printed: every setting, each URL without its secrets (password, API key)."""
        return {
            "data_dir": str(self.data_dir),
            "rpc_url": redact_url(self.rpc_url) if self.rpc_url else "(embedded anvil)",
            "database_url": redact_url(self.effective_database_url),
            "mqtt_url": redact_url(self.mqtt_url) if self.mqtt_url else "(embedded broker)",
            "mqtt_client_id": self.mqtt_client_id or "(random per data directory)",
            "mqtt_share_group": self.mqtt_share_group or "(none: one consumer)",
            "mqtt_tls_files": ", ".join(str(f) for f in (self.mqtt_ca_file, self.mqtt_cert_file, self.mqtt_key_file)
                                        if f) or "(none)",
            "manifest": str(self.manifest_path),
            "keystore_dir": str(self.keys_path),
            "node_port": self.node_port,
            "node_chain_id": self.node_chain_id,
            "rpc_timeout": self.rpc_timeout,
            "config_file": str(config_file() or "(none)"),
        }


def load_settings(**overrides: Any) -> Settings:
    """Settings from every source; a bad value is a :class:`ConfigurationError` that names it, and
    the file it came from."""
    import difflib
    import tomllib

    from pydantic import ValidationError

    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(
            f"the config file {config_file()} is not valid TOML: {exc}",
            hint="fix the line and column named (strings in double quotes, one `key = value` a line), "
                 "or name another file with --config / FLEXLEDGER_CONFIG",
        ) from None
    except ValidationError as exc:
        source = config_file()
        where = f" in {source}" if source else ""
        problems, hints = [], []
        for error in exc.errors():
            key = ".".join(map(str, error["loc"]))
            if error["type"] == "extra_forbidden":
                close = difflib.get_close_matches(key, Settings.model_fields, n=1)
                problems.append(f"unknown setting {key!r}{where}" + (f" (did you mean {close[0]!r}?)" if close else ""))
            else:
                problems.append(f"{key}: {error['msg']}")
                hints.append(f"FLEXLEDGER_{key.upper()}" + (f" or `{key}`{where}" if source else ""))
        known = ", ".join(Settings.model_fields)
        raise ConfigurationError(
            "invalid configuration: " + "; ".join(problems),
            hint=(f"correct {', '.join(hints)}" if hints else f"the settings are: {known}")
                 + ("" if not hints else f" (the settings are: {known})"),
        ) from None
