"""``did:ethr`` identifiers: parsing and formatting as the did:ethr method specifies.

``did:ethr:[<network>:]<identifier>``: the network is a hex chain id (``0x7a69``) or a name
(``mainnet``, ``sepolia``, ``rsk:testnet``, ...; absent means mainnet), the identifier an
Ethereum address or a compressed secp256k1 public key (whose address is the identity).
flexledger writes its own DIDs with the hex chain id, so the chain a DID lives on is explicit:
``did:ethr:0x7a69:0xf39F...``; it reads every form the method allows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from eth_keys import keys as eth_keys
from eth_utils import is_checksum_address, to_checksum_address

from flexledger.errors import FlexledgerError

PREFIX = "did:ethr:"
# The names the did:ethr reference resolver knows, with their chain ids. Names may hold a ':'.
NAMED_NETWORKS = {
    "mainnet": 1,
    "goerli": 5,
    "rsk": 30,
    "rsk:testnet": 31,
    "gno": 100,
    "polygon": 137,
    "ewc": 246,
    "holesky": 17000,
    "linea:goerli": 59140,
    "volta": 73799,
    "polygon:test": 80001,
    "artis:sigma1": 246529,
    "artis:tau1": 246785,
    "sepolia": 11155111,
    "aurora": 1313161554,
}
_HEX_CHAIN = re.compile(r"^0x[0-9a-fA-F]+$")
_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9_.-]*$")
_HEX = re.compile(r"^0x[0-9a-fA-F]*$")
_HINT = "write it as did:ethr:0x<chain id in hex>:0x<the 40 hex digits of the address>, e.g. did:ethr:0x7a69:0xf39F..."


class MalformedDIDError(FlexledgerError):
    """A string that is not a valid did:ethr DID (or address) where one is needed."""

    def __init__(self, did: str, problem: str) -> None:
        super().__init__(f"{did!r} is not a valid did:ethr DID: {problem}", hint=_HINT)
        self.did = did
        self.problem = problem


@dataclass(frozen=True)
class EthrDID:
    """A parsed did:ethr: the identity's address, its network and, if that was the identifier, the key.

    ``text`` is the DID as written, without path, query or fragment: a DID document's ``id`` is
    the DID exactly as it was asked for, so it is kept rather than re-formatted.
    """

    address: str  # EIP-55 checksummed
    network: str  # as written: a hex chain id, a name, or "mainnet" when absent
    chain_id: int | None  # None for a network name flexledger does not know
    public_key: bytes | None  # the 33-byte compressed key when the identifier is a key
    text: str

    def __str__(self) -> str:
        return self.text

    @property
    def identifier(self) -> str:
        """The method-specific identifier as written (the address, or the public key in hex)."""
        return self.text.rsplit(":", 1)[1]


def format_did(address: str, chain_id: int) -> str:
    """flexledger's canonical form: ``did:ethr:0x<chain id hex>:<checksummed address>``."""
    return str(did_for(address, chain_id))


def did_for(address: str, chain_id: int) -> EthrDID:
    """The DID of ``address`` on chain ``chain_id``, as flexledger writes DIDs."""
    if not isinstance(address, str) or not _HEX.match(address) or len(address) != 42:
        raise MalformedDIDError(str(address), "an address is 0x and 40 hex digits")
    if chain_id <= 0:
        raise MalformedDIDError(str(address), f"chain id {chain_id} is not positive")
    checksummed = to_checksum_address(address)
    return EthrDID(checksummed, hex(chain_id), chain_id, None, f"{PREFIX}{hex(chain_id)}:{checksummed}")


def _network(text: str, network: str) -> int | None:
    if _HEX_CHAIN.match(network):
        chain_id = int(network, 16)
        if chain_id == 0:
            raise MalformedDIDError(text, "chain id 0x0 is not a chain")
        return chain_id
    if not all(_NAME.match(part) for part in network.split(":")):
        raise MalformedDIDError(text, f"bad network {network!r}: neither a 0x-hex chain id nor a network name")
    return NAMED_NETWORKS.get(network)


def parse_did(text: str) -> EthrDID:
    """Parse ``text`` (a DID or DID URL); :class:`MalformedDIDError` says exactly what is wrong."""
    if not isinstance(text, str) or not text.startswith(PREFIX):
        raise MalformedDIDError(str(text), "it does not start with 'did:ethr:'")
    did = re.split(r"[/?#]", text, maxsplit=1)[0]
    rest = did[len(PREFIX) :]
    network, colon, identifier = rest.rpartition(":")
    if colon and not network:
        raise MalformedDIDError(text, "the network before the identifier is empty")
    if not identifier:
        raise MalformedDIDError(text, "the identifier (address or public key) is missing")
    chain_id = _network(text, network) if network else 1
    if not _HEX.match(identifier):
        raise MalformedDIDError(text, f"the identifier {identifier!r} is not 0x-prefixed hex")
    digits = len(identifier) - 2
    if digits == 40:
        mixed_case = identifier[2:] not in (identifier[2:].lower(), identifier[2:].upper())
        if mixed_case and not is_checksum_address(identifier):
            raise MalformedDIDError(text, "the address has a wrong EIP-55 checksum (mixed case that does not match)")
        return EthrDID(to_checksum_address(identifier), network or "mainnet", chain_id, None, did)
    if digits == 66:
        raw = bytes.fromhex(identifier[2:])
        if raw[0] not in (2, 3):
            raise MalformedDIDError(text, "a public-key identifier must be a compressed secp256k1 key (02... or 03...)")
        try:
            key = eth_keys.PublicKey.from_compressed_bytes(raw)
        except Exception:  # eth-keys raises several types for a point off the curve
            raise MalformedDIDError(text, "the public key is not a point on secp256k1") from None
        return EthrDID(key.to_checksum_address(), network or "mainnet", chain_id, raw, did)
    raise MalformedDIDError(
        text, f"the identifier has {digits} hex digits; an address has 40, a compressed public key 66"
    )


def subject_address(subject: str, chain_id: int | None = None) -> str:
    """The address named by an address or a did:ethr (whose chain must be ``chain_id`` if given)."""
    if subject.startswith("did:"):
        did = parse_did(subject)
        if chain_id is not None and did.chain_id != chain_id:
            raise MalformedDIDError(
                subject, f"it names network {did.network!r}, but the chain connected to is {hex(chain_id)}"
            )
        return did.address
    if not _HEX.match(subject) or len(subject) != 42:
        raise MalformedDIDError(subject, "neither a did:ethr nor a 0x-address of 40 hex digits")
    mixed_case = subject[2:] not in (subject[2:].lower(), subject[2:].upper())
    if mixed_case and not is_checksum_address(subject):
        raise MalformedDIDError(subject, "the address has a wrong EIP-55 checksum")
    return to_checksum_address(subject)
