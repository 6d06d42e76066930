"""Meter readings as the oracle receives them: the MQTT payload, its EIP-712 type, and the
recovery of the meter that signed it (the broker in the middle is never trusted).

The type is the edge agent's (``edge-agent/flexledger_edge/reading.py``; the two are held
together by tests/test_oracle.py): ``Reading(address meter,uint64 ispStart,uint64 sequence,
uint64 importWh,uint64 exportWh)`` in the MeterOracle's domain; energies are those measured
during the ISP, in Wh; ``sequence`` counts a meter's readings from 1.
"""

from __future__ import annotations

import json
from dataclasses import astuple, dataclass
from typing import Any

from coincurve import PublicKey
from eth_abi import encode
from eth_utils import keccak, to_checksum_address

from flexledger.errors import FlexledgerError
from flexledger.identity.eip712 import Eip712Domain, TypedData

READING_TYPES = {
    "Reading": [
        {"name": "meter", "type": "address"},
        {"name": "ispStart", "type": "uint64"},
        {"name": "sequence", "type": "uint64"},
        {"name": "importWh", "type": "uint64"},
        {"name": "exportWh", "type": "uint64"},
    ]
}
READING_TYPEHASH = keccak(text="Reading(address meter,uint64 ispStart,uint64 sequence,uint64 importWh,uint64 exportWh)")
LEAF_ENCODING = ["address", "uint64", "uint64", "uint64", "uint64"]  # the Merkle leaves: the same fields
UINT64 = 2**64
SECP256K1_HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0
PAYLOAD_KEYS = {"meter", "ispStart", "sequence", "importWh", "exportWh", "signature"}


class MalformedReadingError(FlexledgerError):
    """A payload that is not a reading (the message says which part)."""


@dataclass(frozen=True)
class Reading:
    meter: str  # checksummed address
    isp_start: int
    sequence: int
    import_wh: int
    export_wh: int

    def message(self) -> dict[str, Any]:
        return {"meter": self.meter, "ispStart": self.isp_start, "sequence": self.sequence,
                "importWh": self.import_wh, "exportWh": self.export_wh}

    def typed(self, domain: Eip712Domain) -> TypedData:
        return TypedData(domain, "Reading", READING_TYPES, self.message())

    def digest(self, domain_separator: bytes) -> bytes:
        """The EIP-712 digest (``typed(domain).digest()``, fast: the struct is flat and static)."""
        struct = keccak(encode(["bytes32", *LEAF_ENCODING], [READING_TYPEHASH, *astuple(self)]))
        return keccak(b"\x19\x01" + domain_separator + struct)

    def leaf_values(self) -> list[Any]:
        return list(astuple(self))


def parse_payload(payload: bytes) -> tuple[Reading, bytes]:
    """A reading and its 65-byte signature from an MQTT payload (``MalformedReadingError`` otherwise)."""
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedReadingError(f"not JSON: {exc}") from None
    if not isinstance(data, dict) or set(data) != PAYLOAD_KEYS:
        raise MalformedReadingError(f"a reading has exactly the keys {sorted(PAYLOAD_KEYS)}")
    numbers = [data[k] for k in ("ispStart", "sequence", "importWh", "exportWh")]
    if not all(type(n) is int and 0 <= n < UINT64 for n in numbers):
        raise MalformedReadingError("ispStart, sequence, importWh and exportWh are integers of 0 to 2^64 - 1")
    try:
        meter = to_checksum_address(data["meter"])
        signature = bytes.fromhex(str(data["signature"]).removeprefix("0x"))
    except (ValueError, TypeError) as exc:
        raise MalformedReadingError(f"bad meter or signature: {exc}") from None
    if len(signature) != 65:
        raise MalformedReadingError(f"a signature has 65 bytes, not {len(signature)}")
    return Reading(meter, *numbers), signature


def recover_meter(digest: bytes, signature: bytes) -> str | None:
    """Who signed ``digest`` (OpenZeppelin ECDSA's rules: v 27 or 28, low s), or None. Uses
    coincurve, about twice as fast as eth-account here."""
    v = signature[64]
    if v not in (27, 28) or int.from_bytes(signature[32:64], "big") > SECP256K1_HALF_N:
        return None
    try:
        key = PublicKey.from_signature_and_message(signature[:64] + bytes([v - 27]), digest, hasher=None)
    except Exception:  # coincurve raises several types for a signature off the curve
        return None
    return to_checksum_address(keccak(key.format(compressed=False)[1:])[-20:])
