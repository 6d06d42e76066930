"""Meter readings as EIP-712 typed data: build, hash, sign, encode for MQTT, verify.

A reading is the primary type::

    Reading(address meter,uint64 ispStart,uint64 sequence,uint64 importWh,uint64 exportWh)

in the domain ``{name: "flexledger MeterOracle", version: "1", chainId, verifyingContract}``
where ``verifyingContract`` is the MeterOracle contract. ``importWh`` and ``exportWh`` are the
energy measured *during* the ISP that starts at ``ispStart`` (UTC Unix seconds), not cumulative
register values. ``sequence`` counts a meter's readings: 1, 2, 3, ... without gaps.

The meter signs with its own key (any wallet's ``eth_signTypedData_v4`` gives the same
65-byte ``r || s || v`` signature, ``v`` in {27, 28}), so neither the broker nor the gateway's
network is trusted: the oracle recovers the signer from the payload alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import is_checksum_address, keccak, to_checksum_address

DOMAIN_NAME = "flexledger MeterOracle"
DOMAIN_VERSION = "1"
READING_TYPE = "Reading(address meter,uint64 ispStart,uint64 sequence,uint64 importWh,uint64 exportWh)"
DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
UINT64_MAX = 2**64 - 1

READING_TYPES: dict[str, list[dict[str, str]]] = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ],
    "Reading": [
        {"name": "meter", "type": "address"},
        {"name": "ispStart", "type": "uint64"},
        {"name": "sequence", "type": "uint64"},
        {"name": "importWh", "type": "uint64"},
        {"name": "exportWh", "type": "uint64"},
    ],
}


class ReadingError(ValueError):
    """A reading or its JSON payload is malformed."""


@dataclass(frozen=True)
class OracleDomain:
    """The EIP-712 domain readings are signed in: one chain, one MeterOracle contract."""

    chain_id: int
    verifying_contract: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": self.chain_id,
            "verifyingContract": to_checksum_address(self.verifying_contract),
        }

    def separator(self) -> bytes:
        """The EIP-712 domain separator."""
        return keccak(
            keccak(text=DOMAIN_TYPE)
            + keccak(text=DOMAIN_NAME)
            + keccak(text=DOMAIN_VERSION)
            + self.chain_id.to_bytes(32, "big")
            + _address_word(self.verifying_contract)
        )


@dataclass(frozen=True)
class Reading:
    """One ISP's measured energy at one meter (unsigned)."""

    meter: str
    isp_start: int
    sequence: int
    import_wh: int
    export_wh: int

    def __post_init__(self) -> None:
        if not isinstance(self.meter, str) or not is_checksum_address(self.meter):
            raise ReadingError(f"meter must be a checksummed address, not {self.meter!r}")
        for name in ("isp_start", "sequence", "import_wh", "export_wh"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= UINT64_MAX:
                raise ReadingError(f"{name} must be an integer in uint64, not {value!r}")
        if self.sequence == 0:
            raise ReadingError("sequence starts at 1")

    def message(self) -> dict[str, Any]:
        """The EIP-712 message (field names as in the typed data)."""
        return {
            "meter": self.meter,
            "ispStart": self.isp_start,
            "sequence": self.sequence,
            "importWh": self.import_wh,
            "exportWh": self.export_wh,
        }

    def typed_data(self, domain: OracleDomain) -> dict[str, Any]:
        """The full ``eth_signTypedData_v4`` payload."""
        return {
            "types": READING_TYPES,
            "primaryType": "Reading",
            "domain": domain.as_dict(),
            "message": self.message(),
        }

    def struct_hash(self) -> bytes:
        """``hashStruct(Reading)``, as the MeterOracle contract computes it."""
        return keccak(
            keccak(text=READING_TYPE)
            + _address_word(self.meter)
            + self.isp_start.to_bytes(32, "big")
            + self.sequence.to_bytes(32, "big")
            + self.import_wh.to_bytes(32, "big")
            + self.export_wh.to_bytes(32, "big")
        )

    def digest(self, domain: OracleDomain) -> bytes:
        """The 32-byte EIP-712 digest that the meter signs."""
        return keccak(b"\x19\x01" + domain.separator() + self.struct_hash())


@dataclass(frozen=True)
class SignedReading:
    """A reading with the meter's 65-byte signature."""

    reading: Reading
    signature: bytes

    def __post_init__(self) -> None:
        if len(self.signature) != 65 or self.signature[64] not in (27, 28):
            raise ReadingError("signature must be 65 bytes r || s || v with v in {27, 28}")

    def to_payload(self) -> dict[str, Any]:
        """The MQTT payload as a JSON-ready dict."""
        return {**self.reading.message(), "signature": "0x" + self.signature.hex()}

    def to_json(self) -> bytes:
        """The MQTT payload: UTF-8 JSON, compact, keys in a fixed order."""
        return json.dumps(self.to_payload(), separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_json(cls, payload: bytes | str) -> SignedReading:
        """Parse an MQTT payload; checks the shape, not the signature (see :func:`recover_signer`)."""
        try:
            data = json.loads(payload)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ReadingError(f"payload is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ReadingError("payload must be a JSON object")
        expected = {"meter", "ispStart", "sequence", "importWh", "exportWh", "signature"}
        if set(data) != expected:
            raise ReadingError(f"payload keys must be {sorted(expected)}, not {sorted(data)}")
        signature = data["signature"]
        if not isinstance(signature, str) or not signature.startswith("0x"):
            raise ReadingError("signature must be a 0x-prefixed hex string")
        try:
            raw = bytes.fromhex(signature[2:])
        except ValueError as exc:
            raise ReadingError("signature is not hex") from exc
        reading = Reading(
            meter=data["meter"],
            isp_start=data["ispStart"],
            sequence=data["sequence"],
            import_wh=data["importWh"],
            export_wh=data["exportWh"],
        )
        return cls(reading, raw)


class MeterSigner:
    """The meter's key, signing readings in one oracle domain."""

    def __init__(self, private_key: bytes, domain: OracleDomain) -> None:
        self._account = Account.from_key(private_key)
        self.domain = domain

    @property
    def address(self) -> str:
        """The meter's checksummed address."""
        return str(self._account.address)

    def sign(self, reading: Reading) -> SignedReading:
        """Sign a reading of this meter."""
        if reading.meter != self.address:
            raise ReadingError(f"reading is for meter {reading.meter}, this key is {self.address}")
        signed = self._account.sign_message(encode_typed_data(full_message=reading.typed_data(self.domain)))
        return SignedReading(reading, bytes(signed.signature))

    def sign_new(self, *, isp_start: int, sequence: int, import_wh: int, export_wh: int) -> SignedReading:
        """Build and sign this meter's reading."""
        return self.sign(Reading(self.address, isp_start, sequence, import_wh, export_wh))


def recover_signer(signed: SignedReading, domain: OracleDomain) -> str:
    """The address that signed a reading (checksummed); equal to ``reading.meter`` when genuine."""
    signable = encode_typed_data(full_message=signed.reading.typed_data(domain))
    return str(Account.recover_message(signable, signature=signed.signature))


def verify(signed: SignedReading, domain: OracleDomain) -> bool:
    """True when the reading was signed by the meter it names."""
    try:
        return recover_signer(signed, domain) == signed.reading.meter
    except ValueError:
        return False


def _address_word(address: str) -> bytes:
    raw = bytes.fromhex(address.removeprefix("0x"))
    if len(raw) != 20:
        raise ReadingError(f"not a 20-byte address: {address!r}")
    return raw.rjust(32, b"\x00")
