"""Owners' assets: registering one with its meter's consent, and what follows when an owner
(or the aggregator of its portfolio) loses its credential: its assets stop offering."""

from __future__ import annotations

import os
from pathlib import Path

from eth_account.signers.local import LocalAccount

from flexledger.chain.bindings import AssetRegistryClient
from flexledger.chain.client import TxResult
from flexledger.chain.transactions import Signer
from flexledger.deployment import Deployment
from flexledger.errors import ConfigurationError
from flexledger.identity import keys
from flexledger.identity.eip712 import read_domain
from flexledger.rules.assets import sign_meter_registration
from flexledger_edge.registration import read_registration

BATCH = 200


def assets_of(assets: AssetRegistryClient, owner: str) -> list[int]:
    """The assets ``owner`` registered, from the AssetRegistered events (owner is indexed)."""
    topic = "0x" + bytes.fromhex(owner.removeprefix("0x")).rjust(32, b"\0").hex()
    return [e.args["assetId"] for e in assets.events("AssetRegistered", topics=[None, topic])]


def portfolio_members_of(assets: AssetRegistryClient, aggregator: str) -> list[int]:
    """The current members of the portfolios ``aggregator`` founded (PortfolioCreated, aggregator indexed)."""
    topic = "0x" + bytes.fromhex(aggregator.removeprefix("0x")).rjust(32, b"\0").hex()
    return [a for e in assets.events("PortfolioCreated", topics=[None, topic])
            for a in assets.portfolio(e.args["portfolioId"]).members]


def suspend_uncredentialed_assets(deployment: Deployment, owner: str) -> int:
    """Suspend ``owner``'s active assets, and the members of the portfolios it aggregates, that
    AssetRegistry.suspendUncredentialed finds without a credentialed seller now (sent by the
    deployment's signer: anyone may); how many were."""
    assets = deployment.assets
    ids = sorted(set(assets_of(assets, owner)) | set(portfolio_members_of(assets, owner)))
    suspended = 0
    for i in range(0, len(ids), BATCH):
        tx = assets.suspend_uncredentialed(ids[i:i + BATCH])
        suspended += sum(1 for e in tx.events if e.name == "AssetSuspended")
    return suspended


CONSENT_SECONDS = 86_400  # how long a meter's consent signed here, or suggested to its gateway, stays good


def meter_consent(assets: AssetRegistryClient, meter: str, asset_type: int, signature_file: Path | None,
                  meter_keystore: Path | None) -> tuple[bytes, int]:
    """The meter's signed consent to be registered for the sender of ``assets`` (its signer),
    and its deadline: from the file its gateway wrote (``flexledger-edge sign-registration``),
    or, in development, signed here with the meter's keystore. Each part is checked against the
    chain first, so that a mismatch is explained instead of reverting."""
    assert assets.signer is not None
    owner = assets.signer.address
    nonce = assets.meter_nonce(meter)
    chain_id = assets.conn.chain_id
    if signature_file is not None:
        terms, signature = read_registration(signature_file)
        expected = {"meter": meter, "owner": owner, "asset type": asset_type, "nonce": nonce, "chain id": chain_id,
                    "registry": assets.address}
        found = {"meter": terms.meter, "owner": terms.owner, "asset type": terms.asset_type, "nonce": terms.nonce,
                 "chain id": terms.chain_id, "registry": terms.registry}
        for what, value in expected.items():
            if str(found[what]).lower() != str(value).lower():
                raise ConfigurationError(
                    f"{signature_file}: the meter signed for {what} {found[what]}, this registration needs {value}",
                    hint="have the gateway sign again: " + _edge_command(owner, asset_type, nonce, chain_id, assets.address))
        if terms.deadline < assets.conn.latest_timestamp():
            raise ConfigurationError(f"{signature_file}: the meter's consent expired at {terms.deadline}",
                                     hint="have the gateway sign again with a later --deadline")
        return signature, terms.deadline
    deadline = assets.conn.latest_timestamp() + CONSENT_SECONDS
    if meter_keystore is None:
        raise ConfigurationError(
            f"registering meter {meter} needs its signed consent",
            hint="on its gateway: " + _edge_command(owner, asset_type, nonce, chain_id, assets.address, deadline)
            + " ; then --meter-signature meter-consent.json (or, in development, --meter-key KEYSTORE)")
    password = os.environ.get("FLEXLEDGER_METER_KEY_PASSWORD", os.environ.get("FLEXLEDGER_KEY_PASSWORD"))
    if password is None:
        raise ConfigurationError(f"the meter keystore {meter_keystore} needs its password",
                                 hint="set FLEXLEDGER_METER_KEY_PASSWORD")
    account = keys.load_keystore(meter_keystore, password)
    if account.address.lower() != meter.lower():
        raise ConfigurationError(f"{meter_keystore} holds the key of {account.address}, not of meter {meter}")
    domain = read_domain(assets.conn, assets.address)
    return sign_meter_registration(account, domain, owner, asset_type, nonce, deadline), deadline


def _edge_command(owner: str, asset_type: int, nonce: int, chain_id: int, registry: str, deadline: int | None = None) -> str:
    return (f"flexledger-edge sign-registration --config agent.toml --owner {owner} --type {asset_type} "
            f"--nonce {nonce} --deadline {deadline or 'UNIX_SECONDS'} --chain-id {chain_id} --registry {registry} "
            "--out meter-consent.json")


def register_with_meters(assets: AssetRegistryClient, meters: list[LocalAccount], asset_types: list[int], *,
                         sender: Signer, fresh: bool = False, wait: bool = True, gas: int | None = None) -> TxResult:
    """``sender`` registers the assets behind ``meters`` whose keys are at hand (development, tests,
    benchmarks): each meter signs its consent here, at its registration nonce (0 for ``fresh``
    meters, never registered, without asking the chain)."""
    domain = read_domain(assets.conn, assets.address)
    deadline = assets.conn.latest_timestamp() + CONSENT_SECONDS
    signatures = [sign_meter_registration(m, domain, sender.address, t, 0 if fresh else assets.meter_nonce(m.address),
                                          deadline)
                  for m, t in zip(meters, asset_types, strict=True)]
    return assets.register_assets([m.address for m in meters], asset_types, deadline, signatures,
                                  sender=sender, wait=wait, gas=gas)
