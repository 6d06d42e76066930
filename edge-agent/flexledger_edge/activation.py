"""Activation orders as EIP-712 typed data, signed by the market's dispatcher.

An order is the primary type (``MarketRegistry.ActivationOrder``)::

    ActivationOrder(bytes32 orderId,uint32 market,uint64 asset,uint64 ispStart,uint16 isps,uint8 direction,
                    uint32 powerW,uint64 expiresAt,uint64 resultId,bytes32 offerDigest)

in the MarketRegistry's domain ``{name: "flexledger MarketRegistry", version: "1", chainId,
verifyingContract}`` (the contract publishes it with ERC-5267 ``eip712Domain()``). ``direction``
is 0 for UP and 1 for DOWN, as on chain. The signer must be the address the registry names as
the market's dispatcher (``MarketRegistry.dispatcher(market)``); any wallet's
``eth_signTypedData_v4`` of :meth:`ActivationOrder.typed_data` gives a valid signature.

On MQTT the order is JSON: the message's fields (``orderId`` and ``offerDigest`` as 0x-hex,
``direction`` as ``"UP"``/``"DOWN"``), ``signature`` (0x-hex, 65 bytes), and, so that a gateway
with a chain endpoint can check the award itself, ``award``::

    {"offer": {<OrderBook.Offer fields>}, "proofs": [{"chunk", "requestId", "ispStart", "powerW",
     "levelW", "proof": ["0x..", ...]}, ...]}

one proof per ISP of the order (``ClearingCommitment.isAwarded``'s ``AwardProof``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak, to_checksum_address

DOMAIN_NAME = "flexledger MarketRegistry"
DOMAIN_VERSION = "1"
ORDER_TYPE = (
    "ActivationOrder(bytes32 orderId,uint32 market,uint64 asset,uint64 ispStart,uint16 isps,uint8 direction,"
    "uint32 powerW,uint64 expiresAt,uint64 resultId,bytes32 offerDigest)"
)
DIRECTIONS = ("UP", "DOWN")  # index = the on-chain uint8
MAX_PAYLOAD_BYTES = 64 * 1024
MAX_PROOF_DEPTH = 40
MAX_PROOFS = 672  # a week of 15-minute ISPs
# The offer's fields in OrderBook.Offer's order, with their ABI types (for ClearingCommitment.offerDigest).
OFFER_FIELDS = (
    ("market", "uint32"), ("asset", "uint64"), ("portfolio", "uint32"), ("start", "uint64"), ("isps", "uint16"),
    ("direction", "uint8"), ("powerW", "uint32"), ("price", "uint96"), ("mode", "uint8"), ("minPowerW", "uint32"),
    ("baselineMethod", "uint8"), ("baseline", "bytes32"), ("expiry", "uint64"), ("nonce", "uint32"),
)

ORDER_TYPES: dict[str, list[dict[str, str]]] = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ],
    "ActivationOrder": [
        {"name": "orderId", "type": "bytes32"},
        {"name": "market", "type": "uint32"},
        {"name": "asset", "type": "uint64"},
        {"name": "ispStart", "type": "uint64"},
        {"name": "isps", "type": "uint16"},
        {"name": "direction", "type": "uint8"},
        {"name": "powerW", "type": "uint32"},
        {"name": "expiresAt", "type": "uint64"},
        {"name": "resultId", "type": "uint64"},
        {"name": "offerDigest", "type": "bytes32"},
    ],
}
_BITS = {"market": 32, "asset": 64, "ispStart": 64, "isps": 16, "powerW": 32, "expiresAt": 64, "resultId": 64}


class OrderError(ValueError):
    """An order payload that cannot be read; the message is the rejection reason."""


@dataclass(frozen=True)
class RegistryDomain:
    """The EIP-712 domain orders are signed in: one chain, one MarketRegistry."""

    chain_id: int
    verifying_contract: str

    def as_dict(self) -> dict[str, Any]:
        return {"name": DOMAIN_NAME, "version": DOMAIN_VERSION, "chainId": self.chain_id,
                "verifyingContract": to_checksum_address(self.verifying_contract)}


@dataclass(frozen=True)
class AwardProof:
    """One award of the order's offer in one ISP, and its Merkle proof under its chunk's root."""

    chunk: int
    request_id: int
    isp_start: int
    power_w: int
    level_w: int
    proof: tuple[bytes, ...]

    def to_payload(self) -> dict[str, Any]:
        return {"chunk": self.chunk, "requestId": self.request_id, "ispStart": self.isp_start, "powerW": self.power_w,
                "levelW": self.level_w, "proof": ["0x" + p.hex() for p in self.proof]}


@dataclass(frozen=True)
class AwardEvidence:
    """What lets a gateway check an order against the chain: the awarded offer and its awards' proofs."""

    offer: dict[str, int | bytes]
    proofs: tuple[AwardProof, ...]

    def offer_tuple(self) -> tuple[int | bytes, ...]:
        return tuple(self.offer[name] for name, _ in OFFER_FIELDS)

    def to_payload(self) -> dict[str, Any]:
        offer = {k: ("0x" + v.hex() if isinstance(v, bytes) else v) for k, v in self.offer.items()}
        return {"offer": offer, "proofs": [p.to_payload() for p in self.proofs]}


@dataclass(frozen=True)
class ActivationOrder:
    """An activation order as the dispatcher signs it."""

    order_id: bytes
    market: int
    asset: int
    isp_start: int
    isps: int
    direction: str  # "UP" | "DOWN"
    power_w: int
    expires_at: int
    result_id: int
    offer_digest: bytes

    @property
    def order_id_hex(self) -> str:
        return "0x" + self.order_id.hex()

    def end(self, isp_seconds: int) -> int:
        return self.isp_start + self.isps * isp_seconds

    def message(self) -> dict[str, Any]:
        return {
            "orderId": self.order_id, "market": self.market, "asset": self.asset, "ispStart": self.isp_start,
            "isps": self.isps, "direction": DIRECTIONS.index(self.direction), "powerW": self.power_w,
            "expiresAt": self.expires_at, "resultId": self.result_id, "offerDigest": self.offer_digest,
        }

    def typed_data(self, domain: RegistryDomain) -> dict[str, Any]:
        """The full ``eth_signTypedData_v4`` payload."""
        return {"types": ORDER_TYPES, "primaryType": "ActivationOrder", "domain": domain.as_dict(),
                "message": self.message()}

    def digest(self, domain: RegistryDomain) -> bytes:
        """The 32-byte EIP-712 digest (``MarketRegistry.activationOrderDigest``)."""
        d = domain.as_dict()
        separator = keccak(
            keccak(text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
            + keccak(text=d["name"]) + keccak(text=d["version"]) + domain.chain_id.to_bytes(32, "big")
            + bytes.fromhex(d["verifyingContract"][2:]).rjust(32, b"\0")
        )
        words = b"".join(
            v if isinstance(v, bytes) else int(v).to_bytes(32, "big") for v in self.message().values()
        )
        return keccak(b"\x19\x01" + separator + keccak(keccak(text=ORDER_TYPE) + words))

    def sign(self, private_key: bytes, domain: RegistryDomain) -> bytes:
        """The dispatcher's 65-byte signature (``r || s || v``, v in {27, 28})."""
        signed = Account.sign_message(encode_typed_data(full_message=self.typed_data(domain)), private_key)
        return bytes(signed.signature)

    def to_payload(self, signature: bytes, award: AwardEvidence | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "orderId": self.order_id_hex, "market": self.market, "asset": self.asset, "ispStart": self.isp_start,
            "isps": self.isps, "direction": self.direction, "powerW": self.power_w, "expiresAt": self.expires_at,
            "resultId": self.result_id, "offerDigest": "0x" + self.offer_digest.hex(), "signature": "0x" + signature.hex(),
        }
        if award is not None:
            payload["award"] = award.to_payload()
        return payload

    def to_json(self, signature: bytes, award: AwardEvidence | None = None) -> bytes:
        return json.dumps(self.to_payload(signature, award), separators=(",", ":")).encode("utf-8")


@dataclass(frozen=True)
class SignedOrder:
    """An order read from MQTT: the order, its signature, and the award evidence if it came with it."""

    order: ActivationOrder
    signature: bytes
    award: AwardEvidence | None

    def signer(self, domain: RegistryDomain) -> str | None:
        """The address that signed the order (checksummed), or None when the signature is unusable."""
        try:
            signable = encode_typed_data(full_message=self.order.typed_data(domain))
            return str(Account.recover_message(signable, signature=self.signature))
        except Exception:  # eth-keys raises its own BadSignature (a ValueError subclass only in some versions)
            return None


def _hex(value: Any, key: str, length: int | None) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise OrderError(f"malformed order: {key} must be 0x-prefixed hex")
    try:
        raw = bytes.fromhex(value[2:])
    except ValueError as exc:
        raise OrderError(f"malformed order: {key} is not hex") from exc
    if length is not None and len(raw) != length:
        raise OrderError(f"malformed order: {key} must be {length} bytes")
    return raw


def _uint(data: dict[str, Any], key: str, bits: int, minimum: int = 0) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise OrderError(f"malformed order: {key} must be an integer")
    if not minimum <= value < 2**bits:
        raise OrderError(f"malformed order: {key} must be between {minimum} and {2**bits - 1}")
    return value


def _award(data: Any) -> AwardEvidence:
    if not isinstance(data, dict) or not isinstance(data.get("offer"), dict) or not isinstance(data.get("proofs"), list):
        raise OrderError("malformed order: award must be {offer: {...}, proofs: [...]}")
    offer: dict[str, int | bytes] = {}
    for name, kind in OFFER_FIELDS:
        if kind == "bytes32":
            offer[name] = _hex(data["offer"].get(name), f"award.offer.{name}", 32)
        else:
            offer[name] = _uint(data["offer"], name, int(kind[4:]))
    if len(data["proofs"]) > MAX_PROOFS:
        raise OrderError(f"malformed order: more than {MAX_PROOFS} award proofs")
    proofs = []
    for item in data["proofs"]:
        if not isinstance(item, dict) or not isinstance(item.get("proof"), list) or len(item["proof"]) > MAX_PROOF_DEPTH:
            raise OrderError("malformed order: each award proof needs chunk, requestId, ispStart, powerW, levelW, proof")
        proofs.append(AwardProof(
            _uint(item, "chunk", 32), _uint(item, "requestId", 64), _uint(item, "ispStart", 64),
            _uint(item, "powerW", 32), _uint(item, "levelW", 32),
            tuple(_hex(p, "award.proofs.proof", 32) for p in item["proof"]),
        ))
    return AwardEvidence(offer, tuple(proofs))


def parse_signed_order(payload: bytes | str) -> SignedOrder:
    """Read an order's JSON, or raise :class:`OrderError` (nothing is checked against a signer here)."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise OrderError(f"malformed order: larger than {MAX_PAYLOAD_BYTES} bytes")
    try:
        data = json.loads(payload)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise OrderError(f"malformed order: not JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise OrderError("malformed order: not a JSON object")
    direction = data.get("direction")
    if direction not in DIRECTIONS:
        raise OrderError('malformed order: direction must be "UP" or "DOWN"')
    order = ActivationOrder(
        order_id=_hex(data.get("orderId"), "orderId", 32),
        market=_uint(data, "market", _BITS["market"], 1),
        asset=_uint(data, "asset", _BITS["asset"]),
        isp_start=_uint(data, "ispStart", _BITS["ispStart"]),
        isps=_uint(data, "isps", _BITS["isps"], 1),
        direction=direction,
        power_w=_uint(data, "powerW", _BITS["powerW"], 1),
        expires_at=_uint(data, "expiresAt", _BITS["expiresAt"]),
        result_id=_uint(data, "resultId", _BITS["resultId"]),
        offer_digest=_hex(data.get("offerDigest"), "offerDigest", 32),
    )
    signature = _hex(data.get("signature"), "signature", 65)
    award = _award(data["award"]) if data.get("award") is not None else None
    return SignedOrder(order, signature, award)


def order_id_of(payload: bytes | str) -> str:
    """The orderId of a payload that failed validation, when it can be read at all (for the ack)."""
    try:
        data = json.loads(payload)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        return ""
    order_id = data.get("orderId") if isinstance(data, dict) else None
    return order_id if isinstance(order_id, str) and len(order_id) <= 66 else ""
