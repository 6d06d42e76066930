"""A reading kept while its ISP's anchor transaction waits for its block: found by
benchmarks/anchor_latency.py (the oracle service at 10,000 readings an ISP, where ingest runs past
the grace period). The root is built from the readings kept before; a reading kept meanwhile must
come out flagged late, so that the store still gives the anchored root and every proof of that ISP
can be served."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flexledger.chain import structs
from flexledger.chain.bindings import MarketRegistryClient, MeterOracleClient, RoleRegistryClient
from flexledger.chain.connection import ChainConnection
from flexledger.chain.manifest import Manifest
from flexledger.chain.transactions import Signer
from flexledger.identity import keys
from flexledger.identity.eip712 import read_domain
from flexledger.identity.roles import Role
from flexledger.oracle.anchoring import anchor_isp, proof_for
from flexledger.oracle.ingest import LATE, STORED, ingest
from flexledger.oracle.store import open_store, readings_of_isp, session
from flexledger.oracle.verify import Verifier
from flexledger.rules.market import MarketParams
from flexledger_edge.reading import MeterSigner, OracleDomain


def test_a_reading_kept_during_the_anchor_is_late_or_in_the_root(
    conn: ChainConnection, manifest: Manifest, deployer: Signer, dev_signers: list[Signer], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    oracle_signer = dev_signers[4]
    RoleRegistryClient(conn, manifest.address("RoleRegistry"), signer=deployer).issue_credential(
        oracle_signer.address, Role.ORACLE.id, 0, 2**64 - 1, b"\x01" * 32)
    market = MarketRegistryClient(conn, manifest.address("MarketRegistry"), signer=deployer).create_market(
        structs.MarketParams.like(MarketParams())).event("MarketCreated").args["marketId"]
    oracle = MeterOracleClient(conn, manifest.address("MeterOracle"), signer=oracle_signer)
    verifier = Verifier(read_domain(conn, oracle.address).separator(), lambda _meter: None)  # every meter known
    domain = OracleDomain(conn.chain_id, oracle.address)
    early, meanwhile = (MeterSigner(keys.new_account().key, domain) for _ in range(2))
    engine = open_store(f"sqlite:///{tmp_path / 'oracle.db'}")
    now = conn.latest_timestamp()
    isp = (now // 900 - 2) * 900
    with session(engine) as s:
        assert ingest(s, verifier, market, early.sign_new(isp_start=isp, sequence=1, import_wh=500, export_wh=0)
                      .to_json(), now) == STORED

    send = oracle.anchor_root
    outcome: list[str] = []

    def anchor_root_while_a_reading_arrives(*args: Any, **kwargs: Any) -> Any:
        # the consumer's thread commits a batch while the anchor's transaction is on its way
        with session(engine) as s:
            outcome.append(ingest(s, verifier, market, meanwhile.sign_new(
                isp_start=isp, sequence=1, import_wh=700, export_wh=0).to_json(), now))
        return send(*args, **kwargs)

    monkeypatch.setattr(oracle, "anchor_root", anchor_root_while_a_reading_arrives)
    anchor = anchor_isp(engine, oracle, market, isp)
    assert anchor is not None and anchor.leaf_count == 1 and outcome == [STORED]
    with session(engine) as s:
        in_root = [r.meter for r in readings_of_isp(s, isp)]
    assert in_root == [early.address] or outcome == [LATE]  # what was anchored is what the store says is
    proof_for(engine, early.address, isp)  # the root's own reading can still be proven
