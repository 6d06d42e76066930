"""Deploying the contracts in order and writing the manifest."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from eth_abi import encode

from .artifacts import Artifact, load_artifact
from .bindings import MeterOracleClient, OrderBookClient
from .client import TxResult, wait_for
from .codegen import canonical_type
from .compiler import BUILD_INFO
from .connection import ChainConnection
from .errors import ArtifactError, ChainError
from .manifest import DeployedContract, Manifest
from .paths import build_dir
from .transactions import Signer


@dataclass(frozen=True)
class DeployOptions:
    """Choices a market makes at deployment."""

    # Delay before a handed-over market authority takes effect (OpenZeppelin's
    # AccessControlDefaultAdminRules): time for the grid operators to notice and object.
    admin_transfer_delay: int = 2 * 24 * 3600
    admin: str | None = None  # the market authority; the deployer when not given
    # What a claim that an oracle left out a receipted reading posts (token base units: cents);
    # it pays whoever answers a claim that fails, so claims cannot grief an honest oracle for free.
    omission_claim_bond: int = 10_000
    # What a challenge that an input day of a standard baseline has no anchored reading posts (the
    # same figure: the same honest oracle's answer, one reading proof, is what the bond repays).
    baseline_challenge_bond: int = 10_000


@dataclass
class DeployContext:
    deployer: str
    options: DeployOptions
    addresses: dict[str, str] = field(default_factory=dict)

    @property
    def admin(self) -> str:
        return self.options.admin or self.deployer


@dataclass(frozen=True)
class Step:
    contract: str
    constructor_args: Callable[[DeployContext], list[Any]]


# The order matters: a contract's constructor may name those deployed before it.
PLAN: tuple[Step, ...] = (
    Step("MarketAuthority", lambda ctx: [ctx.options.admin_transfer_delay, ctx.admin]),
    Step("RoleRegistry", lambda ctx: [ctx.addresses["MarketAuthority"]]),
    Step("DIDRegistry", lambda ctx: []),
    Step("MarketRegistry", lambda ctx: [ctx.addresses["MarketAuthority"]]),
    Step("GridZones", lambda ctx: [ctx.addresses["RoleRegistry"], ctx.addresses["MarketRegistry"]]),
    Step("AssetRegistry", lambda ctx: [ctx.addresses["RoleRegistry"], ctx.addresses["GridZones"]]),
    # The demo's and development chains' money; it mints on chain ids 31337 and 1337 only.
    Step("SettlementToken", lambda ctx: [ctx.addresses["MarketAuthority"]]),
    Step("OrderBook", lambda ctx: [ctx.addresses[name] for name in (
        "RoleRegistry", "MarketRegistry", "GridZones", "AssetRegistry", "SettlementToken")]),
    Step("MeterOracle", lambda ctx: [ctx.addresses[name] for name in ("RoleRegistry", "MarketRegistry", "SettlementToken")]),
    Step("ClearingCommitment", lambda ctx: [ctx.addresses[name] for name in (
        "RoleRegistry", "MarketRegistry", "OrderBook", "GridZones", "AssetRegistry")]),
    Step("DeliveryMeter", lambda ctx: [ctx.addresses[name] for name in ("MarketRegistry", "AssetRegistry", "MeterOracle")]),
    Step("Settlement", lambda ctx: [ctx.addresses[name] for name in (
        "MarketRegistry", "OrderBook", "ClearingCommitment", "MeterOracle", "AssetRegistry", "DeliveryMeter")]),
    # The evidence: judges disputes of readings, re-settles through Settlement, slashes oracles.
    Step("ReadingDisputes", lambda ctx: [ctx.addresses[name] for name in (
        "MarketRegistry", "OrderBook", "AssetRegistry", "MeterOracle", "Settlement")]),
    # Holds oracles to their receipts: a reading receipted "accepted" and left out of its root.
    Step("OmissionClaims", lambda ctx: [*(ctx.addresses[name] for name in (
        "MarketRegistry", "MeterOracle", "ReadingDisputes", "SettlementToken")), ctx.options.omission_claim_bond]),
    # Judges disputes of standard baselines against anchored readings, corrects them, slashes oracles.
    # and takes the challenges of input days with no anchored reading (their bond in the settlement token).
    Step("BaselineDisputes", lambda ctx: [*(ctx.addresses[name] for name in (
        "MarketRegistry", "OrderBook", "AssetRegistry", "MeterOracle", "Settlement", "ReadingDisputes",
        "SettlementToken")), ctx.options.baseline_challenge_bond]),
)


def creation_data(artifact: Artifact, args: list[Any]) -> bytes:
    if not artifact.deployable:
        raise ArtifactError(f"{artifact.name} is abstract or an interface: it cannot be deployed")
    ctor: dict[str, Any] = next((i for i in artifact.abi if i["type"] == "constructor"), {"inputs": []})
    types = [canonical_type(p) for p in ctor["inputs"]]
    if len(types) != len(args):
        raise ChainError(f"{artifact.name} takes {len(types)} constructor arguments, {len(args)} given")
    return bytes.fromhex(artifact.bytecode[2:]) + encode(types, args)


def deploy_contract(conn: ChainConnection, signer: Signer, name: str, args: list[Any]) -> tuple[str, TxResult]:
    """Deploy one contract and wait for it; returns its address and the mined transaction."""
    artifact = load_artifact(name)
    data = creation_data(artifact, args)
    gas = int(conn.w3.eth.estimate_gas({"from": signer.address, "data": data}) * 1.2)
    tx_hash = signer.send(None, data, gas=gas)
    result = TxResult(tx_hash="0x" + tx_hash.hex().removeprefix("0x"), contract=name, function="constructor")
    wait_for(conn, result, signer=signer)
    receipt = conn.w3.eth.get_transaction_receipt(tx_hash)
    address = receipt["contractAddress"]
    if not address:
        raise ChainError(f"{name} was mined in {result.tx_hash} without a contract address")
    return str(address), result


def deploy_all(
    conn: ChainConnection,
    signer: Signer,
    *,
    options: DeployOptions | None = None,
    plan: tuple[Step, ...] = PLAN,
    on_step: Callable[[str, str, int], None] | None = None,
) -> Manifest:
    """Deploy every contract of ``plan``; the manifest records where and from which build."""
    info = json.loads((build_dir() / BUILD_INFO).read_text())
    ctx = DeployContext(deployer=signer.address, options=options or DeployOptions())
    manifest = Manifest(
        chain_id=conn.chain_id,
        rpc_url=conn.display_url,
        deployer=signer.address,
        deployed_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        compiler=info["compiler"],
        source_hash=info["sourceHash"],
    )
    for step in plan:
        address, result = deploy_contract(conn, signer, step.contract, step.constructor_args(ctx))
        ctx.addresses[step.contract] = address
        manifest.contracts[step.contract] = DeployedContract(
            address=address,
            block=result.block_number or 0,
            tx_hash=result.tx_hash,
            code_hash=load_artifact(step.contract).code_hash,
            gas_used=result.gas_used or 0,
        )
        if on_step:
            on_step(step.contract, address, result.gas_used or 0)
    _wire(conn, signer, ctx)
    return manifest


def _wire(conn: ChainConnection, signer: Signer, ctx: DeployContext) -> None:
    """Name the settlement in the order book (it pays out escrows and draws bonds) and the
    disputes and omission claims in the meter oracle (they slash oracles' stakes; only the
    disputes may re-settle). Only
    the market authority may; when another account is the authority, it does this itself."""
    if "Settlement" not in ctx.addresses or ctx.admin != signer.address:
        return
    if "OrderBook" in ctx.addresses:
        OrderBookClient(conn, ctx.addresses["OrderBook"], signer=signer).set_settlement(ctx.addresses["Settlement"])
    if "MeterOracle" in ctx.addresses and "ReadingDisputes" in ctx.addresses:
        MeterOracleClient(conn, ctx.addresses["MeterOracle"], signer=signer).set_disputes(ctx.addresses["ReadingDisputes"])
    if "MeterOracle" in ctx.addresses and "OmissionClaims" in ctx.addresses:
        MeterOracleClient(conn, ctx.addresses["MeterOracle"], signer=signer).set_omission_claims(ctx.addresses["OmissionClaims"])
    if "MeterOracle" in ctx.addresses and "BaselineDisputes" in ctx.addresses:
        MeterOracleClient(conn, ctx.addresses["MeterOracle"], signer=signer).set_baseline_disputes(
            ctx.addresses["BaselineDisputes"])


def is_current(manifest: Manifest, plan: tuple[Step, ...] = PLAN) -> bool:
    """True when the manifest holds every contract of the plan, built from today's artifacts."""
    return all(
        step.contract in manifest.contracts
        and manifest.contracts[step.contract].code_hash == load_artifact(step.contract).code_hash
        for step in plan
    )
