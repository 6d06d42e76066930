"""Red-team findings 3 and 7 (issue 17): a reading that silenced the oracle, and readings keyed by
sequence instead of ISP.

RT3: one validly signed reading with importWh >= 2^63 overflowed the signed BIGINT column, its
batch failed, was taken for "database down" and re-queued for ever: nothing was stored again.
Now every uint64 is stored whole (SQLite and PostgreSQL), energies beyond what a meter measures
are refused (``out_of_range``), a batch that fails for its data is stored one message at a time,
and a message that fails alone is quarantined; only a lost connection holds a batch back.
RT7: two readings of one meter for one ISP both went into the root, a conflicting reading with
the same sequence was dropped as a duplicate, and a gateway that lost its outbox (sequences from
1 again) had every new reading refused. Now the key is (meter, ISP): the first reading is kept,
any other signed one is evidence (``conflicting``), the sequence is informative."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle_stores import STORES, store_url
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    create_engine,
    func,
    select,
    text,
)
from typer.testing import CliRunner

from flexledger.chain.errors import RpcUnreachableError
from flexledger.cli.app import app
from flexledger.delivery.broker import LocalBroker
from flexledger.oracle import ingest as ingest_module
from flexledger.oracle.anchoring import anchor_hash, tree_of
from flexledger.oracle.consumer import OracleConsumer
from flexledger.oracle.ingest import STORED, ingest_batch, ingest_isolating
from flexledger.oracle.readings import Reading
from flexledger.oracle.store import (
    MAX_CONFLICTS,
    ConflictingReading,
    StoredAnchor,
    StoredReading,
    conflicts,
    open_store,
    quarantined,
    readings_of_isp,
    rejections,
    session,
    store_readings,
)
from flexledger.oracle.verify import Reason, Verifier
from flexledger_edge.reading import MeterSigner, OracleDomain

DOMAIN = OracleDomain(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3")
ISP = 900
NOW = 1_796_000_400  # an ISP boundary
LAST = NOW - ISP  # the last ended ISP


def meter() -> MeterSigner:
    return MeterSigner(Account.create().key, DOMAIN)


def signed(m: MeterSigner, sequence: int, isp: int = LAST, imp: int = 1000, exp: int = 0) -> bytes:
    return m.sign_new(isp_start=isp, sequence=sequence, import_wh=imp, export_wh=exp).to_json()


def verifier(**kwargs: object) -> Verifier:
    return Verifier(DOMAIN.separator(), lambda _m: None, isp_seconds=ISP, **kwargs)  # type: ignore[arg-type]


def kept(engine) -> int:  # type: ignore[no-untyped-def]
    with session(engine) as s:
        return int(s.scalar(select(func.count()).select_from(StoredReading)) or 0)


def test_rt3_a_reading_of_2_63_wh_holds_up_no_other_reading_through_a_real_broker(tmp_path: Path) -> None:
    """The reproduction's flow; each gateway is told, once it is stored, what became of its reading
    (a receipt), and a forged reading earns its named meter no receipt."""
    broker = LocalBroker(tmp_path / "broker", auth=False)  # anonymous test clients
    info = broker.start()
    engine = open_store(f"sqlite:///{tmp_path / 'oracle.db'}")
    isp = (int(time.time()) // ISP - 1) * ISP
    consumer = OracleConsumer(info.url, engine, Verifier(DOMAIN.separator(), lambda _m: None, isp_seconds=ISP),
                              1, client_id="rt3-oracle")
    consumer.receipts = True
    publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="rt3-meters")
    receipts: list[dict[str, object]] = []
    publisher.on_message = lambda _c, _u, message: receipts.append(json.loads(message.payload))
    honest = [meter() for _ in range(20)]
    attacker = meter()
    forged = json.loads(signed(honest[0], 1, isp, 999))
    forged["signature"] = json.loads(signed(attacker, 1, isp, 999))["signature"]
    try:
        consumer.start()
        assert consumer.wait_subscribed()
        publisher.connect("127.0.0.1", info.port)
        publisher.loop_start()
        publisher.subscribe("flexledger/v1/receipts/#", qos=1)
        time.sleep(0.5)
        bodies = [signed(attacker, 1, isp, 2**63), json.dumps(forged).encode(), *(signed(h, 1, isp) for h in honest)]
        for body in bodies:
            publisher.publish("flexledger/v1/readings/x", body, qos=1).wait_for_publish(5)
        deadline = time.time() + 10
        while len(receipts) < 21 and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        publisher.loop_stop()
        publisher.disconnect()
        consumer.stop()
        broker.stop()
    assert consumer.outcomes == {STORED: 20, Reason.OUT_OF_RANGE: 1, Reason.BAD_SIGNATURE: 1}
    assert kept(engine) == 20
    assert sorted((r["meter"], r["outcome"]) for r in receipts) == sorted(
        [(attacker.address, Reason.OUT_OF_RANGE), *((h.address, STORED) for h in honest)])
    assert all(r["importWh"] != 999 for r in receipts)  # no receipt for the forged reading


@pytest.mark.parametrize("kind", STORES)
def test_rt3_every_uint64_is_stored_whole(kind: str, tmp_path: Path) -> None:
    with store_url(kind, tmp_path) as url:
        engine = open_store(url)
        m = meter().address
        top = 2**64 - 1
        with session(engine) as s:
            assert store_readings(s, [(Reading(m, LAST, top, top, 2**63), b"s" * 65, False)], NOW) == ["new"]
            assert store_readings(s, [(Reading(m, LAST, 2**63, 0, top), b"t" * 65, False)], NOW) == ["conflicting"]
        with session(engine) as s:
            assert [r.reading() for r in readings_of_isp(s, LAST)] == [Reading(m, LAST, top, top, 2**63)]
            assert [c.reading() for c in conflicts(s, meter=m)] == [Reading(m, LAST, 2**63, 0, top)]
            # the store's uint64 reads the same in SQL as on the way in
            assert s.scalar(select(StoredReading.import_wh).where(StoredReading.import_wh == top)) == top
        engine.dispose()


@pytest.mark.parametrize("kind", STORES)
def test_rt3_a_signed_2_63_wh_reading_is_refused_and_counted(kind: str, tmp_path: Path) -> None:
    with store_url(kind, tmp_path) as url:
        engine = open_store(url)
        poison, honest = meter(), [meter() for _ in range(5)]
        out = ingest_isolating(engine, verifier(), 1, [signed(poison, 1, imp=2**63), signed(poison, 2, LAST - ISP,
                                                                                              exp=2**64 - 1),
                                                       *(signed(h, 1) for h in honest)], NOW)
        assert out == [Reason.OUT_OF_RANGE] * 2 + [STORED] * 5
        with session(engine) as s:
            assert rejections(s) == {Reason.OUT_OF_RANGE: 2}
        engine.dispose()


def test_rt3_a_message_the_store_refuses_is_quarantined_and_the_others_kept(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'oracle.db'}")
    with engine.begin() as c:  # a reading the database refuses whatever the code checked before
        c.execute(text("CREATE TRIGGER poison BEFORE INSERT ON readings WHEN NEW.import_wh = 666 "
                       "BEGIN SELECT RAISE(ABORT, 'refused'); END"))
    honest = [meter() for _ in range(10)]
    bad = signed(meter(), 1, imp=666)
    payloads = [*(signed(h, 1) for h in honest[:5]), bad, *(signed(h, 1) for h in honest[5:])]
    assert ingest_isolating(engine, verifier(), 1, payloads, NOW) == [STORED] * 5 + [Reason.QUARANTINED] + [STORED] * 5
    with session(engine) as s:
        assert [q.payload for q in quarantined(s)] == [bad] and "refused" in quarantined(s)[0].error
        assert rejections(s) == {Reason.QUARANTINED: 1}
    assert kept(engine) == 10


def test_rt3_quarantine_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest_module, "MAX_QUARANTINED", 2)
    engine = open_store(f"sqlite:///{tmp_path / 'oracle.db'}")
    with engine.begin() as c:
        c.execute(text("CREATE TRIGGER poison BEFORE INSERT ON readings BEGIN SELECT RAISE(ABORT, 'refused'); END"))
    assert ingest_isolating(engine, verifier(), 1, [signed(meter(), 1) for _ in range(5)], NOW) == \
        [Reason.QUARANTINED] * 5
    with session(engine) as s:
        assert len(quarantined(s)) == 2 and rejections(s) == {Reason.QUARANTINED: 5}


def test_rt3_a_message_the_verifier_chokes_on_is_quarantined(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'oracle.db'}")
    odd, honest = meter(), [meter() for _ in range(3)]

    def problem(address: str) -> str | None:
        if address == odd.address:
            raise ValueError("a bug this one reading finds")
        return None

    check = Verifier(DOMAIN.separator(), problem, isp_seconds=ISP)
    out = ingest_isolating(engine, check, 1, [signed(odd, 1), *(signed(h, 1) for h in honest)], NOW)
    assert out == [Reason.QUARANTINED, STORED, STORED, STORED]


def test_rt3_only_a_lost_connection_holds_a_batch_back(tmp_path: Path) -> None:
    honest = [signed(meter(), 1) for _ in range(3)]
    down = create_engine("postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=2")
    with pytest.raises(Exception) as exc:
        ingest_isolating(down, verifier(), 1, honest, NOW)
    assert "OperationalError" in type(exc.value).__name__
    engine = open_store(f"sqlite:///{tmp_path / 'oracle.db'}")

    def chain_down(_meter: str) -> str | None:
        raise RpcUnreachableError("http://127.0.0.1:9", "ConnectionError")

    with pytest.raises(RpcUnreachableError):
        ingest_isolating(engine, Verifier(DOMAIN.separator(), chain_down, isp_seconds=ISP), 1, honest, NOW)
    with session(engine) as s:
        assert quarantined(s) == [] and rejections(s) == {}  # nothing quarantined: it is tried again


def test_rt3_a_locked_database_holds_the_batch_back_until_it_is_free(tmp_path: Path) -> None:
    """Through a real broker: while the database cannot be written nothing is acknowledged nor
    quarantined; once it can, every reading is stored."""
    broker = LocalBroker(tmp_path / "broker", auth=False)  # anonymous test clients
    info = broker.start()
    db = tmp_path / "oracle.db"
    engine = open_store(f"sqlite:///{db}")
    isp = (int(time.time()) // ISP - 1) * ISP
    consumer = OracleConsumer(info.url, engine, Verifier(DOMAIN.separator(), lambda _m: None, isp_seconds=ISP),
                              1, client_id="rt3-locked")
    publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="rt3-locked-meters")
    lock = sqlite3.connect(db, isolation_level=None)
    try:
        consumer.start()
        assert consumer.wait_subscribed()
        lock.execute("BEGIN EXCLUSIVE")  # another writer holds the database past the busy timeout
        publisher.connect("127.0.0.1", info.port)
        publisher.loop_start()
        for m in [meter() for _ in range(5)]:
            publisher.publish("flexledger/v1/readings/x", signed(m, 1, isp), qos=1).wait_for_publish(5)
        time.sleep(7)
        assert sum(consumer.outcomes.values()) == 0
        lock.execute("ROLLBACK")
        deadline = time.time() + 15
        while consumer.outcomes[STORED] < 5 and time.time() < deadline:
            time.sleep(0.1)
    finally:
        lock.close()
        publisher.loop_stop()
        publisher.disconnect()
        consumer.stop()
        broker.stop()
    assert consumer.outcomes == {STORED: 5}
    with session(engine) as s:
        assert quarantined(s) == [] and rejections(s) == {}


def test_rt7_two_readings_of_one_meter_for_one_isp_never_both_go_into_the_root(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'oracle.db'}")
    m = meter()
    with session(engine) as s:
        out = ingest_batch(s, verifier(), 1, [signed(m, 5, imp=0, exp=900), signed(m, 6, imp=1500)], NOW)
    assert out == [STORED, Reason.CONFLICTING]
    with session(engine) as s:
        rows = readings_of_isp(s, LAST)
        assert [(r.sequence, r.import_wh, r.export_wh) for r in rows] == [(5, 0, 900)]  # the first one
        assert tree_of(rows).root == tree_of(rows[:1]).root
        assert [(c.sequence, c.import_wh) for c in conflicts(s, meter=m.address, isp_start=LAST)] == [(6, 1500)]


def test_rt7_a_conflicting_reading_with_the_same_sequence_is_kept_as_evidence(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'oracle.db'}")
    m = meter()
    with session(engine) as s:
        out = ingest_batch(s, verifier(), 1, [signed(m, 7, imp=100), signed(m, 7, imp=99_999),
                                              signed(m, 7, imp=100)], NOW)
    assert out == [STORED, Reason.CONFLICTING, Reason.DUPLICATE]
    with session(engine) as s:  # delivered again: evidence kept once
        assert ingest_batch(s, verifier(), 1, [signed(m, 7, imp=99_999)], NOW) == [Reason.DUPLICATE]
        assert [(c.sequence, c.import_wh, bytes(c.signature)[:1] != b"") for c in conflicts(s)] == [(7, 99_999, True)]
        assert rejections(s) == {Reason.CONFLICTING: 1, Reason.DUPLICATE: 2}


def test_rt7_a_meter_signing_many_readings_for_one_isp_cannot_fill_the_store(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'oracle.db'}")
    m = meter()
    with session(engine) as s:
        out = ingest_batch(s, verifier(), 1, [signed(m, 1, imp=k) for k in range(6)], NOW)
    with session(engine) as s:
        out += ingest_batch(s, verifier(), 1, [signed(m, 1, imp=k) for k in range(6, 20)], NOW)
    assert out == [STORED] + [Reason.CONFLICTING] * 19
    with session(engine) as s:
        assert [c.import_wh for c in conflicts(s)] == [1, 2, 3, 4]  # evidence enough, bounded
        assert ingest_batch(s, verifier(), 1, [signed(m, 1, imp=2)], NOW) == [Reason.DUPLICATE]


def test_rt7_a_gateway_that_lost_its_outbox_starts_again_at_sequence_1(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'oracle.db'}")
    m = meter()
    with session(engine) as s:
        history = [signed(m, seq, LAST - (4 - seq) * ISP, imp=500) for seq in (1, 2, 3)]
        assert ingest_batch(s, verifier(), 1, history, NOW) == [STORED] * 3
    later = NOW + 3 * ISP
    with session(engine) as s:  # the next ISPs, numbered from 1 again
        fresh = [signed(m, seq, LAST + (seq - 1) * ISP, imp=1234) for seq in (1, 2, 3)]
        assert ingest_batch(s, verifier(), 1, fresh, later) == [STORED] * 3


def test_rt7_the_cli_lists_the_conflicting_readings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'oracle.db'}"
    engine = open_store(url)
    m = meter()
    with session(engine) as s:
        ingest_batch(s, verifier(), 1, [signed(m, 1, imp=10), signed(m, 2, imp=20)], NOW)
    monkeypatch.setenv("FLEXLEDGER_DATABASE_URL", url)
    result = CliRunner().invoke(app, ["readings", "conflicts", "--json"])
    assert result.exit_code == 0, result.output
    assert '"importWh": 20' in result.output and m.address in result.output and '"kept"' in result.output


def _old_store(url: str, rows: list[tuple[str, int, int, int, int]], anchored_isp: int, oracle: str) -> None:
    """The tables as the version before (readings keyed by meter and sequence, anchors without status)."""
    metadata = MetaData()
    readings = Table("readings", metadata, Column("meter", String(42), primary_key=True),
                     Column("sequence", BigInteger, primary_key=True), Column("isp_start", BigInteger),
                     Column("import_wh", BigInteger), Column("export_wh", BigInteger),
                     Column("signature", LargeBinary), Column("received_at", BigInteger), Column("late", Boolean),
                     Column("anchored", Boolean), Index("ix_readings_isp", "isp_start"))
    anchors = Table("anchors", metadata, Column("market", Integer, primary_key=True),
                    Column("isp_start", BigInteger, primary_key=True), Column("root", LargeBinary),
                    Column("leaf_count", Integer), Column("oracle", String(42)), Column("anchored_at", BigInteger),
                    Column("tx_hash", String(66)))
    old = create_engine(url)
    metadata.create_all(old)
    with old.begin() as c:
        c.execute(readings.insert(), [dict(meter=m, sequence=q, isp_start=t, import_wh=i, export_wh=0,
                                           signature=b"\x01", received_at=at, late=False, anchored=True)
                                      for m, q, t, i, at in rows])
        c.execute(anchors.insert().values(market=1, isp_start=anchored_isp, root=b"\x02" * 32, leaf_count=3,
                                          oracle=oracle, anchored_at=5, tx_hash="0x"))
    old.dispose()


@pytest.mark.parametrize("kind", STORES)
def test_rt7_a_store_of_the_earlier_version_is_rekeyed_on_open(kind: str, tmp_path: Path) -> None:
    """A store written with (meter, sequence) as the key opens; its second readings of one meter and
    ISP become evidence, and its anchors count as confirmed."""
    a, b = meter().address, meter().address
    with store_url(kind, tmp_path) as url:
        _old_store(url, [(a, 1, LAST, 100, 1), (a, 2, LAST, 200, 2), (a, 3, LAST + ISP, 300, 3), (b, 1, LAST, 50, 1)],
                   LAST, a)
        engine = open_store(url)
        with session(engine) as s:
            assert [(r.meter, r.sequence, r.import_wh) for r in readings_of_isp(s, LAST)] == \
                sorted([(a, 1, 100), (b, 1, 50)])
            assert [(c.meter, c.sequence, c.import_wh) for c in s.scalars(select(ConflictingReading))] == [(a, 2, 200)]
            anchor = s.get(StoredAnchor, (1, LAST))
            assert anchor is not None and anchor.status == "confirmed" and len(anchor_hash(anchor)) == 32
        open_store(url).dispose()  # a second open changes nothing
        with session(engine) as s:
            assert s.scalar(select(func.count()).select_from(StoredReading)) == 3
            assert ingest_batch(s, verifier(), 1, [signed(meter(), 1, LAST - ISP)], NOW) == [STORED]
        engine.dispose()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.tuples(st.sampled_from(["0x" + "11" * 20, "0x" + "22" * 20]), st.sampled_from([0, 900]),
                                   st.integers(1, 3), st.sampled_from([0, 5, 2**63, 2**64 - 1])),
                         min_size=1, max_size=6), min_size=1, max_size=5))
@pytest.mark.slow
def test_rt7_whatever_arrives_in_whatever_batches_one_meter_and_isp_has_one_leaf(
        batches: list[list[tuple[str, int, int, int]]]) -> None:
    """The class behind RT7: the first reading of a meter and ISP is the one kept, every other one
    is a duplicate (same values) or a conflict (kept, at most MAX_CONFLICTS), never a second leaf."""
    engine = open_store("sqlite://")
    first: dict[tuple[str, int], Reading] = {}
    others: dict[tuple[str, int], list[Reading]] = {}
    for batch in batches:
        items = [(Reading(m, t, q, wh, 0), b"s", False) for m, t, q, wh in batch]
        with session(engine) as s:
            outcomes = store_readings(s, items, NOW)
        for (r, _sig, _late), outcome in zip(items, outcomes, strict=True):
            key = (r.meter, r.isp_start)
            if key not in first:
                assert outcome == "new"
                first[key] = r
            elif r == first[key] or r in others.get(key, [])[:MAX_CONFLICTS]:
                assert outcome == "duplicate"
            elif r in others.get(key, []):  # beyond the bound: counted, not kept, so not known again
                assert outcome in ("duplicate", "conflicting")
            else:
                assert outcome == "conflicting"
                others.setdefault(key, []).append(r)
    with session(engine) as s:
        for t in (0, 900):
            rows = readings_of_isp(s, t)
            assert len({r.meter for r in rows}) == len(rows)
            assert {(r.meter, t): r.reading() for r in rows} == {k: v for k, v in first.items() if k[1] == t}
        for key, extra in others.items():
            assert {c.reading() for c in conflicts(s, meter=key[0], isp_start=key[1])} == set(extra[:MAX_CONFLICTS])
