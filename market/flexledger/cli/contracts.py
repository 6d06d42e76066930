"""`flexledger compile` and `flexledger deploy`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from flexledger.chain import compiler
from flexledger.cli.context import STATE, connect, load_signer
from flexledger.cli.options import JsonOption
from flexledger.cli.output import console, emit_json
from flexledger.redaction import redact_url

if TYPE_CHECKING:
    from flexledger.chain.manifest import Manifest


def compile_command(
    check: bool = typer.Option(False, "--check", help="Only check that contracts/build matches the sources."),
    json_: bool = JsonOption,
) -> None:
    """Compile the contracts with the pinned solc and regenerate the typed Python bindings."""
    from flexledger.chain.generate import write_generated

    if check:
        compiler.check_fresh()
        from flexledger.chain.generate import check_generated

        check_generated()
        if json_:
            emit_json({"fresh": True})
        else:
            console.print("[green]contracts/build and the generated bindings match the sources[/]")
        return
    with console.status("compiling with solc...", spinner="dots"):
        result = compiler.compile_contracts()
        compiler.write_artifacts(result)
        generated = write_generated()
    if json_:
        emit_json(
            {
                "compiler": result.compiler_version,
                "source_hash": result.source_hash,
                "seconds": round(result.seconds, 3),
                "contracts": sorted(result.artifacts),
                "warnings": result.warnings,
                "generated": [str(p) for p in generated],
            }
        )
        return
    for warning in result.warnings:
        console.print(f"[yellow]{warning}[/]")
    console.print(
        f"[green]compiled {len(result.artifacts)} contracts[/] with solc {result.compiler_version} "
        f"in {result.seconds:.1f} s -> contracts/build/"
    )


def deploy_command(
    force: bool = typer.Option(False, "--force", help="Deploy again even if the manifest is current."),
    key: Path | None = typer.Option(None, "--key", help="Keystore of the deployer (else FLEXLEDGER_KEY, else the dev key)."),
    json_: bool = JsonOption,
) -> None:
    """Deploy the contracts to the configured chain and write the manifest (printed with --json)."""
    from flexledger.chain import deploy as deployment
    from flexledger.chain.manifest import Manifest

    settings = STATE.settings
    conn, _ = connect(settings, deploying=True)
    path = settings.manifest_path
    if not force and path.is_file():
        existing = Manifest.load(path)
        try:
            existing.check(conn, path)
            current = deployment.is_current(existing)
        except Exception:
            current = False
        if current:
            _show(existing, json_, note="already deployed and current")
            return
    signer = load_signer(conn, key)
    with console.status("deploying...", spinner="dots") as status:
        manifest = deployment.deploy_all(
            conn,
            signer,
            on_step=lambda name, address, gas: status.update(f"deployed {name} at {address} ({gas:,} gas)"),
        )
    manifest.save(path)
    _show(manifest, json_, note=f"manifest written to {path}")


def _show(manifest: Manifest, json_: bool, *, note: str) -> None:
    if json_:
        emit_json(manifest.to_json())
        return
    table = Table(title=f"flexledger contracts on chain {manifest.chain_id} ({redact_url(manifest.rpc_url)})")
    table.add_column("contract")
    table.add_column("address")
    table.add_column("block", justify="right")
    table.add_column("gas", justify="right")
    for name, c in manifest.contracts.items():
        table.add_row(name, c.address, str(c.block), f"{c.gas_used:,}")
    console.print(table)
    console.print(note)
