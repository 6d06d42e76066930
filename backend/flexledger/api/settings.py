"""The API server's own settings (``FLEXLEDGER_API_*``), apart from the market's (chain, database,
keys: :mod:`flexledger.config`), which the server reads as every command does."""

from __future__ import annotations

import secrets

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiSettings(BaseSettings):
    """What binds sign-ins to this server, how long they last, and what a request may carry."""

    model_config = SettingsConfigDict(env_prefix="FLEXLEDGER_API_", extra="forbid")

    # EIP-4361: a wallet signs for a domain and URI; a message for any other is refused
    domain: str = Field(default="127.0.0.1:8000", description="The host[:port] sign-in messages must name.")
    uri: str = Field(default="http://127.0.0.1:8000", description="The URI sign-in messages must name.")
    # a random secret per process unless set: tokens then die with the process, which is safe
    secret: SecretStr = Field(default_factory=lambda: SecretStr(secrets.token_hex(32)),
                              description="HMAC key of the session tokens.")
    token_seconds: int = Field(default=900, gt=0, description="How long a session token lives.")
    nonce_seconds: int = Field(default=300, gt=0, description="How long an issued sign-in nonce may be used.")
    max_body_bytes: int = Field(default=4_000_000, gt=0, description="Larger request bodies are refused (413).")
    max_offers: int = Field(default=1_000, gt=0, description="Offers one POST /v1/offers may carry.")
    relay_batch: int = Field(default=200, gt=0, le=200, description="Offers per submitOffers transaction.")
    relay_interval: float = Field(default=0.5, gt=0, description="Seconds the relayer waits when the queue is empty.")
    database_url: str | None = Field(default=None, description="The backend's database (default: the market settings').")
