"""`flexledger identity`, `flexledger did` and `flexledger role`: keys, DID documents, role credentials."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import typer
from rich.table import Table

from flexledger.chain.bindings import RoleRegistryClient
from flexledger.errors import ConfigurationError
from flexledger.identity import keys
from flexledger.identity.credentials import NO_EXPIRY, grant_role
from flexledger.identity.did import did_for, parse_did, subject_address
from flexledger.identity.resolver import DIDResolver
from flexledger.identity.roles import Role

from .context import STATE, connect, load_manifest, load_signer
from .output import JsonOption, console, emit_json

identity_app = typer.Typer(help="Create keys (encrypted keystores) and their did:ethr identities.", no_args_is_help=True)
did_app = typer.Typer(help="Resolve did:ethr DIDs against the market's ERC-1056 registry.", no_args_is_help=True)
role_app = typer.Typer(
    help="Grant, revoke and check market role credentials (DSO, TSO, AGGREGATOR, PROSUMER, ORACLE, "
    "AUDITOR, METER). Granting signs a W3C credential (EIP-712) and anchors its hash on chain.",
    no_args_is_help=True,
)

KeyOption = typer.Option(None, "--key", help="Keystore of the signer (else FLEXLEDGER_KEY, else the dev key on a dev chain).")


def _password(password_file: Path | None) -> str:
    if password_file is not None:
        return password_file.read_text().rstrip("\n")
    if os.environ.get("FLEXLEDGER_KEY_PASSWORD"):
        return os.environ["FLEXLEDGER_KEY_PASSWORD"]
    password: str = typer.prompt("password for the new keystore", hide_input=True, confirmation_prompt=True)
    return password


def _when(text: str | None, default: int) -> int:
    """Unix seconds from ``None`` (the default), an integer, or an ISO date/time (UTC)."""
    if text is None:
        return default
    if text.isdigit():
        return int(text)
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigurationError(f"{text!r} is neither Unix seconds nor an ISO date", hint="e.g. 2026-12-01T00:00:00Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp())


@identity_app.command("new")
def identity_new(
    name: str | None = typer.Option(None, "--name", help="File name of the keystore (default: the address)."),
    password_file: Path | None = typer.Option(None, "--password-file", help="Read the password from this file (else FLEXLEDGER_KEY_PASSWORD, else a prompt)."),
    chain_id: int | None = typer.Option(None, "--chain-id", help="Chain of the DID (default: the configured local chain's id)."),
    json_: bool = JsonOption,
) -> None:
    """Create a new key, store it as an encrypted keystore and print its address and DID."""
    settings = STATE.settings
    account = keys.new_account()
    path = keys.save_keystore(account, _password(password_file), settings.keys_path, name=name)
    did = str(did_for(account.address, chain_id or settings.node_chain_id))
    if json_:
        emit_json({"address": account.address, "did": did, "keystore": str(path)})
    else:
        console.print(f"address   {account.address}\ndid       {did}\nkeystore  {path}")


@did_app.command("show")
def did_show(did: str = typer.Argument(..., help="A did:ethr DID, e.g. did:ethr:0x7a69:0xf39F..."), json_: bool = JsonOption) -> None:
    """Resolve a DID from the registry's events and print its DID document."""
    parse_did(did)  # a malformed DID is refused before any network work
    settings = STATE.settings
    conn, _ = connect(settings)
    manifest = load_manifest(settings, conn)
    resolution = DIDResolver(conn, manifest.address("DIDRegistry")).resolve(did)
    if json_:
        emit_json(resolution.to_json())
        return
    console.print_json(json.dumps(resolution.document))
    if resolution.metadata:
        console.print(f"metadata: {resolution.metadata}")


def _roles(key: Path | None) -> tuple[RoleRegistryClient, int]:
    settings = STATE.settings
    conn, _ = connect(settings)
    manifest = load_manifest(settings, conn)
    signer = load_signer(conn, key)
    return RoleRegistryClient(conn, manifest.address("RoleRegistry"), signer=signer), conn.latest_timestamp()


@role_app.command("grant")
def role_grant(
    subject: str = typer.Argument(..., help="Address or did:ethr of the party or meter."),
    role: str = typer.Argument(..., help="DSO, TSO, AGGREGATOR, PROSUMER, ORACLE, AUDITOR or METER."),
    valid_from: str | None = typer.Option(None, "--valid-from", help="Unix seconds or ISO date (default: now)."),
    valid_until: str | None = typer.Option(None, "--valid-until", help="Unix seconds or ISO date (default: no expiry)."),
    out: Path | None = typer.Option(None, "--out", help="Write the signed credential (JSON) to this file."),
    key: Path | None = KeyOption,
    json_: bool = JsonOption,
) -> None:
    """Issue a role credential: sign it as the authority and anchor its hash in the RoleRegistry."""
    roles, now = _roles(key)
    parsed_role = Role.parse(role)
    address = subject_address(subject, roles.conn.chain_id)
    if roles.signer is None:
        raise ConfigurationError("no signing key")
    vc, tx = grant_role(roles, roles.signer.account, address, parsed_role,
                        valid_from=_when(valid_from, now), valid_until=_when(valid_until, NO_EXPIRY))
    if out is not None:
        out.write_text(json.dumps(vc, indent=1) + "\n")
    if json_:
        emit_json({"credential": vc, "tx_hash": tx.tx_hash, "gas_used": tx.gas_used})
    else:
        console.print(f"[green]granted[/] {parsed_role.value} to {vc['credentialSubject']['id']} "
                      f"(tx {tx.tx_hash}, {tx.gas_used:,} gas)" + (f"; credential in {out}" if out else ""))


@role_app.command("revoke")
def role_revoke(
    subject: str = typer.Argument(..., help="Address or did:ethr."),
    role: str = typer.Argument(..., help="The role to revoke."),
    key: Path | None = KeyOption,
    json_: bool = JsonOption,
) -> None:
    """Revoke a role credential from now on."""
    roles, _ = _roles(key)
    parsed_role = Role.parse(role)
    tx = roles.revoke_credential(subject_address(subject, roles.conn.chain_id), parsed_role.id)
    if json_:
        emit_json({"revoked": True, "tx_hash": tx.tx_hash})
    else:
        console.print(f"[yellow]revoked[/] {parsed_role.value} of {subject} (tx {tx.tx_hash})")


@role_app.command("check")
def role_check(
    subject: str = typer.Argument(..., help="Address or did:ethr."),
    role: str = typer.Argument(..., help="The role to check."),
    json_: bool = JsonOption,
) -> None:
    """Say whether SUBJECT holds ROLE now (exit code 0 if it does, 3 if not)."""
    settings = STATE.settings
    conn, _ = connect(settings)
    roles = RoleRegistryClient(conn, load_manifest(settings, conn).address("RoleRegistry"))
    parsed_role = Role.parse(role)
    address = subject_address(subject, conn.chain_id)
    held = roles.has_market_role(address, parsed_role.id)
    valid_from, valid_until, revoked, credential = roles.credential_of(address, parsed_role.id)
    if json_:
        emit_json({"subject": address, "role": parsed_role.value, "held": held, "valid_from": valid_from,
                   "valid_until": valid_until, "revoked": revoked, "credential_hash": credential})
    else:
        table = Table("subject", "role", "held", "valid from", "valid until", "revoked")
        table.add_row(address, parsed_role.value, "yes" if held else "no", str(valid_from),
                      "never expires" if valid_until == NO_EXPIRY else str(valid_until), str(revoked))
        console.print(table)
    if not held:
        raise typer.Exit(3)
