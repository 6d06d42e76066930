"""Set-up steps the chain tests share (not fixtures): role credentials issued by the market
authority, and a market created with the default parameters."""

from __future__ import annotations

from collections.abc import Sequence

from flexledger.chain import structs
from flexledger.chain.bindings import MarketRegistryClient, RoleRegistryClient
from flexledger.chain.connection import ChainConnection
from flexledger.chain.manifest import Manifest
from flexledger.chain.transactions import Signer
from flexledger.identity.roles import Role
from flexledger.rules.market import MarketParams

FOREVER = 2**64 - 1


def grant_roles(conn: ChainConnection, manifest: Manifest, authority: Signer,
                grants: Sequence[tuple[str, Role]]) -> RoleRegistryClient:
    """Issue each (account, role) a credential valid from now on, in one transaction."""
    roles = RoleRegistryClient(conn, manifest.address("RoleRegistry"), signer=authority)
    roles.issue_credentials([a for a, _ in grants], [r.id for _, r in grants], [0] * len(grants),
                            [FOREVER] * len(grants), [b"\x01" * 32] * len(grants))
    return roles


def create_market(conn: ChainConnection, manifest: Manifest, authority: Signer,
                  params: MarketParams | None = None) -> int:
    """A new market (the default parameters unless given); its id."""
    markets = MarketRegistryClient(conn, manifest.address("MarketRegistry"), signer=authority)
    return int(markets.create_market(structs.MarketParams.like(params or MarketParams())).event("MarketCreated").args["marketId"])
