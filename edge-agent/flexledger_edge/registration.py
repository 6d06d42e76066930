"""The meter's consent to be registered as its owner's asset, as EIP-712 typed data::

    MeterRegistration(address meter,address owner,uint8 assetType,uint256 nonce,uint64 deadline)

in the domain ``{name: "flexledger AssetRegistry", version: "1", chainId, verifyingContract}``
where ``verifyingContract`` is the AssetRegistry contract. The gateway signs it with the meter's
own key (the key that signs its readings), so nobody registers a meter that is not theirs: the
contract refuses a registration whose meter did not name its owner. ``nonce`` is the meter's
registration nonce on chain (``AssetRegistry.meterNonce``), so a signature registers the meter
once, even after a deregistration. The signature travels as a JSON file that the owner hands
to ``flexledger asset register --meter-signature FILE``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import to_checksum_address

DOMAIN_NAME = "flexledger AssetRegistry"
DOMAIN_VERSION = "1"
UINT64_MAX = 2**64 - 1

REGISTRATION_TYPES: dict[str, list[dict[str, str]]] = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ],
    "MeterRegistration": [
        {"name": "meter", "type": "address"},
        {"name": "owner", "type": "address"},
        {"name": "assetType", "type": "uint8"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint64"},
    ],
}


class RegistrationError(ValueError):
    """A registration or its file is malformed."""


@dataclass(frozen=True)
class MeterRegistration:
    """What the meter consents to: being registered for ``owner`` on one chain's AssetRegistry."""

    meter: str
    owner: str
    asset_type: int
    nonce: int
    deadline: int
    chain_id: int
    registry: str

    def __post_init__(self) -> None:
        if not 0 <= self.asset_type <= 255:
            raise RegistrationError(f"asset type {self.asset_type} is not a uint8")
        if not 0 <= self.deadline <= UINT64_MAX or self.nonce < 0 or self.chain_id <= 0:
            raise RegistrationError("deadline, nonce and chain id must be a uint64, a uint256 and positive")

    def typed_data(self) -> dict[str, Any]:
        """The full ``eth_signTypedData_v4`` message."""
        return {
            "types": REGISTRATION_TYPES,
            "primaryType": "MeterRegistration",
            "domain": {
                "name": DOMAIN_NAME,
                "version": DOMAIN_VERSION,
                "chainId": self.chain_id,
                "verifyingContract": to_checksum_address(self.registry),
            },
            "message": {
                "meter": to_checksum_address(self.meter),
                "owner": to_checksum_address(self.owner),
                "assetType": self.asset_type,
                "nonce": self.nonce,
                "deadline": self.deadline,
            },
        }


def sign_registration(private_key: bytes, owner: str, asset_type: int, nonce: int, deadline: int,
                      chain_id: int, registry: str) -> tuple[MeterRegistration, bytes]:
    """The meter (``private_key``) signs its registration for ``owner``: the terms and the
    65-byte ``r || s || v`` signature."""
    account = Account.from_key(private_key)
    terms = MeterRegistration(str(account.address), to_checksum_address(owner), asset_type, nonce, deadline,
                              chain_id, to_checksum_address(registry))
    signed = account.sign_message(encode_typed_data(full_message=terms.typed_data()))
    return terms, bytes(signed.signature)


def write_registration(path: Path, terms: MeterRegistration, signature: bytes) -> None:
    """The file the owner takes to ``flexledger asset register --meter-signature``."""
    payload = {**asdict(terms), "signature": "0x" + signature.hex()}
    path.write_text(json.dumps(payload, indent=2) + "\n")


def read_registration(path: Path) -> tuple[MeterRegistration, bytes]:
    """The terms and signature of a file ``write_registration`` wrote."""
    try:
        payload = json.loads(path.read_text())
        signature = bytes.fromhex(str(payload.pop("signature")).removeprefix("0x"))
        terms = MeterRegistration(**payload)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise RegistrationError(f"{path}: not a meter registration file ({exc})") from exc
    if len(signature) != 65:
        raise RegistrationError(f"{path}: the signature must be 65 bytes")
    return terms, signature
