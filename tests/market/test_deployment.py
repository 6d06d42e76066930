"""The Deployment: a client for every contract of the manifest, each market's parameters read once,
and the market-day arithmetic the rules define."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from unittest.mock import patch

import pytest
from chain_world import create_market

from flexledger.chain.bindings import SettlementTokenClient
from flexledger.chain.connection import ChainConnection
from flexledger.chain.errors import ManifestError
from flexledger.chain.manifest import Manifest
from flexledger.chain.transactions import Signer
from flexledger.deployment import CLIENTS, Deployment, NoSignerError
from flexledger.identity.eip712 import read_domain
from flexledger.rules.market import DAY, MarketParams

# each named client property and the contract it talks to
PROPERTIES = {
    "authority": "MarketAuthority", "roles": "RoleRegistry", "dids": "DIDRegistry", "markets": "MarketRegistry",
    "zones": "GridZones", "assets": "AssetRegistry", "token": "SettlementToken", "order_book": "OrderBook",
    "oracle": "MeterOracle", "clearing": "ClearingCommitment", "delivery_meter": "DeliveryMeter",
    "settlement": "Settlement", "reading_disputes": "ReadingDisputes", "omission_claims": "OmissionClaims",
    "baseline_disputes": "BaselineDisputes",
}


def test_a_client_for_every_contract_of_the_manifest(conn: ChainConnection, manifest: Manifest,
                                                     deployer: Signer) -> None:
    deployment = Deployment(conn, manifest, deployer)
    assert set(manifest.contracts) == set(CLIENTS) == set(PROPERTIES.values())
    for name in manifest.contracts:
        client = deployment.client(name)
        assert type(client) is CLIENTS[name]
        assert client.address == manifest.address(name)
        assert client.signer is deployer
    for attribute, name in PROPERTIES.items():
        client = getattr(deployment, attribute)
        assert name == client.CONTRACT and client.address == manifest.address(name)
        assert getattr(deployment, attribute) is client  # built once


def test_clients_unsigned_without_a_signer_and_signed_on_request(conn: ChainConnection, manifest: Manifest,
                                                                 deployer: Signer) -> None:
    reader = Deployment(conn, manifest)
    assert reader.order_book.signer is None
    assert reader.signed_by(deployer).order_book.signer is deployer


def test_a_contract_missing_from_the_manifest(conn: ChainConnection, manifest: Manifest) -> None:
    older = Manifest.from_json(manifest.to_json())
    del older.contracts["BaselineDisputes"]
    deployment = Deployment(conn, older)
    assert not deployment.has("BaselineDisputes") and deployment.has("OrderBook")
    with pytest.raises(ManifestError):
        _ = deployment.baseline_disputes


def test_params_read_from_the_chain_once(conn: ChainConnection, manifest: Manifest, deployer: Signer) -> None:
    chosen = MarketParams(isp_seconds=1800, gate_closure_seconds=7200, day_offset_seconds=3600)
    market = create_market(conn, manifest, deployer, chosen)
    deployment = Deployment(conn, manifest)
    with patch.object(type(deployment.markets), "market_params", wraps=deployment.markets.market_params) as read:
        assert deployment.params(market) == chosen
        assert deployment.params(market) == chosen
        assert deployment.signed_by(deployer).params(market) == chosen
    assert read.call_count == 1


def test_day_arithmetic_follows_the_rules(conn: ChainConnection, manifest: Manifest, deployer: Signer) -> None:
    rules = MarketParams(isp_seconds=1800, gate_closure_seconds=7200, day_offset_seconds=3600)
    market = create_market(conn, manifest, deployer, rules)
    deployment = Deployment(conn, manifest)
    start = deployment.day_start(market, dt.date(2026, 12, 7))
    midnight = int(dt.datetime(2026, 12, 7, tzinfo=dt.UTC).timestamp())
    assert start == rules.day_start(midnight + 3600) == midnight + 3600
    assert deployment.day_start(market, start + 5000) == rules.day_start(start + 5000) == start
    assert deployment.day_start(market, start - 1) == start - DAY
    assert deployment.gate_closure(market, start) == rules.gate_closure(start) == start - 7200
    isps = deployment.isp_starts(market, start)
    assert len(isps) == rules.isps_per_day == 48 and isps[0] == start and isps[-1] == start + DAY - 1800
    # the next day still open: tomorrow until its gate closes, then the day after
    assert deployment.next_open_day(market, start + 100) == start + DAY
    assert deployment.next_open_day(market, rules.gate_closure(start + DAY)) == start + DAY
    assert deployment.next_open_day(market, rules.gate_closure(start + DAY) + 1) == start + 2 * DAY


def test_a_client_at_an_address_the_chain_names(conn: ChainConnection, manifest: Manifest, deployer: Signer) -> None:
    deployment = Deployment(conn, manifest, deployer)
    # the token the OrderBook itself pulls from: an auditor takes it from the contract, not the manifest
    token = deployment.at(SettlementTokenClient, deployment.order_book.token())
    assert type(token) is SettlementTokenClient and token.signer is deployer
    assert token.address.lower() == manifest.address("SettlementToken").lower()
    assert deployment.book_domain == read_domain(conn, manifest.address("OrderBook"))
    assert deployment.book_separator == deployment.book_domain.separator()


def test_the_service_layer_needs_no_terminal() -> None:
    """What the API calls (posting a request, a book's summary, a clearing's summary, a day's
    settlement rows) imports neither typer nor rich: run in a fresh interpreter to see."""
    modules = ["flexledger.book.escrow", "flexledger.book.offers", "flexledger.book.summary", "flexledger.clearing.run",
               "flexledger.clearing.commitment", "flexledger.settlement.report", "flexledger.settlement.claims",
               "flexledger.audit.settlement"]
    code = f"import sys\nfor m in {modules!r}: __import__(m)\nprint(sorted({{'typer', 'rich'}} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_transaction_of_a_reading_deployment_is_refused_with_a_hint(conn: ChainConnection, manifest: Manifest,
                                                                      deployer: Signer) -> None:
    with pytest.raises(NoSignerError) as refused:
        Deployment(conn, manifest).sender()
    assert refused.value.hint and "--key" in refused.value.hint
    assert Deployment(conn, manifest).signed_by(deployer).sender() is deployer
