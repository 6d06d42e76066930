"""What asset owners and meters sign for AssetRegistry (EIP-712): the meter's consent to be
registered for its owner (every registration needs it: nobody registers a meter that is not
theirs), an owner's registration an aggregator relays, and consent to an aggregator's
portfolio. The domain is read from the contract (ERC-5267). The edge agent signs the meter's
consent with its own copy of the type (``flexledger_edge.registration``); tests hold the two
to the contract's digest."""

from __future__ import annotations

from eth_account.signers.local import LocalAccount

from flexledger.rules.typed_data import Eip712Domain, TypedData

REGISTRATION_TYPES = {
    "AssetRegistration": [
        {"name": "owner", "type": "address"},
        {"name": "meter", "type": "address"},
        {"name": "assetType", "type": "uint8"},
        {"name": "deadline", "type": "uint64"},
    ]
}
METER_REGISTRATION_TYPES = {
    "MeterRegistration": [
        {"name": "meter", "type": "address"},
        {"name": "owner", "type": "address"},
        {"name": "assetType", "type": "uint8"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint64"},
    ]
}
CONSENT_TYPES = {
    "PortfolioConsent": [
        {"name": "aggregator", "type": "address"},
        {"name": "asset", "type": "uint64"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint64"},
    ]
}


def consent(domain: Eip712Domain, aggregator: str, asset: int, nonce: int, deadline: int) -> TypedData:
    """The typed data an asset's owner signs (with any wallet) to let ``aggregator`` pool it."""
    return TypedData(domain, "PortfolioConsent", CONSENT_TYPES,
                     {"aggregator": aggregator, "asset": asset, "nonce": nonce, "deadline": deadline})


def sign_consent(owner: LocalAccount, domain: Eip712Domain, aggregator: str, asset: int, nonce: int, deadline: int) -> bytes:
    return consent(domain, aggregator, asset, nonce, deadline).sign(owner)


def registration(domain: Eip712Domain, owner: str, meter: str, asset_type: int, deadline: int) -> TypedData:
    """The typed data an owner signs so that an aggregator may register the asset for it (no gas)."""
    return TypedData(domain, "AssetRegistration", REGISTRATION_TYPES,
                     {"owner": owner, "meter": meter, "assetType": asset_type, "deadline": deadline})


def meter_registration(domain: Eip712Domain, meter: str, owner: str, asset_type: int, nonce: int,
                       deadline: int) -> TypedData:
    """The typed data a meter signs to be registered for ``owner`` (``nonce``: AssetRegistry.meterNonce)."""
    return TypedData(domain, "MeterRegistration", METER_REGISTRATION_TYPES,
                     {"meter": meter, "owner": owner, "assetType": asset_type, "nonce": nonce, "deadline": deadline})


def sign_meter_registration(meter: LocalAccount, domain: Eip712Domain, owner: str, asset_type: int, nonce: int,
                            deadline: int) -> bytes:
    return meter_registration(domain, meter.address, owner, asset_type, nonce, deadline).sign(meter)
