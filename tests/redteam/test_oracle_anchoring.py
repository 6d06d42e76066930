"""Red-team findings 10 and 11 (issue 17): anchors the chain lost, and a second oracle.

RT10: an anchor mined once and then reorganised away used to stay "anchored" in the store for
ever. Now it counts only ``confirmations`` blocks deep, each round checks the pending ones again,
and one the chain no longer holds is anchored again.
RT11: the second oracle of a market (a high-availability pair) used to retry a reverting anchor
for ever, and a store shared by two markets never anchored the second's ISPs. Now an ISP another
oracle anchored is taken from the chain (confirmed when the root is the same, ``foreign`` and
never retried when it is not), and a store serves one market."""

from __future__ import annotations

from pathlib import Path

import pytest
from chain_world import create_market, grant_roles

from flexledger.chain.bindings import MeterOracleClient
from flexledger.chain.connection import ChainConnection
from flexledger.chain.manifest import Manifest
from flexledger.chain.transactions import Signer
from flexledger.identity import keys
from flexledger.identity.eip712 import read_domain
from flexledger.identity.roles import Role
from flexledger.oracle import anchoring
from flexledger.oracle.anchoring import ProofError, anchor_due, due_isps, proof_for
from flexledger.oracle.ingest import ingest_batch, ingest_isolating
from flexledger.oracle.store import (
    CONFIRMED,
    FOREIGN,
    StoredAnchor,
    StoreMarketError,
    open_store,
    quarantined,
    session,
)
from flexledger.oracle.verify import Verifier
from flexledger_edge.reading import MeterSigner, OracleDomain


class Oracles:
    def __init__(self, conn: ChainConnection, manifest: Manifest, deployer: Signer, dev_signers: list[Signer],
                 tmp_path: Path) -> None:
        self.conn, self.tmp_path = conn, tmp_path
        self.first, self.second = dev_signers[4], dev_signers[5]
        grant_roles(conn, manifest, deployer, [(self.first.address, Role.ORACLE), (self.second.address, Role.ORACLE)])
        self.market = create_market(conn, manifest, deployer)
        self.market2 = create_market(conn, manifest, deployer)
        self.address = manifest.address("MeterOracle")
        self.verifier = Verifier(read_domain(conn, self.address).separator(), lambda _m: None)
        self.meters = [MeterSigner(keys.new_account().key, OracleDomain(conn.chain_id, self.address)) for _ in range(3)]
        self.now = conn.latest_timestamp()
        self.isp = (self.now // 900 - 2) * 900

    def client(self, signer: Signer) -> MeterOracleClient:
        return MeterOracleClient(self.conn, self.address, signer=signer)

    def store(self, name: str, meters: int = 3, isp: int | None = None):  # type: ignore[no-untyped-def]
        engine = open_store(f"sqlite:///{self.tmp_path / name}.db")
        self.keep(engine, meters, isp)
        return engine

    def keep(self, engine, meters: int = 3, isp: int | None = None) -> None:  # type: ignore[no-untyped-def]
        t = self.isp if isp is None else isp
        with session(engine) as s:
            ingest_batch(s, self.verifier, self.market, [m.sign_new(isp_start=t, sequence=1, import_wh=100 + k,
                                                                    export_wh=0).to_json()
                                                         for k, m in enumerate(self.meters[:meters])], self.now)

    def round(self, engine, signer: Signer, confirmations: int | None = 0):  # type: ignore[no-untyped-def]
        return anchor_due(engine, self.client(signer), self.market, self.now, isp_seconds=900, grace=60,
                          confirmations=confirmations)

    def mine(self, blocks: int) -> None:
        for _ in range(blocks):
            self.conn.request("evm_mine")


@pytest.fixture
def oracles(conn: ChainConnection, manifest: Manifest, deployer: Signer, dev_signers: list[Signer],
            tmp_path: Path) -> Oracles:
    return Oracles(conn, manifest, deployer, dev_signers, tmp_path)


def test_rt10_an_anchor_counts_only_when_deep_enough_and_a_reorganised_one_is_anchored_again(oracles: Oracles) -> None:
    o = oracles
    engine = o.store("o")
    first = o.round(engine, o.first, confirmations=2)
    assert first.pending == [o.isp] and first.anchored == []
    with pytest.raises(ProofError, match="not confirmed"):
        proof_for(engine, o.meters[0].address, o.isp)  # nothing is settled against an anchor that may vanish
    o.conn.request("anvil_reorg", [1, []])  # the block holding the anchor is replaced by an empty one
    assert not any(bytes(o.client(o.first).anchor_hash(o.market, o.isp)))
    again = o.round(engine, o.first, confirmations=2)
    assert again.reorged == [o.isp] and again.pending == [o.isp]  # found gone, anchored again
    assert o.round(engine, o.first, confirmations=2).pending == [o.isp]  # one block on: not deep enough
    o.mine(2)
    assert o.round(engine, o.first, confirmations=2).anchored == [o.isp]
    assert any(bytes(o.client(o.first).anchor_hash(o.market, o.isp)))
    assert proof_for(engine, o.meters[0].address, o.isp)["anchor"]["leafCount"] == 3


@pytest.mark.parametrize("confirmations", [0, 1])
def test_rt10_the_reproduction_a_reverted_block_leaves_the_isp_due_again(oracles: Oracles, confirmations: int) -> None:
    """The reproduction's own steps (the anchor's block taken away with a snapshot): with one
    confirmation, and with none (a development chain), where the recent confirmed anchors are
    checked again each round."""
    o = oracles
    engine = o.store("o")
    before = o.conn.snapshot()
    first = o.round(engine, o.first, confirmations=confirmations)
    assert (first.pending if confirmations else first.anchored) == [o.isp]
    o.conn.revert(before)
    again = o.round(engine, o.first, confirmations=confirmations)
    assert again.reorged == [o.isp] and due_isps(engine, o.now, 900, 60) == []
    assert (again.pending if confirmations else again.anchored) == [o.isp]
    o.mine(confirmations)
    assert o.round(engine, o.first, confirmations=confirmations).anchored == ([o.isp] if confirmations else [])
    assert any(bytes(o.client(o.first).anchor_hash(o.market, o.isp)))
    assert proof_for(engine, o.meters[0].address, o.isp)["anchor"]["leafCount"] == 3


def test_rt10_readings_late_to_a_lost_anchor_go_into_the_new_one(oracles: Oracles) -> None:
    o = oracles
    engine = o.store("o", meters=2)
    assert o.round(engine, o.first, confirmations=1).pending == [o.isp]
    o.keep(engine, meters=3)  # the third meter's reading arrives after the anchor: late
    o.conn.request("anvil_reorg", [1, []])
    assert o.round(engine, o.first, confirmations=1).reorged == [o.isp]
    o.mine(1)
    assert o.round(engine, o.first, confirmations=1).anchored == [o.isp]
    assert proof_for(engine, o.meters[2].address, o.isp)["anchor"]["leafCount"] == 3


def test_rt10_the_finalized_block_can_be_what_counts(oracles: Oracles) -> None:
    o = oracles
    engine = o.store("o")
    done = o.round(engine, o.first, confirmations=None)
    assert [*done.anchored, *done.pending] == [o.isp]
    o.mine(70)  # anvil finalizes what is deep enough
    assert o.round(engine, o.first, confirmations=None).anchored == ([o.isp] if done.pending else [])
    with session(engine) as s:
        assert s.get(StoredAnchor, (o.market, o.isp)).status == CONFIRMED  # type: ignore[union-attr]


def test_rt11_a_second_oracle_with_other_readings_stops_at_the_first_ones_anchor(oracles: Oracles) -> None:
    o = oracles
    a, b = o.store("a", meters=2), o.store("b", meters=3)  # A missed meter 3's reading
    assert o.round(a, o.first).anchored == [o.isp]
    rounds = [o.round(b, o.second) for _ in range(3)]
    assert [r.failed for r in rounds] == [[], [], []]  # never retried
    assert rounds[0].foreign == [o.isp] and rounds[1].foreign == rounds[2].foreign == []
    with session(b) as s:
        kept = s.get(StoredAnchor, (o.market, o.isp))
        assert kept is not None and kept.status == FOREIGN and kept.oracle == o.first.address
    with pytest.raises(ProofError, match="anchored by oracle"):
        proof_for(b, o.meters[2].address, o.isp)
    assert proof_for(a, o.meters[0].address, o.isp)["anchor"]["leafCount"] == 2


def test_rt11_a_second_oracle_with_the_same_readings_serves_the_first_ones_anchor(oracles: Oracles) -> None:
    o = oracles
    a, b = o.store("a"), o.store("b")
    assert o.round(a, o.first).anchored == [o.isp]
    assert o.round(b, o.second).anchored == [o.isp]  # taken from the chain, no transaction
    assert proof_for(b, o.meters[2].address, o.isp) == proof_for(a, o.meters[2].address, o.isp)


def test_rt11_losing_the_race_to_the_other_oracle_is_not_a_failure(oracles: Oracles,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    o = oracles
    a, b = o.store("a"), o.store("b")
    assert o.round(a, o.first).anchored == [o.isp]
    real = anchoring.chain_anchor
    looks = iter([None])  # B looks before A's anchor is visible to it, then sends: MeterOracleAlreadyAnchored
    monkeypatch.setattr(anchoring, "chain_anchor", lambda *args: next(looks, None) or real(*args))
    done = o.round(b, o.second)
    assert done.anchored == [o.isp] and done.failed == []


def test_rt11_a_store_serves_one_market(oracles: Oracles) -> None:
    o = oracles
    engine = o.store("shared")
    assert o.round(engine, o.first).anchored == [o.isp]
    with pytest.raises(StoreMarketError):
        anchor_due(engine, o.client(o.first), o.market2, o.now, isp_seconds=900, grace=60)
    with pytest.raises(StoreMarketError):  # raised, not quarantined: the readings are not at fault
        ingest_isolating(engine, o.verifier, o.market2, [o.meters[0].sign_new(
            isp_start=o.isp - 900, sequence=2, import_wh=1, export_wh=0).to_json()], o.now)
    with session(engine) as s:
        assert quarantined(s) == []
