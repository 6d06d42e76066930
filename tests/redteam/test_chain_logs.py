"""Red-team finding 9 (issue 17): event queries asked eth_getLogs for blocks 0..latest at once, which
real nodes refuse (Besu --rpc-max-logs-range, providers' 10k-block or result caps), so `audit
settle`, settle and dispute failed on a real network. Logs are now fetched in pages from each
contract's deployment block, in a range that halves on each refusal and is kept for the next query.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from settlement_world import build_world

from flexledger.audit.settlement import audit_settlement
from flexledger.chain.connection import ChainConnection
from flexledger.chain.manifest import Manifest
from flexledger.chain.transactions import Signer


def _capped(conn: ChainConnection, monkeypatch: pytest.MonkeyPatch, *, max_range: int | None = None,
            max_results: int | None = None) -> list[tuple[int, int]]:
    """Make the node refuse ranges over ``max_range`` blocks, or answers over ``max_results`` logs,
    with the words real nodes use; the ranges asked are recorded."""
    real = conn.w3.eth.get_logs
    asked: list[tuple[int, int]] = []

    def get_logs(params: dict[str, Any]) -> Any:
        lo, hi = int(params["fromBlock"]), int(params["toBlock"])
        asked.append((lo, hi))
        if max_range is not None and hi - lo + 1 > max_range:
            raise ValueError({"code": -32005, "message": f"query exceeds max block range {max_range}"})
        logs = real(params)
        if max_results is not None and len(logs) > max_results:
            raise ValueError({"code": -32602, "message": f"query returned more than {max_results} results"})
        return logs

    monkeypatch.setattr(conn.w3.eth, "get_logs", get_logs)
    return asked


def test_RT9_the_audit_works_against_a_node_that_caps_log_ranges(
        conn: ChainConnection, manifest: Manifest, deployer: Signer, dev_signers: list[Signer], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    w = build_world(conn, manifest, deployer, dev_signers, tmp_path)
    w.settle_all()
    uncapped = audit_settlement(w.deployment, w.market, w.day)
    cap = max(2, conn.w3.eth.block_number // 7)  # a seventh of the chain's height per query
    asked = _capped(conn, monkeypatch, max_range=cap)
    conn.log_range = 10_000
    capped = audit_settlement(w.deployment, w.market, w.day)
    assert capped.matches and capped.offers_settled == uncapped.offers_settled == 2
    assert capped.records == uncapped.records
    assert all(hi - lo + 1 <= conn.log_range for lo, hi in asked[-5:])  # the range learnt is kept
    assert conn.log_range <= cap


def test_RT9_a_result_cap_halves_the_range_too(conn: ChainConnection, manifest: Manifest, deployer: Signer,
                                              dev_signers: list[Signer], monkeypatch: pytest.MonkeyPatch) -> None:
    from chain_world import grant_roles

    from flexledger.chain.bindings import RoleRegistryClient
    from flexledger.identity.roles import Role

    for signer in dev_signers[3:6]:  # one credential per block
        grant_roles(conn, manifest, deployer, [(signer.address, Role.ORACLE)])
    roles = RoleRegistryClient(conn, manifest.address("RoleRegistry"))
    everything = roles.events("CredentialIssued")
    assert len(everything) >= 2
    _capped(conn, monkeypatch, max_results=1)
    conn.log_range = 10_000
    paged = roles.events("CredentialIssued")
    assert [(e.block_number, e.log_index) for e in paged] == [(e.block_number, e.log_index) for e in everything]


def test_RT9_queries_start_at_the_deployment_block(conn: ChainConnection, manifest: Manifest,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from flexledger.chain.bindings import RoleRegistryClient

    manifest.register_blocks(conn)
    asked = _capped(conn, monkeypatch)
    RoleRegistryClient(conn, manifest.address("RoleRegistry")).events("CredentialIssued")
    assert asked[0][0] == manifest.contracts["RoleRegistry"].block > 0


def test_RT9_other_errors_are_not_retried(conn: ChainConnection, manifest: Manifest,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from flexledger.chain.bindings import RoleRegistryClient

    calls: list[int] = []

    def broken(params: dict[str, Any]) -> Any:
        calls.append(1)
        raise ValueError({"code": -32000, "message": "header not found"})

    monkeypatch.setattr(conn.w3.eth, "get_logs", broken)
    with pytest.raises(ValueError, match="header not found"):
        RoleRegistryClient(conn, manifest.address("RoleRegistry")).events("CredentialIssued")
    assert len(calls) == 1
