"""Red-team finding 12 (issue 17): the auditor trusted the operator's manifest. `Manifest.check`
compared the chain id and that some code existed; a manifest naming a second, idle Settlement (even
the genuine bytecode, wired to the same registries) gave MATCH with nothing audited. Now the auditor
verifies every contract's runtime code against ``contracts/build`` (immutables masked) and the
contracts' wiring before it audits; a mismatch is a clear error.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest
from settlement_world import build_world

from flexledger.audit.clearing import audit_clearing
from flexledger.audit.settlement import audit_settlement
from flexledger.chain.artifacts import load_artifact
from flexledger.chain.connection import ChainConnection
from flexledger.chain.deploy import deploy_contract
from flexledger.chain.errors import ManifestVerificationError
from flexledger.chain.manifest import Manifest, runtime_code_matches
from flexledger.chain.transactions import Signer
from flexledger.deployment import Deployment


def _with(manifest: Manifest, name: str, address: str) -> Manifest:
    forged = copy.deepcopy(manifest)
    forged.contracts[name] = dataclasses.replace(forged.contracts[name], address=address)
    return forged


@pytest.mark.slow
def test_RT12_a_manifest_naming_an_idle_settlement_is_refused(
        conn: ChainConnection, manifest: Manifest, deployer: Signer, dev_signers: list[Signer], tmp_path: Path) -> None:
    w = build_world(conn, manifest, deployer, dev_signers, tmp_path)
    w.settle_all()
    idle, _tx = deploy_contract(conn, deployer, "Settlement", [manifest.address(n) for n in (
        "MarketRegistry", "OrderBook", "ClearingCommitment", "MeterOracle", "AssetRegistry", "DeliveryMeter")])
    forged = _with(manifest, "Settlement", idle)
    forged.check(conn)  # the chain id and some code: still true, and not enough
    with pytest.raises(ManifestVerificationError) as refused:
        audit_settlement(Deployment(w.conn, forged), w.market, w.day)
    assert any("OrderBook.settlement()" in p for p in refused.value.problems)
    assert any("ReadingDisputes.settlement()" in p for p in refused.value.problems)
    with pytest.raises(ManifestVerificationError):
        audit_clearing(Deployment(w.conn, forged), w.market, w.day)
    genuine = audit_settlement(Deployment(w.conn, manifest), w.market, w.day)
    assert genuine.matches and genuine.offers_settled == 2


def test_RT12_other_code_at_a_manifest_address_is_refused(conn: ChainConnection, manifest: Manifest) -> None:
    """A contract of another kind (here the token where the order book should be) or an account."""
    with pytest.raises(ManifestVerificationError, match="is not the compiled OrderBook"):
        _with(manifest, "OrderBook", manifest.address("SettlementToken")).verify(conn)


def test_RT12_a_contract_wired_to_another_registry_is_refused(
        conn: ChainConnection, manifest: Manifest, deployer: Signer) -> None:
    """Genuine code, built on a registry the manifest does not name: its immutables give it away."""
    other_markets, _tx = deploy_contract(conn, deployer, "MarketRegistry", [manifest.address("MarketAuthority")])
    rogue, _tx = deploy_contract(conn, deployer, "DeliveryMeter", [
        other_markets, manifest.address("AssetRegistry"), manifest.address("MeterOracle")])
    with pytest.raises(ManifestVerificationError, match=r"DeliveryMeter.markets\(\)"):
        _with(manifest, "DeliveryMeter", rogue).verify(conn)


def test_RT12_the_deployed_manifest_verifies(conn: ChainConnection, manifest: Manifest) -> None:
    manifest.verify(conn)


def test_RT12_only_immutable_slots_may_differ() -> None:
    compiled = bytes.fromhex(load_artifact("Settlement").deployed_bytecode.removeprefix("0x"))
    slot = next(i for i in range(len(compiled) - 33) if compiled[i] == 0x7F and not any(compiled[i + 1:i + 33]))
    filled = bytearray(compiled)
    filled[slot + 13:slot + 33] = b"\x42" * 20  # an address written by the constructor
    assert runtime_code_matches(bytes(filled), compiled)
    changed = bytearray(compiled)
    changed[len(compiled) // 3] ^= 0x01  # anything else
    assert not runtime_code_matches(bytes(changed), compiled)
    assert not runtime_code_matches(compiled + b"\x00", compiled)


def test_RT12_a_later_deployment_block_cannot_hide_events(conn: ChainConnection, manifest: Manifest) -> None:
    """Event queries start at the manifest's deployment block: a forged, later one is refused."""
    forged = copy.deepcopy(manifest)
    deployed = forged.contracts["Settlement"]
    forged.contracts["Settlement"] = dataclasses.replace(deployed, block=deployed.block + 5)
    with pytest.raises(ManifestVerificationError, match="deployment transaction"):
        forged.verify(conn)
