"""What follows when an owner loses its credential: its assets stop offering."""

from __future__ import annotations

from flexledger.chain.bindings import AssetRegistryClient
from flexledger.chain.connection import ChainConnection
from flexledger.chain.manifest import Manifest
from flexledger.chain.transactions import Signer

BATCH = 200


def assets_of(assets: AssetRegistryClient, owner: str) -> list[int]:
    """The assets ``owner`` registered, from the AssetRegistered events (owner is indexed)."""
    topic = "0x" + bytes.fromhex(owner.removeprefix("0x")).rjust(32, b"\0").hex()
    return [e.args["assetId"] for e in assets.events("AssetRegistered", topics=[None, topic])]


def suspend_uncredentialed_assets(conn: ChainConnection, manifest: Manifest, owner: str, signer: Signer | None) -> int:
    """Suspend ``owner``'s active assets if it holds no PROSUMER or AGGREGATOR credential now; how many were."""
    assets = AssetRegistryClient(conn, manifest.address("AssetRegistry"), signer=signer)
    ids = assets_of(assets, owner)
    suspended = 0
    for i in range(0, len(ids), BATCH):
        tx = assets.suspend_uncredentialed(ids[i:i + BATCH])
        suspended += sum(1 for e in tx.events if e.name == "AssetSuspended")
    return suspended
