"""One deployment of the market's contracts, as every command and the coming API use it: the typed
client of each contract by name, each market's parameters, and the market-day arithmetic.

Built once from a connection and a manifest (and a signer for those that send transactions), so
that no caller spells ``XClient(conn, manifest.address("X"))`` again, reads a market's parameters
twice, or computes a day's start its own way. The formulas stay in :mod:`flexledger.rules.market`:
this object only reads the chain's parameters and hands them to the rules.
"""

from __future__ import annotations

import datetime as dt
from functools import cached_property
from typing import TYPE_CHECKING, TypeVar

from flexledger.chain.bindings import (
    AssetRegistryClient,
    BaselineDisputesClient,
    ClearingCommitmentClient,
    DeliveryMeterClient,
    DIDRegistryClient,
    GridZonesClient,
    MarketAuthorityClient,
    MarketRegistryClient,
    MeterOracleClient,
    OmissionClaimsClient,
    OrderBookClient,
    ReadingDisputesClient,
    RoleRegistryClient,
    SettlementClient,
    SettlementTokenClient,
)
from flexledger.chain.client import ContractClient
from flexledger.errors import ConfigurationError
from flexledger.identity.eip712 import Eip712Domain, read_domain
from flexledger.rules.market import DAY, MarketParams

if TYPE_CHECKING:
    from flexledger.chain.connection import ChainConnection
    from flexledger.chain.manifest import Manifest
    from flexledger.chain.transactions import Signer
    from flexledger.rules.typed_data import Eip712Domain

# Every contract `flexledger deploy` puts in a manifest, with the class of its client.
CLIENTS: dict[str, type[ContractClient]] = {cls.CONTRACT: cls for cls in (
    MarketAuthorityClient, RoleRegistryClient, DIDRegistryClient, MarketRegistryClient, GridZonesClient,
    AssetRegistryClient, SettlementTokenClient, OrderBookClient, MeterOracleClient, ClearingCommitmentClient,
    DeliveryMeterClient, SettlementClient, ReadingDisputesClient, OmissionClaimsClient, BaselineDisputesClient,
)}

Client = TypeVar("Client", bound=ContractClient)


class NoSignerError(ConfigurationError):
    """A transaction was asked of a deployment built to read only."""


class Deployment:
    """The contracts of one manifest on one connection; clients sign with ``signer`` when given."""

    def __init__(self, conn: ChainConnection, manifest: Manifest, signer: Signer | None = None) -> None:
        self.conn = conn
        self.manifest = manifest
        self.signer = signer
        self._params: dict[int, MarketParams] = {}

    def has(self, name: str) -> bool:
        """Whether the manifest holds the contract (later contracts are missing from older deployments)."""
        return name in self.manifest.contracts

    def client(self, name: str) -> ContractClient:
        """The client of the manifest's contract ``name`` (ManifestError when it has none)."""
        return CLIENTS[name](self.conn, self.manifest.address(name), signer=self.signer)

    def sender(self) -> Signer:
        """The signer of this deployment's transactions (``NoSignerError`` when it reads only)."""
        if self.signer is None:
            raise NoSignerError("this sends a transaction, and the deployment has no signer",
                                hint="give --key (or FLEXLEDGER_KEY); in code, Deployment(..., signer) or signed_by()")
        return self.signer

    def at(self, cls: type[Client], address: str) -> Client:
        """A client of the contract at ``address``, signing as this deployment's clients do: for a
        contract the chain names rather than the manifest (the token a contract holds, which an
        auditor takes from the contract itself)."""
        return cls(self.conn, address, signer=self.signer)

    def signed_by(self, signer: Signer) -> Deployment:
        """The same deployment, its clients signing with ``signer`` (the parameters read so far kept)."""
        other = Deployment(self.conn, self.manifest, signer)
        other._params = self._params
        return other

    @cached_property
    def authority(self) -> MarketAuthorityClient:
        return MarketAuthorityClient(self.conn, self.manifest.address("MarketAuthority"), signer=self.signer)

    @cached_property
    def roles(self) -> RoleRegistryClient:
        return RoleRegistryClient(self.conn, self.manifest.address("RoleRegistry"), signer=self.signer)

    @cached_property
    def dids(self) -> DIDRegistryClient:
        return DIDRegistryClient(self.conn, self.manifest.address("DIDRegistry"), signer=self.signer)

    @cached_property
    def markets(self) -> MarketRegistryClient:
        return MarketRegistryClient(self.conn, self.manifest.address("MarketRegistry"), signer=self.signer)

    @cached_property
    def zones(self) -> GridZonesClient:
        return GridZonesClient(self.conn, self.manifest.address("GridZones"), signer=self.signer)

    @cached_property
    def assets(self) -> AssetRegistryClient:
        return AssetRegistryClient(self.conn, self.manifest.address("AssetRegistry"), signer=self.signer)

    @cached_property
    def token(self) -> SettlementTokenClient:
        return SettlementTokenClient(self.conn, self.manifest.address("SettlementToken"), signer=self.signer)

    @cached_property
    def order_book(self) -> OrderBookClient:
        return OrderBookClient(self.conn, self.manifest.address("OrderBook"), signer=self.signer)

    @cached_property
    def oracle(self) -> MeterOracleClient:
        return MeterOracleClient(self.conn, self.manifest.address("MeterOracle"), signer=self.signer)

    @cached_property
    def clearing(self) -> ClearingCommitmentClient:
        return ClearingCommitmentClient(self.conn, self.manifest.address("ClearingCommitment"), signer=self.signer)

    @cached_property
    def delivery_meter(self) -> DeliveryMeterClient:
        return DeliveryMeterClient(self.conn, self.manifest.address("DeliveryMeter"), signer=self.signer)

    @cached_property
    def settlement(self) -> SettlementClient:
        return SettlementClient(self.conn, self.manifest.address("Settlement"), signer=self.signer)

    @cached_property
    def reading_disputes(self) -> ReadingDisputesClient:
        return ReadingDisputesClient(self.conn, self.manifest.address("ReadingDisputes"), signer=self.signer)

    @cached_property
    def omission_claims(self) -> OmissionClaimsClient:
        return OmissionClaimsClient(self.conn, self.manifest.address("OmissionClaims"), signer=self.signer)

    @cached_property
    def baseline_disputes(self) -> BaselineDisputesClient:
        return BaselineDisputesClient(self.conn, self.manifest.address("BaselineDisputes"), signer=self.signer)

    @cached_property
    def book_domain(self) -> Eip712Domain:
        """The OrderBook's EIP-712 domain, read from the contract (ERC-5267): offers are signed in it."""
        return read_domain(self.conn, self.order_book.address)

    @cached_property
    def book_separator(self) -> bytes:
        """The OrderBook's domain separator (fixed at deployment)."""
        return self.book_domain.separator()

    def params(self, market: int) -> MarketParams:
        """The market's parameters, read from MarketRegistry once (a market's parameters are fixed
        at its creation)."""
        if market not in self._params:
            self._params[market] = MarketParams.from_fields(self.markets.market_params(market))
        return self._params[market]

    def day_start(self, market: int, when: dt.date | int) -> int:
        """The first second of a market day: the day named by a calendar date (its UTC midnight
        shifted by the market's day offset), or the day that holds a timestamp."""
        params = self.params(market)
        if isinstance(when, dt.date):
            midnight = int(dt.datetime(when.year, when.month, when.day, tzinfo=dt.UTC).timestamp())
            return params.day_start(midnight + params.day_offset_seconds)
        return params.day_start(when)

    def gate_closure(self, market: int, day_start: int) -> int:
        """The last second at which the market day's offers and lights may change."""
        return self.params(market).gate_closure(day_start)

    def isp_starts(self, market: int, day_start: int) -> range:
        """The start of each imbalance settlement period of the market day."""
        return range(day_start, day_start + DAY, self.params(market).isp_seconds)

    def next_open_day(self, market: int, now: int) -> int:
        """The start of the first market day after ``now``'s whose gate has not closed at ``now``."""
        ahead = self.day_start(market, now) + DAY
        return ahead if now <= self.gate_closure(market, ahead) else ahead + DAY
