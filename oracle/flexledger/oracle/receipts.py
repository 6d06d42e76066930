"""The oracle's receipts: what it tells a meter's gateway it did with a reading, signed so that it
can be held to it.

A receipt is EIP-712 typed data ``ReadingReceipt(uint32 market,address meter,uint64 ispStart,
uint64 sequence,uint64 importWh,uint64 exportWh,bool accepted)`` in MeterOracle's domain, signed
by the oracle's key (the one that anchors). ``accepted`` is a promise: the reading is in the root
this oracle anchors for that ISP of that market; ``OmissionClaims`` marks and slashes an oracle
that breaks it; a receipt not ``accepted`` promises nothing and is not signed. It is given only for a reading stored (not a repeat, not late, not refused) whose
transaction committed before the ISP's anchoring could start (``accepted_until``): the anchoring
round reads the ISP's readings no earlier than ``ispStart + ispSeconds + grace`` on a clock never
ahead of the consumer's, so such a reading is in the tree it builds.

The digest is computed here (the struct is flat and static) and signed with coincurve: the
consumer signs every receipt, and eth-account's typed-data path costs several times more. Tests
hold it against eth-account's ``encode_typed_data`` and the contract's ``receiptDigest``.
"""

from __future__ import annotations

from typing import Any

from coincurve import PrivateKey
from eth_abi import encode
from eth_hash.auto import keccak as _keccak
from eth_utils import keccak, to_checksum_address

from flexledger.identity.eip712 import Eip712Domain, TypedData, typed_digest

from .readings import READING_ENCODING, Reading

RECEIPT_TYPES = {
    "ReadingReceipt": [
        {"name": "market", "type": "uint32"},
        {"name": "meter", "type": "address"},
        {"name": "ispStart", "type": "uint64"},
        {"name": "sequence", "type": "uint64"},
        {"name": "importWh", "type": "uint64"},
        {"name": "exportWh", "type": "uint64"},
        {"name": "accepted", "type": "bool"},
    ]
}
RECEIPT_TYPEHASH = keccak(text="ReadingReceipt(uint32 market,address meter,uint64 ispStart,uint64 sequence,"
                               "uint64 importWh,uint64 exportWh,bool accepted)")
_ENCODING = ["bytes32", "uint32", *READING_ENCODING, "bool"]


def receipt_message(market: int, reading: Reading, accepted: bool) -> dict[str, Any]:
    return {"market": market, **reading.message(), "accepted": accepted}


def receipt_typed(domain: Eip712Domain, market: int, reading: Reading, accepted: bool) -> TypedData:
    """The receipt as ``eth_signTypedData_v4`` data (what a wallet or an auditor checks)."""
    return TypedData(domain, "ReadingReceipt", RECEIPT_TYPES, receipt_message(market, reading, accepted))


def receipt_digest(domain_separator: bytes, market: int, reading: Reading, accepted: bool) -> bytes:
    """``MeterOracle.receiptDigest``: the EIP-712 digest of a receipt, hashed directly. Every field
    is static, so its ABI encoding is one 32-byte big-endian word each, packed here by hand: the
    ABI encoder took longer than the signature itself (tests hold it to ``encode`` and eth-account)."""
    words = [market, reading.isp_start, reading.sequence, reading.import_wh, reading.export_wh, int(accepted)]
    if not 0 <= market < 2**32 or not all(0 <= w < 2**64 for w in words[1:5]):
        raise ValueError("a receipt's market is a uint32 and its ISP, sequence and energies uint64")
    meter = bytes.fromhex(reading.meter[2:])
    struct = _keccak(RECEIPT_TYPEHASH + words[0].to_bytes(32, "big") + bytes(12) + meter
                     + b"".join(w.to_bytes(32, "big") for w in words[1:]))
    return _keccak(b"\x19\x01" + domain_separator + struct)  # typed_digest, without eth_utils' dispatch


def receipt_digest_abi(domain_separator: bytes, market: int, reading: Reading, accepted: bool) -> bytes:
    """``receipt_digest`` through the ABI encoder: what the hand-packed one is tested against."""
    struct = keccak(encode(_ENCODING, [RECEIPT_TYPEHASH, market, reading.meter, reading.isp_start, reading.sequence,
                                       reading.import_wh, reading.export_wh, accepted]))
    return typed_digest(domain_separator, struct)


class ReceiptSigner:
    """Signs receipts with the oracle's key for one market in one MeterOracle domain."""

    def __init__(self, key: bytes, domain_separator: bytes, market: int) -> None:
        self._key = PrivateKey(key)
        self.domain_separator, self.market = domain_separator, market
        self.address = to_checksum_address(keccak(self._key.public_key.format(compressed=False)[1:])[-20:])

    def sign(self, reading: Reading, accepted: bool) -> bytes:
        """A 65-byte signature (r || s || v, v in {27, 28}, low s) over the receipt's digest."""
        raw = self._key.sign_recoverable(receipt_digest(self.domain_separator, self.market, reading, accepted),
                                         hasher=None)
        return raw[:64] + bytes([raw[64] + 27])
