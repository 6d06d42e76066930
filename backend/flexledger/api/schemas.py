"""The API's request and response bodies (pydantic), apart from the tables they are read from."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

HEX = r"^0x[0-9a-fA-F]*$"


class Schema(BaseModel):
    """camelCase on the wire (as wallets and the CLI's JSON spell things), snake_case in Python."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class NonceOut(Schema):
    nonce: str
    expires_at: int = Field(description="Unix seconds after which the nonce is refused.")
    domain: str = Field(description="The domain the sign-in message must name.")
    uri: str = Field(description="The URI the sign-in message must name.")
    chain_id: int


class LoginIn(Schema):
    message: str = Field(max_length=8192, description="The EIP-4361 message, as signed.")
    signature: str = Field(pattern=HEX, max_length=2048, description="personal_sign of the message (EOA), or "
                                                                     "what the ERC-1271 wallet accepts.")


class TokenOut(Schema):
    token: str
    token_type: str = "Bearer"
    expires_at: int
    address: str


class MeOut(Schema):
    address: str
    roles: list[str] = Field(description="The market roles the address holds now (RoleRegistry).")
    by_key: bool


class KeyIn(Schema):
    # printable: PostgreSQL's text refuses NUL (the fuzz found it: a 500), and a label is for people
    label: str = Field("", max_length=100, pattern=r"^[^\x00-\x1f\x7f]*$")


class KeyOut(Schema):
    id: int
    prefix: str = Field(description="The key's first characters, to tell keys apart.")
    label: str
    created_at: int
    revoked_at: int | None


class KeyCreated(KeyOut):
    key: str = Field(description="The key itself: shown this once, stored only hashed.")


class SignedOfferIn(BaseModel):
    """A signed offer as `flexledger offer sign` writes it."""

    model_config = ConfigDict(extra="forbid")

    typedData: dict[str, Any] = Field(description="The eth_signTypedData_v4 payload of the Offer.")  # noqa: N815
    signature: str = Field(pattern=HEX, max_length=200)


class OfferOut(Schema):
    digest: str
    status: str = Field(description="queued, sending, sent, accepted or skipped.")
    signer: str
    market: int
    subject: str
    nonce: int
    tx_hash: str | None
    reason: str | None = Field(description="For a skipped offer: the OrderBook's custom error.")


class OffersQueued(Schema):
    offers: list[OfferOut]
