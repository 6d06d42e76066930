"""`flexledger identity`, `flexledger did` and `flexledger role`: keys, DID documents, role credentials."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from flexledger.chain.errors import RpcUnreachableError
from flexledger.cli.context import STATE, connect, deployment, load_manifest
from flexledger.cli.options import JsonOption
from flexledger.cli.output import console, emit_json
from flexledger.errors import ConfigurationError
from flexledger.redaction import redact_url
from flexledger.times import parse_moment

if TYPE_CHECKING:
    from flexledger.chain.bindings import RoleRegistryClient
    from flexledger.identity.resolver import Resolution

identity_app = typer.Typer(help="Create keys (encrypted keystores) and their did:ethr identities.", no_args_is_help=True)
did_app = typer.Typer(help="Resolve did:ethr DIDs against the market's ERC-1056 DID registry.", no_args_is_help=True)
role_app = typer.Typer(
    help="Grant, revoke, check and verify market role credentials (DSO, TSO, AGGREGATOR, PROSUMER, "
    "ORACLE, AUDITOR, METER, CLEARING). Granting signs a W3C credential (EIP-712) and anchors its hash on chain.",
    no_args_is_help=True,
)

PASSWORD_ENV = "FLEXLEDGER_KEY_PASSWORD"
KeyOption = typer.Option(
    None, "--key", help="Keystore of the issuer (else FLEXLEDGER_KEY; else the dev key, on a dev chain only)."
)
SubjectArgument = typer.Argument(..., help="The party or meter: a 0x-address or a did:ethr of this chain.")
RoleArgument = typer.Argument(..., help="DSO, TSO, AGGREGATOR, PROSUMER, ORACLE, AUDITOR, METER or CLEARING (any case).")


def _password(password_file: Path | None) -> str:
    """The new keystore's password: from a file, else the environment, else a hidden prompt."""
    if password_file is not None:
        try:
            password = password_file.read_text().rstrip("\r\n")
        except OSError as exc:
            raise ConfigurationError(f"cannot read the password file {password_file}: {exc.strerror}") from exc
    elif os.environ.get(PASSWORD_ENV):
        password = os.environ[PASSWORD_ENV]
    elif not sys.stdin.isatty():  # no one to ask (a script, CI, a pipe): say how to give it
        raise ConfigurationError(
            "the new keystore needs a password, and there is no terminal to ask for one",
            hint=f"give it with --password-file FILE or the {PASSWORD_ENV} environment variable",
        )
    else:
        password = typer.prompt("password for the new keystore", hide_input=True, confirmation_prompt=True)
    if not password:
        raise ConfigurationError(
            "the keystore password is empty", hint=f"put a password in --password-file or {PASSWORD_ENV}"
        )
    return password


def _when(option: str, text: str | None, now: int, default: int) -> int:
    """Unix seconds from nothing (``default``), a time, or ``+DURATION`` after now."""
    if text is None:
        return default
    try:
        return parse_moment(text, now)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


def _chain_id_for_new_key(chain_id: int | None) -> int:
    """The chain of a new DID: as given, else the embedded chain's, else the configured node's."""
    from flexledger.chain.connection import ChainConnection

    settings = STATE.settings
    if chain_id is not None:
        return chain_id
    if settings.embedded_chain:
        return settings.node_chain_id
    try:
        return ChainConnection.connect(settings.rpc_url or "", timeout=settings.rpc_timeout).chain_id
    except RpcUnreachableError as exc:
        raise ConfigurationError(
            f"cannot ask {redact_url(settings.rpc_url or '')} for its chain id: {exc.message}",
            hint="pass --chain-id to create the key without the chain",
        ) from exc


@identity_app.command("new")
def identity_new(
    name: str | None = typer.Option(None, "--name", help="File name of the keystore, without .json (default: the address)."),
    password_file: Path | None = typer.Option(
        None, "--password-file", help=f"Read the password from this file (else {PASSWORD_ENV}, else a hidden prompt)."
    ),
    chain_id: int | None = typer.Option(
        None, "--chain-id", min=1, help="Chain of the DID (default: the configured chain's id)."
    ),
    json_: bool = JsonOption,
) -> None:
    """Create a key, store it as an encrypted keystore, and print its address and did:ethr."""
    from flexledger.identity import keys
    from flexledger.identity.did import did_for

    password = _password(password_file)
    chain = _chain_id_for_new_key(chain_id)
    account = keys.new_account()
    path = keys.save_keystore(account, password, STATE.settings.keys_path, name=name)
    did = str(did_for(account.address, chain))
    if json_:
        emit_json({"address": account.address, "did": did, "keystore": str(path)})
    else:
        console.print(f"address   {account.address}\ndid       {did}\nkeystore  {path}")
        console.print(f"[dim]use it with --key {path} (or FLEXLEDGER_KEY) and {PASSWORD_ENV}[/]")


def _print_document(resolution: Resolution) -> None:
    """The document for people: one line per key and service, nothing cut to the terminal's width."""
    doc = resolution.document
    lines = [f"[bold]{doc['id']}[/]"]
    meta = resolution.metadata
    if resolution.deactivated:
        lines.append("[red]deactivated[/] (its owner was set to the zero address)")
    if meta.get("versionId"):
        lines.append(f"version   block {meta['versionId']}, updated {meta['updated']}")
    else:
        lines.append("version   never changed: the identity's own key controls it")
    if doc["verificationMethod"]:
        lines.append("verification methods")
    for method in doc["verificationMethod"]:
        uses = [r for r in ("authentication", "assertionMethod", "keyAgreement") if method["id"] in doc.get(r, [])]
        lines.append(f"  #{method['id'].split('#', 1)[1]}  {method['type']}  ({', '.join(uses) or 'no relationship'})")
        lines.extend(f"      {k}  {v}" for k, v in method.items() if k not in ("id", "type", "controller"))
    if doc.get("service"):
        lines.append("services")
    for service in doc.get("service", []):
        lines.append(f"  #{service['id'].split('#', 1)[1]}  {service['type']}  {json.dumps(service.get('serviceEndpoint'))}")
    console.print("\n".join(lines), soft_wrap=True, highlight=False)


@did_app.command("show")
def did_show(
    did: str = typer.Argument(..., help="A did:ethr of this chain, e.g. did:ethr:0x7a69:0xf39F... ."),
    version_id: int | None = typer.Option(None, "--version-id", min=0, help="Show the document as of this block."),
    json_: bool = JsonOption,
) -> None:
    """Resolve a DID from the registry's events and print its DID document."""
    from flexledger.identity.did import parse_did
    from flexledger.identity.resolver import DIDResolver

    parse_did(did)  # a malformed DID is refused before any network work
    settings = STATE.settings
    conn, _ = connect(settings)
    manifest = load_manifest(settings, conn)
    resolution = DIDResolver(conn, manifest.address("DIDRegistry")).resolve(did, version_id=version_id)
    if json_:
        emit_json(resolution.to_json())
    else:
        _print_document(resolution)


def _registry(key: Path | None, *, signing: bool) -> RoleRegistryClient:
    return deployment(key, sign=signing).roles


def _until(valid_until: int) -> str:
    from flexledger.identity.credentials import NO_EXPIRY, iso

    return "never expires" if valid_until == NO_EXPIRY else iso(valid_until)


@role_app.command("grant")
def role_grant(
    subject: str = SubjectArgument,
    role: str = RoleArgument,
    valid_from: str | None = typer.Option(
        None, "--valid-from", help="Unix seconds, ISO date-time (UTC unless a zone is given) or +<n>d|h|m|s (default: now)."
    ),
    valid_until: str | None = typer.Option(
        None, "--valid-until", help="Unix seconds, ISO date-time or +<n>d|h|m|s after now, e.g. +365d (default: no expiry)."
    ),
    out: Path | None = typer.Option(None, "--out", help="Also write the signed credential (JSON) to this file."),
    key: Path | None = KeyOption,
    json_: bool = JsonOption,
) -> None:
    """Issue a role credential: sign it as an issuer (EIP-712) and anchor its hash in the RoleRegistry."""
    from flexledger.identity.credentials import NO_EXPIRY, credential_hash, grant_role, iso
    from flexledger.identity.did import subject_address
    from flexledger.identity.roles import Role

    parsed_role = Role.parse(role)
    roles = _registry(key, signing=True)
    address = subject_address(subject, roles.conn.chain_id)
    now = roles.conn.latest_timestamp()
    start = _when("--valid-from", valid_from, now, now)
    end = _when("--valid-until", valid_until, now, NO_EXPIRY)
    vc, tx = grant_role(roles, address, parsed_role, valid_from=start, valid_until=end)
    if out is not None:
        out.write_text(json.dumps(vc, indent=1) + "\n")
    digest = "0x" + credential_hash(vc).hex()
    if json_:
        emit_json({"credential": vc, "credential_hash": digest, "tx_hash": tx.tx_hash, "block": tx.block_number, "gas_used": tx.gas_used})
        return
    console.print(
        f"[green]granted[/] {parsed_role.value} to {vc['credentialSubject']['id']}, "
        f"valid {iso(start)} .. {_until(end)}\ncredential hash {digest}\ntx {tx.tx_hash} ({tx.gas_used or 0:,} gas)"
        + (f"\ncredential written to {out}" if out else "")
    )


@role_app.command("revoke")
def role_revoke(
    subject: str = SubjectArgument,
    role: str = RoleArgument,
    key: Path | None = KeyOption,
    json_: bool = JsonOption,
) -> None:
    """Revoke SUBJECT's ROLE credential from now on (as an issuer)."""
    from flexledger.grid.owners import suspend_uncredentialed_assets
    from flexledger.identity.did import subject_address
    from flexledger.identity.roles import Role

    parsed_role = Role.parse(role)
    roles = _registry(key, signing=True)
    address = subject_address(subject, roles.conn.chain_id)
    tx = roles.revoke_credential(address, parsed_role.id)
    suspended = 0
    if parsed_role in (Role.PROSUMER, Role.AGGREGATOR):
        suspended = suspend_uncredentialed_assets(roles.conn, load_manifest(STATE.settings, roles.conn), address,
                                                  roles.signer)
    if json_:
        emit_json({"subject": address, "role": parsed_role.value, "revoked": True, "tx_hash": tx.tx_hash,
                   "assets_suspended": suspended})
    else:
        console.print(f"[yellow]revoked[/] {parsed_role.value} of {address} (tx {tx.tx_hash})"
                      + (f"; {suspended} of its assets suspended" if suspended else ""))


@role_app.command("check")
def role_check(
    subject: str = SubjectArgument,
    role: str = RoleArgument,
    json_: bool = JsonOption,
) -> None:
    """Say whether SUBJECT holds ROLE now: exit code 0 if it does, 3 if it does not."""
    from flexledger.identity.credentials import iso
    from flexledger.identity.did import subject_address
    from flexledger.identity.roles import Role

    parsed_role = Role.parse(role)
    roles = _registry(None, signing=False)
    address = subject_address(subject, roles.conn.chain_id)
    held = roles.has_market_role(address, parsed_role.id)
    valid_from, valid_until, revoked, credential = roles.credential_of(address, parsed_role.id)
    issued = valid_until != 0
    if json_:
        out: dict[str, Any] = {"subject": address, "role": parsed_role.value, "held": held, "issued": issued,
                               "revoked": revoked, "valid_from": valid_from, "valid_until": valid_until,
                               "credential_hash": credential}
        emit_json(out)
    elif not issued:
        console.print(f"{address} has no {parsed_role.value} credential")
    else:
        table = Table("subject", "role", "held", "valid from", "valid until", "revoked", "credential hash")
        table.add_row(address, parsed_role.value, "[green]yes[/]" if held else "[red]no[/]", iso(valid_from),
                      _until(valid_until), "yes" if revoked else "no", "0x" + credential.hex())
        console.print(table)
    if not held:
        raise typer.Exit(3)


@role_app.command("verify")
def role_verify(
    credential_file: Path = typer.Argument(..., exists=True, dir_okay=False, help="A credential (JSON) as `role grant --out` wrote it."),
    json_: bool = JsonOption,
) -> None:
    """Verify a role credential: its issuer's signature, validity, anchor, revocation and issuer's appointment."""
    from flexledger.identity.credentials import verify_on_chain

    try:
        vc = json.loads(credential_file.read_text())
    except ValueError as exc:
        raise ConfigurationError(f"{credential_file} is not JSON: {exc}") from exc
    roles = _registry(None, signing=False)
    checked = verify_on_chain(vc, roles)
    if json_:
        emit_json({"valid": True, "issuer": checked.issuer, "subject": checked.subject, "role": checked.role.value,
                   "valid_from": checked.valid_from, "valid_until": checked.valid_until,
                   "credential_hash": checked.credential_hash})
    else:
        console.print(f"[green]valid[/]: {checked.subject} holds {checked.role.value} "
                      f"until {_until(checked.valid_until)}, issued by {checked.issuer}")
