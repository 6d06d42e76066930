"""The API tests' world (tests/backend/api/): a deployed market with an aggregator, a DSO and two
prosumers with assets, and the app's client with signing in by wallet."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from fastapi.testclient import TestClient

from flexledger.api.settings import ApiSettings
from flexledger.api.siwe import SiweMessage, format_time
from flexledger.book.order_book import SignedOffer
from flexledger.chain.connection import ChainConnection
from flexledger.chain.manifest import Manifest
from flexledger.chain.transactions import Signer
from flexledger.deployment import Deployment
from flexledger.rules.orders import BaselineMethod, Mode, Offer


@dataclass
class Market:
    """The chain's side: an aggregator (the relay's key), a DSO, two prosumers, assets of 10 kW."""

    conn: ChainConnection
    manifest: Manifest
    deployer: Signer
    aggregator: Signer
    dso: Signer
    owner: LocalAccount  # a prosumer with two assets (active, second)
    owner2: LocalAccount  # a prosumer with one asset (theirs)
    market: int
    day: int
    active: int
    second: int
    theirs: int

    @property
    def deployment(self) -> Deployment:
        return Deployment(self.conn, self.manifest, self.aggregator)

    def offer(self, **changes: Any) -> Offer:
        base = Offer(market=self.market, asset=self.active, portfolio=0, start=self.day + 68 * 900, isps=4,
                     direction=0, power_w=5000, price=15_000, mode=Mode.DIVISIBLE, min_power_w=0,
                     baseline_method=BaselineMethod.COMMITTED, baseline=keccak(text="baseline"),
                     expiry=self.conn.latest_timestamp() + 86_400, nonce=1)
        return replace(base, **changes)

    def signed(self, offer: Offer, key: LocalAccount | None = None) -> SignedOffer:
        return SignedOffer(offer, offer.sign(key or self.owner, self.deployment.book_domain))

    def wire(self, signed: SignedOffer) -> dict[str, Any]:
        """As `flexledger offer sign` writes it."""
        return {"typedData": signed.offer.typed(self.deployment.book_domain).to_json(),
                "signature": "0x" + signed.signature.hex()}


@dataclass
class Api:
    client: TestClient
    chain: Market
    settings: ApiSettings
    database_url: str

    def sign_in(self, account: LocalAccount, **changes: Any) -> str:
        """A session token for ``account`` (EIP-4361 through the API)."""
        response = self.client.post("/v1/auth/login", json=self.login_body(account, **changes))
        assert response.status_code == 200, response.text
        token: str = response.json()["token"]
        return token

    def login_body(self, account: LocalAccount, *, key: LocalAccount | None = None, nonce: str | None = None,
                   **changes: Any) -> dict[str, str]:
        issued = self.client.post("/v1/auth/nonce").json()
        now = dt.datetime.now(dt.UTC)
        fields: dict[str, Any] = {
            "domain": issued["domain"], "address": account.address, "uri": issued["uri"], "chain_id": issued["chainId"],
            "nonce": nonce or issued["nonce"], "issued_at": format_time(now), "statement": "Sign in to flexledger",
            "expiration_time": format_time(now + dt.timedelta(minutes=5)), **changes}
        text = SiweMessage(**fields).to_text()
        signature = Account.sign_message(encode_defunct(text=text), (key or account).key).signature
        return {"message": text, "signature": "0x" + bytes(signature).hex()}

    def auth(self, account: LocalAccount) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.sign_in(account)}"}


PROBLEM = "application/problem+json"


def assert_problem(response: Any, status: int, **members: Any) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["type"].startswith("urn:flexledger:problem:") and body["detail"]
    for name, value in members.items():
        assert body[name] == value, body
    return body
