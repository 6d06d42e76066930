"""Meter readings as the oracle receives them: the MQTT payload, its EIP-712 type, and the
recovery of the meter that signed it (the broker in the middle is never trusted).

The type is the edge agent's (``edge-agent/flexledger_edge/reading.py``; the two are held
together by tests/oracle/test_oracle.py): ``Reading(address meter,uint64 ispStart,uint64 sequence,
uint64 importWh,uint64 exportWh)`` in the MeterOracle's domain; energies are those measured
during the ISP, in Wh; ``sequence`` counts a meter's readings from 1.
"""

from __future__ import annotations

import json
from dataclasses import astuple, dataclass
from typing import Any

from eth_abi import encode
from eth_utils import keccak, to_checksum_address

from flexledger.errors import FlexledgerError
from flexledger.identity.eip712 import Eip712Domain, TypedData, typed_digest

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
READING_ENCODING = ["address", "uint64", "uint64", "uint64", "uint64"]  # the signed fields, in order
# The Merkle leaves: the signed fields and keccak256 of the meter's signature, so that an anchored
# reading is provably the meter's word (MeterOracle.readingLeaf) and a second one equivocation.
LEAF_ENCODING = [*READING_ENCODING, "bytes32"]
UINT64 = 2**64
PAYLOAD_KEYS = {"meter", "ispStart", "sequence", "importWh", "exportWh", "signature"}
# A reading is a flat object of about 330 bytes. Anything much longer is refused before it is
# parsed: py_ecc (loaded with the chain libraries) raises Python's recursion limit to 100,000, so
# deeply nested JSON would overflow the C stack inside the json module and kill the oracle.
MAX_PAYLOAD_BYTES = 2048


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
        struct = keccak(encode(["bytes32", *READING_ENCODING], [READING_TYPEHASH, *astuple(self)]))
        return typed_digest(domain_separator, struct)

    def signed_values(self) -> list[Any]:
        return list(astuple(self))

    def leaf_values(self, signature: bytes) -> list[Any]:
        """The values of its Merkle leaf (``LEAF_ENCODING``), committing to the meter's ``signature``."""
        return [*astuple(self), keccak(signature)]


def parse_payload(payload: bytes) -> tuple[Reading, bytes]:
    """A reading and its 65-byte signature from an MQTT payload (``MalformedReadingError`` otherwise)."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise MalformedReadingError(f"{len(payload)} bytes: a reading has at most {MAX_PAYLOAD_BYTES}")
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
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
