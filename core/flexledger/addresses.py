"""Ethereum addresses as flexledger writes them: EIP-55 checksummed, remembered (the same parties
and contracts recur in log after log and offer after offer, and each checksum is a keccak)."""

from __future__ import annotations

from functools import lru_cache

from eth_utils import to_checksum_address


@lru_cache(maxsize=1 << 16)
def checksum(address: str | bytes) -> str:
    """``address`` (hex text or 20 bytes) in EIP-55 form."""
    return str(to_checksum_address(address))
