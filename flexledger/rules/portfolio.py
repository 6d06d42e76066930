"""Owner consent to an aggregator's portfolio: the EIP-712 message AssetRegistry checks."""

from __future__ import annotations

from eth_account.signers.local import LocalAccount

from flexledger.identity.eip712 import Eip712Domain, TypedData

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
