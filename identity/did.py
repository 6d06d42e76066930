"""``did:ethr`` identifiers: parsing and formatting as the did:ethr method specifies.

``did:ethr:[<network>:]<identifier>``: the network is a hex chain id (``0x7a69``) or a name
(``mainnet``, ``sepolia``, ...; absent means mainnet), the identifier an Ethereum address or a
compressed secp256k1 public key. flexledger writes its own DIDs with the hex chain id, so the
chain a DID lives on is explicit: ``did:ethr:0x7a69:0xf39F...``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from eth_keys import keys as eth_keys
from eth_utils import is_checksum_address, to_checksum_address

from flexledger.errors import FlexledgerError

PREFIX = "did:ethr:"
NAMED_NETWORKS = {"mainnet": 1, "sepolia": 11155111, "holesky": 17000, "goerli": 5, "ewc": 246, "volta": 73799}
_NETWORK = re.compile(r"^(0x[0-9a-fA-F]+|[a-zA-Z][a-zA-Z0-9_.-]*)$")
_HEX = re.compile(r"^0x[0-9a-fA-F]+$")


class MalformedDIDError(FlexledgerError):
    """A string that is not a valid did:ethr DID."""

    def __init__(self, did: str, problem: str) -> None:
        super().__init__(
            f"{did!r} is not a valid did:ethr DID: {problem}",
            hint="write it as did:ethr:0x<chain id in hex>:0x<40 hex digits of the address>",
        )
        self.did = did


@dataclass(frozen=True)
class EthrDID:
    """A parsed did:ethr: the identity address, its network and, if it was the identifier, the public key."""

    address: str
    network: str  # as written: a hex chain id, a name, or "mainnet" when absent
    chain_id: int | None  # None for a network name flexledger does not know
    public_key: bytes | None = None
    text: str = ""

    def __str__(self) -> str:
        return self.text or format_did(self.address, self.chain_id or 1)


def format_did(address: str, chain_id: int) -> str:
    """flexledger's canonical form: ``did:ethr:0x<chain id hex>:<checksummed address>``."""
    return f"{PREFIX}{hex(chain_id)}:{to_checksum_address(address)}"


def did_for(address: str, chain_id: int) -> EthrDID:
    text = format_did(address, chain_id)
    return EthrDID(to_checksum_address(address), hex(chain_id), chain_id, None, text)


def parse_did(text: str) -> EthrDID:
    """Parse ``text``; :class:`MalformedDIDError` says exactly what is wrong."""
    if not isinstance(text, str) or not text.startswith(PREFIX):
        raise MalformedDIDError(str(text), "it does not start with 'did:ethr:'")
    rest = text[len(PREFIX) :]
    for cut in ("#", "?", "/"):
        rest = rest.split(cut, 1)[0]
    parts = rest.split(":")
    if len(parts) == 1:
        network, identifier = "mainnet", parts[0]
    elif len(parts) == 2:
        network, identifier = parts
    else:
        raise MalformedDIDError(text, "too many ':'-separated parts")
    if not _NETWORK.match(network):
        raise MalformedDIDError(text, f"bad network {network!r}")
    chain_id = int(network, 16) if network.startswith("0x") else NAMED_NETWORKS.get(network)
    if not _HEX.match(identifier):
        raise MalformedDIDError(text, f"the identifier {identifier!r} is not 0x-prefixed hex")
    digits = len(identifier) - 2
    if digits == 40:
        if identifier != identifier.lower() and identifier[2:] != identifier[2:].upper() and not is_checksum_address(identifier):
            raise MalformedDIDError(text, "the address has a wrong EIP-55 checksum")
        return EthrDID(to_checksum_address(identifier), network, chain_id, None, text)
    if digits == 66:
        raw = bytes.fromhex(identifier[2:])
        if raw[0] not in (2, 3):
            raise MalformedDIDError(text, "a public-key identifier must be a compressed secp256k1 key (02/03...)")
        try:
            key = eth_keys.PublicKey.from_compressed_bytes(raw)
        except Exception as exc:
            raise MalformedDIDError(text, f"not a point on secp256k1 ({exc})") from None
        return EthrDID(key.to_checksum_address(), network, chain_id, raw, text)
    raise MalformedDIDError(text, f"the identifier has {digits} hex digits; an address has 40, a public key 66")


def subject_address(subject: str, chain_id: int | None = None) -> str:
    """An address from either an address or a did:ethr (checked against ``chain_id`` if given)."""
    if subject.startswith("did:"):
        did = parse_did(subject)
        if chain_id is not None and did.chain_id is not None and did.chain_id != chain_id:
            raise MalformedDIDError(subject, f"it names chain {did.chain_id}, but this is chain {chain_id}")
        return did.address
    if not _HEX.match(subject) or len(subject) != 42:
        raise MalformedDIDError(subject, "neither a did:ethr nor a 0x-address")
    return to_checksum_address(subject)
