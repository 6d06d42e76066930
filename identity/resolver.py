"""Resolving did:ethr DIDs from the ERC-1056 registry's events into DID documents.

The document is built the way the did:ethr method specifies and the reference resolver
(npm ``ethr-did-resolver``) does, so both give the same document for the same chain; a test
holds them against each other. Two differences, both deliberate: "now" (which delegates and
attributes are still valid) is the latest block's timestamp, not this machine's clock, so the
answer does not depend on who asks, and a delegate or attribute is valid while its validTo is
strictly after "now", as the registry's ``validDelegate`` has it (the reference also accepts the
second of validTo itself); and errors raise instead of returning an error record.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import re
import warnings
from dataclasses import dataclass, field
from typing import Any

import pydid
from eth_utils import to_checksum_address

from flexledger.chain.bindings import DIDRegistryClient
from flexledger.chain.connection import ChainConnection
from flexledger.chain.events import decode_logs, event_topic

from .did import EthrDID, parse_did

CONTEXT = [
    "https://www.w3.org/ns/did/v1",
    "https://w3id.org/security/suites/secp256k1recovery-2020/v2",
    "https://w3id.org/security/v3-unstable",
]
NULL_ADDRESS = "0x0000000000000000000000000000000000000000"
RECOVERY_2020 = "EcdsaSecp256k1RecoveryMethod2020"
SECP256K1_2019 = "EcdsaSecp256k1VerificationKey2019"
# did:ethr attribute names: did/pub/<algorithm>/<purpose>/<encoding>, did/svc/<service type>
_ATTRIBUTE = re.compile(r"^did/(pub|svc)/(\w+)(/(\w+))?(/(\w+))?$")
_PURPOSE_TYPES = {"sigAuth": "SignatureAuthentication2018", "veriKey": "VerificationKey2018", "enc": "KeyAgreementKey2019"}
_KEY_TYPES = {
    "Secp256k1VerificationKey2018": SECP256K1_2019,
    "Ed25519SignatureAuthentication2018": "Ed25519VerificationKey2018",
    "Secp256k1SignatureAuthentication2018": SECP256K1_2019,
    "RSAVerificationKey2018": "RSAVerificationKey2018",
    "Ed25519VerificationKey2018": "Ed25519VerificationKey2018",
    "X25519KeyAgreementKey2019": "X25519KeyAgreementKey2019",
}
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


@dataclass(frozen=True)
class RegistryEvent:
    """One ERC-1056 event, with its bytes32 fields read as text."""

    name: str
    block: int
    args: dict[str, Any]


@dataclass
class Resolution:
    """A DID document with its metadata, as a DID resolver returns them."""

    did: str
    document: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def deactivated(self) -> bool:
        return bool(self.metadata.get("deactivated"))

    def pydid_document(self) -> Any:
        """The document as a pydid object (validated by pydid's model)."""
        logging.getLogger("pydid").setLevel(logging.CRITICAL)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pydid.deserialize_document(self.document)

    def to_json(self) -> dict[str, Any]:
        return {
            "didDocument": self.document,
            "didDocumentMetadata": self.metadata,
            "didResolutionMetadata": {"contentType": "application/did+ld+json"},
        }


def _text(raw: bytes) -> str | None:
    try:
        return raw.decode("utf-8").rstrip("\0")
    except UnicodeDecodeError:
        return None


def _b58(raw: bytes) -> str:
    number = int.from_bytes(raw, "big")
    out = ""
    while number:
        number, rest = divmod(number, 58)
        out = _B58[rest] + out
    return "1" * (len(raw) - len(raw.lstrip(b"\0"))) + out


def _iso(timestamp: int) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class DIDResolver:
    """Resolves did:ethr DIDs of one chain against one ERC-1056 registry."""

    def __init__(self, conn: ChainConnection, registry_address: str) -> None:
        self.conn = conn
        self.registry = DIDRegistryClient(conn, registry_address)
        self._topics = [
            "0x" + event_topic("DIDRegistry", n).hex()
            for n in ("DIDOwnerChanged", "DIDDelegateChanged", "DIDAttributeChanged")
        ]

    def history(self, address: str) -> list[RegistryEvent]:
        """The identity's events, oldest first, found by walking ``previousChange`` back."""
        events: list[RegistryEvent] = []
        block = self.registry.changed(address)
        topic = "0x" + bytes.fromhex(address[2:].lower()).rjust(32, b"\0").hex()
        while block:
            logs = self.conn.w3.eth.get_logs(
                {"address": self.registry.address, "fromBlock": block, "toBlock": block, "topics": [None, topic]}
            )
            in_block: list[RegistryEvent] = []
            previous = 0
            for event in decode_logs(logs):
                change = int(event.args.get("previousChange", 0))
                if 0 < change < block and (previous == 0 or change < previous):
                    previous = change
                args = dict(event.args)
                readable = True
                for key in ("delegateType", "name"):
                    if key in args:
                        text = _text(args[key])
                        readable = readable and text is not None
                        args[key] = text
                if readable:
                    in_block.append(RegistryEvent(event.name, event.block_number, args))
            events = in_block + events
            block = previous
        return events

    def resolve(self, did: str | EthrDID) -> Resolution:
        parsed = parse_did(did) if isinstance(did, str) else did
        text = str(parsed)
        chain_id = parsed.chain_id if parsed.chain_id is not None else self.conn.chain_id
        history = self.history(parsed.address)
        latest = self.conn.w3.eth.get_block("latest")
        document, deactivated, version = build_document(
            text, parsed.address, parsed.public_key, history, chain_id, int(latest["timestamp"])
        )
        metadata: dict[str, Any] = {"deactivated": True} if deactivated else {}
        if version:
            block = self.conn.w3.eth.get_block(version)
            metadata.update(versionId=str(version), updated=_iso(int(block["timestamp"])))
        return Resolution(text, document, metadata)


def build_document(
    did: str,
    address: str,
    controller_key: bytes | None,
    history: list[RegistryEvent],
    chain_id: int,
    now: int,
) -> tuple[dict[str, Any], bool, int]:
    """The DID document of ``did`` after ``history``: (document, deactivated, version block)."""
    controller = to_checksum_address(address)
    version = 0
    deactivated = False
    delegates = services = 0
    methods: dict[str, dict[str, Any]] = {}
    auth: dict[str, str] = {}
    signing: dict[str, str] = {}
    agreement: dict[str, str] = {}
    service_list: dict[str, dict[str, Any]] = {}

    for event in history:
        version = max(version, event.block)
        args = event.args
        key = f"{event.name}-{args.get('delegateType') or args.get('name')}-{_index_value(args)}"
        valid_to = int(args.get("validTo") or 0)
        if valid_to and valid_to > now:  # the registry's own rule (validDelegate): strictly after
            if event.name == "DIDDelegateChanged":
                delegates += 1
                kind = args["delegateType"]
                if kind in ("sigAuth", "veriKey"):
                    ref = f"{did}#delegate-{delegates}"
                    if kind == "sigAuth":
                        auth[key] = ref
                    methods[key] = {
                        "id": ref,
                        "type": RECOVERY_2020,
                        "controller": did,
                        "blockchainAccountId": f"eip155:{chain_id}:{to_checksum_address(args['delegate'])}",
                    }
                    signing[key] = ref
            elif event.name == "DIDAttributeChanged":
                match = _ATTRIBUTE.match(args["name"])
                if not match:
                    continue
                section, algorithm, purpose, encoding = match.group(1), match.group(2), match.group(4), match.group(6)
                value: bytes = args["value"]
                if section == "pub":
                    delegates += 1
                    ref = f"{did}#delegate-{delegates}"
                    # the reference resolver concatenates JavaScript's "undefined" when there is no purpose
                    combined = algorithm + (_PURPOSE_TYPES.get(purpose, purpose) if purpose else "undefined")
                    method: dict[str, Any] = {"id": ref, "type": _KEY_TYPES.get(combined, algorithm), "controller": did}
                    if encoding in (None, "hex"):
                        method["publicKeyHex"] = value.hex()
                    elif encoding == "base64":
                        method["publicKeyBase64"] = base64.b64encode(value).decode()
                    elif encoding == "base58":
                        method["publicKeyBase58"] = _b58(value)
                    elif encoding == "pem":
                        pem = _text(value)
                        if pem is None:
                            continue
                        method["publicKeyPem"] = pem
                    else:
                        method["value"] = value.hex()
                    methods[key] = method
                    if purpose == "sigAuth":
                        auth[key] = ref
                        signing[key] = ref
                    elif purpose == "enc":
                        agreement[key] = ref
                    else:
                        signing[key] = ref
                else:
                    services += 1
                    try:
                        endpoint_text = value.decode("utf-8")
                    except UnicodeDecodeError:
                        continue
                    try:
                        endpoint: Any = json.loads(endpoint_text)
                    except ValueError:
                        endpoint = endpoint_text
                    service_list[key] = {"id": f"{did}#service-{services}", "type": algorithm, "serviceEndpoint": endpoint}
        elif event.name == "DIDOwnerChanged":
            controller = to_checksum_address(args["owner"])
            if controller == NULL_ADDRESS:
                deactivated = True
                break
        else:
            if event.name == "DIDDelegateChanged" or (
                event.name == "DIDAttributeChanged" and args["name"].startswith("did/pub/")
            ):
                delegates += 1
            elif event.name == "DIDAttributeChanged" and args["name"].startswith("did/svc/"):
                services += 1
            for table in (auth, signing, methods, service_list):
                table.pop(key, None)

    base: dict[str, Any] = {"@context": CONTEXT, "id": did, "verificationMethod": [], "authentication": [], "assertionMethod": []}
    if deactivated:
        return base, True, version
    verification = [
        {"id": f"{did}#controller", "type": RECOVERY_2020, "controller": did, "blockchainAccountId": f"eip155:{chain_id}:{controller}"}
    ]
    authentication = [f"{did}#controller"]
    assertion = [f"{did}#controller"]
    if controller_key is not None and controller == to_checksum_address(address):
        verification.append(
            {"id": f"{did}#controllerKey", "type": SECP256K1_2019, "controller": did, "publicKeyHex": controller_key.hex()}
        )
        authentication.append(f"{did}#controllerKey")
        assertion.append(f"{did}#controllerKey")
    document = {
        **base,
        "verificationMethod": verification + list(methods.values()),
        "authentication": authentication + list(auth.values()),
        "assertionMethod": assertion + list(signing.values()),
    }
    if service_list:
        document["service"] = list(service_list.values())
    if agreement:
        document["keyAgreement"] = list(agreement.values())
    return document, False, version


def _index_value(args: dict[str, Any]) -> str:
    if "delegate" in args:
        return to_checksum_address(args["delegate"])
    value = args.get("value")
    return "0x" + value.hex() if isinstance(value, bytes) else str(value)
