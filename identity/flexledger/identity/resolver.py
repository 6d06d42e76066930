"""Resolving did:ethr DIDs from the ERC-1056 registry's events into DID documents.

The document is rebuilt the way the did:ethr method specifies and its reference resolver (npm
``ethr-did-resolver`` v11) does: walk ``changed(identity)`` and each event's ``previousChange``
back to the first change, replay owner changes, delegates and ``did/pub``/``did/svc``
attributes, and number delegates and services in event order. The same chain gives the same
document in both; ``tests/identity/test_resolver.py`` holds them against each other. The document is a
pydid object; its serialisation is the JSON the reference prints.

Deliberate differences: "now" (which delegates and attributes are still valid) is the
timestamp of the latest block (of the requested block for a ``versionId``), not this machine's
clock, so every node answers alike; a delegate or attribute counts while its ``validTo`` is
strictly after "now", as the registry's own ``validDelegate`` has it (the reference also accepts
the second of ``validTo`` itself, which brings a delegate revoked in the latest block back to
life); and failures raise :class:`DIDResolutionError` instead of returning an error record.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import pydid
from eth_utils import to_checksum_address
from web3.exceptions import BlockNotFound

from flexledger.chain.bindings import DIDRegistryClient
from flexledger.chain.connection import ChainConnection
from flexledger.chain.events import decode_logs
from flexledger.errors import FlexledgerError

from .did import EthrDID, parse_did

CONTEXT = [
    "https://www.w3.org/ns/did/v1",
    "https://w3id.org/security/suites/secp256k1recovery-2020/v2",
    "https://w3id.org/security/v3-unstable",
]
CONTENT_TYPE = "application/did+ld+json"
NULL_ADDRESS = "0x0000000000000000000000000000000000000000"
RECOVERY_2020 = "EcdsaSecp256k1RecoveryMethod2020"
SECP256K1_2019 = "EcdsaSecp256k1VerificationKey2019"
# did/pub/<algorithm>/<purpose>/<encoding>: the purpose is looked up here, then algorithm+purpose below.
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
_WORD = r"[A-Za-z0-9_]+"


class DIDResolutionError(FlexledgerError):
    """A DID that cannot be resolved here (another chain, or history the node does not keep)."""


class EthrService(pydid.Service):  # type: ignore[misc]  # pydid ships no type hints
    """A service whose endpoint is whatever JSON the attribute holds.

    The registry stores any bytes, and the reference resolver publishes whatever they parse to
    (a number, a list, ...); pydid's own Service admits only URLs, strings and maps.
    """

    service_endpoint: Any = None


class EthrDIDDocument(pydid.BasicDIDDocument):  # type: ignore[misc]
    """A did:ethr document: pydid's model, with services as the registry may hold them."""

    service: list[EthrService] | None = None

    def to_json(self) -> dict[str, Any]:
        """The document as JSON-ready data (pydid drops ``None``; a ``null`` endpoint is kept)."""
        data: dict[str, Any] = self.serialize()
        for out, service in zip(data.get("service", []), self.service or [], strict=True):
            out.setdefault("serviceEndpoint", service.service_endpoint)
        return data


@dataclass(frozen=True)
class RegistryEvent:
    """One ERC-1056 event, with its bytes32 fields (``delegateType``, ``name``) read as text."""

    name: str
    block: int
    args: dict[str, Any]


@dataclass(frozen=True)
class Resolution:
    """A DID document, as a pydid object and as the JSON the reference resolver prints, with its metadata."""

    did: str
    pydid_document: EthrDIDDocument
    document: dict[str, Any]  # the pydid document serialised: ethr-did-resolver's ``didDocument``
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def deactivated(self) -> bool:
        return bool(self.metadata.get("deactivated"))

    def to_json(self) -> dict[str, Any]:
        """The resolution result, shaped as did-resolver and ethr-did-resolver print it."""
        return {
            "didDocument": self.document,
            "didDocumentMetadata": self.metadata,
            "didResolutionMetadata": {"contentType": CONTENT_TYPE},
        }


def _text(raw: bytes) -> str | None:
    """A bytes32 as text without its trailing zero bytes; ``None`` if it is not UTF-8."""
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


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # JavaScript's JSON.parse refuses NaN and Infinity


def _js_int(digits: str) -> int | float:
    number = int(digits)
    return number if abs(number) <= 2**53 else float(number)  # JavaScript numbers are doubles


def _endpoint(text: str) -> Any:
    """A service endpoint: the attribute's JSON value if it is JSON, else the text itself."""
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_int=_js_int)
    except ValueError:
        return text


def _split_attribute(name: str) -> tuple[str, str, str | None, str | None] | None:
    """``did/(pub|svc)/<a>[/<b>][/<c>]`` as (section, algorithm, purpose, encoding), else None."""
    parts = name.split("/")
    if len(parts) < 3 or len(parts) > 5 or parts[0] != "did" or parts[1] not in ("pub", "svc"):
        return None
    if not all(part and all(ch.isascii() and (ch.isalnum() or ch == "_") for ch in part) for part in parts[2:]):
        return None
    return parts[1], parts[2], parts[3] if len(parts) > 3 else None, parts[4] if len(parts) > 4 else None


def _event_key(event: RegistryEvent) -> str:
    """The reference's identity of an entry: a later event with the same key replaces or revokes it."""
    args = event.args
    kind = args.get("delegateType") or args.get("name") or "undefined"
    if "delegate" in args:
        which: str = to_checksum_address(args["delegate"])
    elif isinstance(args.get("value"), bytes):
        which = "0x" + args["value"].hex()
    else:
        which = "undefined"
    return f"{event.name}-{kind}-{which}"


@dataclass
class _State:
    """The document while the history is replayed; dicts keep insertion order, as JS objects do."""

    controller: str
    delegates: int = 0
    services: int = 0
    deactivated: bool = False
    version: int = 0
    next_version: int | None = None
    methods: dict[str, dict[str, Any]] = field(default_factory=dict)
    auth: dict[str, str] = field(default_factory=dict)
    signing: dict[str, str] = field(default_factory=dict)
    agreement: dict[str, str] = field(default_factory=dict)
    service: dict[str, dict[str, Any]] = field(default_factory=dict)


def _public_key(did: str, state: _State, key: str, algorithm: str, purpose: str | None, encoding: str | None, value: bytes) -> None:
    """A ``did/pub/...`` attribute: a verification method, referenced by its purpose."""
    ref = f"{did}#delegate-{state.delegates}"
    # the reference concatenates JavaScript's "undefined" when there is no purpose
    combined = algorithm + (_PURPOSE_TYPES.get(purpose, purpose) if purpose else "undefined")
    method: dict[str, Any] = {"id": ref, "type": _KEY_TYPES.get(combined, algorithm), "controller": did}
    if encoding in (None, "hex"):
        method["publicKeyHex"] = value.hex()
    elif encoding == "base64":
        method["publicKeyBase64"] = base64.b64encode(value).decode()
    elif encoding == "base58":
        method["publicKeyBase58"] = _b58(value)
    elif encoding == "pem":
        try:
            method["publicKeyPem"] = value.decode("utf-8")
        except UnicodeDecodeError:
            return  # not a DID key: some other use of the registry
    else:
        method["value"] = value.hex()
    state.methods[key] = method
    if purpose == "sigAuth":
        state.auth[key] = ref
        state.signing[key] = ref
    elif purpose == "enc":
        state.agreement[key] = ref
    else:
        state.signing[key] = ref


def _apply(did: str, chain_id: int, state: _State, event: RegistryEvent, now: int) -> None:
    """Replay one event (the reference's rules, including its numbering of revoked entries)."""
    args = event.args
    key = _event_key(event)
    valid_to = int(args.get("validTo") or 0)
    attribute = _split_attribute(args["name"]) if event.name == "DIDAttributeChanged" else None
    if valid_to > now:  # the registry's own rule (validDelegate): valid while strictly after now
        if event.name == "DIDDelegateChanged":
            state.delegates += 1
            if args["delegateType"] in ("sigAuth", "veriKey"):
                ref = f"{did}#delegate-{state.delegates}"
                if args["delegateType"] == "sigAuth":
                    state.auth[key] = ref
                account = to_checksum_address(args["delegate"])
                state.methods[key] = {
                    "id": ref,
                    "type": RECOVERY_2020,
                    "controller": did,
                    "blockchainAccountId": f"eip155:{chain_id}:{account}",
                }
                state.signing[key] = ref
        elif attribute is not None:
            section, algorithm, purpose, encoding = attribute
            if section == "pub":
                state.delegates += 1
                _public_key(did, state, key, algorithm, purpose, encoding, args["value"])
            else:
                state.services += 1
                try:
                    text = args["value"].decode("utf-8")
                except UnicodeDecodeError:
                    return  # not a DID service: some other use of the registry
                state.service[key] = {"id": f"{did}#service-{state.services}", "type": algorithm, "serviceEndpoint": _endpoint(text)}
    elif event.name == "DIDOwnerChanged":
        state.controller = to_checksum_address(args["owner"])
        state.deactivated = state.controller == NULL_ADDRESS
    else:  # expired or revoked: it still takes its number, and removes what it names
        if event.name == "DIDDelegateChanged" or args["name"].startswith("did/pub/"):
            state.delegates += 1
        elif args["name"].startswith("did/svc/"):
            state.services += 1
        # like the reference, a revoked key-agreement key keeps its keyAgreement reference
        for table in (state.auth, state.signing, state.methods, state.service):
            table.pop(key, None)


def replay(
    did: str,
    address: str,
    controller_key: str | None,
    history: list[RegistryEvent],
    chain_id: int,
    now: int,
    *,
    block_height: int | None = None,
) -> tuple[EthrDIDDocument, _State]:
    """The document of ``did`` after ``history`` (up to ``block_height``), and the replay's state.

    ``controller_key`` is the public key in hex as the DID wrote it, if the DID names a key.
    """
    state = _State(controller=to_checksum_address(address))
    for event in history:
        if block_height is not None and event.block > block_height:
            state.next_version = min(state.next_version or event.block, event.block)
            continue
        state.version = max(state.version, event.block)
        _apply(did, chain_id, state, event, now)
        if state.deactivated:
            break
    return _document(did, address, controller_key, chain_id, state), state


def _method(did: str, data: dict[str, Any]) -> Any:
    extra = {k: v for k, v in data.items() if k not in ("id", "type", "controller")}
    return pydid.VerificationMethod.make(id=pydid.DIDUrl.parse(data["id"]), type=data["type"], controller=pydid.DID(did), **extra)


def _refs(refs: list[str]) -> list[Any]:
    return [pydid.DIDUrl.parse(ref) for ref in refs]


def _document(did: str, address: str, controller_key: str | None, chain_id: int, state: _State) -> EthrDIDDocument:
    if state.deactivated:
        empty: EthrDIDDocument = EthrDIDDocument.make(
            id=pydid.DID(did), context=CONTEXT, verification_method=[], authentication=[], assertion_method=[]
        )
        return empty
    controller = f"{did}#controller"
    methods = [{"id": controller, "type": RECOVERY_2020, "controller": did, "blockchainAccountId": f"eip155:{chain_id}:{state.controller}"}]
    authentication = [controller]
    assertion = [controller]
    if controller_key is not None and state.controller == to_checksum_address(address):
        methods.append({"id": f"{did}#controllerKey", "type": SECP256K1_2019, "controller": did, "publicKeyHex": controller_key})
        authentication.append(f"{did}#controllerKey")
        assertion.append(f"{did}#controllerKey")
    services = [
        EthrService.make(id=pydid.DIDUrl.parse(s["id"]), type=s["type"], service_endpoint=s["serviceEndpoint"])
        for s in state.service.values()
    ]
    document: EthrDIDDocument = EthrDIDDocument.make(
        id=pydid.DID(did),
        context=CONTEXT,
        verification_method=[_method(did, m) for m in [*methods, *state.methods.values()]],
        authentication=_refs(authentication + list(state.auth.values())),
        assertion_method=_refs(assertion + list(state.signing.values())),
        key_agreement=_refs(list(state.agreement.values())) or None,
        service=services or None,
    )
    return document


def _version_query(did: str) -> int | None:
    """``?versionId=<block>`` of a DID URL, as the reference reads it (anything else: latest)."""
    if "?" not in did:
        return None
    values = parse_qs(did.split("?", 1)[1].split("#", 1)[0]).get("versionId")
    try:
        return int(values[0]) if values else None
    except ValueError:
        return None


class DIDResolver:
    """Resolves did:ethr DIDs of one chain against one ERC-1056 registry."""

    def __init__(self, conn: ChainConnection, registry_address: str) -> None:
        self.conn = conn
        self.registry = DIDRegistryClient(conn, registry_address)

    def history(self, address: str) -> list[RegistryEvent]:
        """The identity's events, oldest first, found by walking ``previousChange`` back from ``changed``."""
        events: list[RegistryEvent] = []
        block = self.registry.changed(address)
        topic = "0x" + bytes.fromhex(address[2:]).rjust(32, b"\0").hex()
        while block:
            logs = self.conn.w3.eth.get_logs(
                {"address": self.registry.address, "fromBlock": block, "toBlock": block, "topics": [None, topic]}
            )
            if not logs:
                raise DIDResolutionError(
                    f"the registry says {address} changed in block {block}, but the node returns no logs for it",
                    hint="the node prunes old logs: resolve against an archive node",
                )
            in_block: list[RegistryEvent] = []
            previous = 0
            for event in decode_logs(logs):
                change = int(event.args.get("previousChange", 0))
                if 0 < change < block and (previous == 0 or change < previous):
                    previous = change
                args = dict(event.args)
                texts: dict[str, str | None] = {k: _text(args[k]) for k in ("delegateType", "name") if k in args}
                if None in texts.values():
                    continue  # a bytes32 that is not text: not a DID event, but its pointer counts
                args.update(texts)
                in_block.append(RegistryEvent(event.name, event.block_number, args))
            events = in_block + events
            block = previous
        return events

    def resolve(self, did: str | EthrDID, *, version_id: int | None = None) -> Resolution:
        """The DID document (at block ``version_id``, or ``?versionId=`` in the DID URL; else latest)."""
        parsed = parse_did(did) if isinstance(did, str) else did
        if version_id is None and isinstance(did, str):
            version_id = _version_query(did)
        chain_id = self.conn.chain_id
        if parsed.chain_id != chain_id:
            raise DIDResolutionError(
                f"{parsed} is a DID of network {parsed.network!r}, but this resolver reads chain {hex(chain_id)}",
                hint=f"use a DID of this chain: did:ethr:{hex(chain_id)}:0x...",
            )
        history = self.history(parsed.address)
        try:
            when = self.conn.w3.eth.get_block(version_id if version_id is not None else "latest")
        except BlockNotFound:
            raise DIDResolutionError(
                f"versionId {version_id} is not a block of chain {hex(chain_id)} yet",
                hint="ask for a block number at or below the latest block",
            ) from None
        controller_key = parsed.identifier[2:] if parsed.public_key is not None else None
        document, state = replay(
            str(parsed), parsed.address, controller_key, history, chain_id, int(when["timestamp"]),
            block_height=version_id,
        )
        metadata: dict[str, Any] = {"deactivated": True} if state.deactivated else {}
        if state.version:
            metadata.update(versionId=str(state.version), updated=self._block_time(state.version))
        if state.next_version is not None:
            metadata.update(nextVersionId=str(state.next_version), nextUpdate=self._block_time(state.next_version))
        return Resolution(str(parsed), document, document.to_json(), metadata)

    def _block_time(self, block: int) -> str:
        return _iso(int(self.conn.w3.eth.get_block(block)["timestamp"]))
