"""The outbox: signed before sending, ordered, durable across kills, sequences persisted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flexledger_edge.outbox import Outbox
from flexledger_edge.reading import MeterSigner, OracleDomain, SignedReading


def _append(outbox: Outbox, signer: MeterSigner, isp_start: int, import_wh: int = 10,
            now: int | None = None) -> SignedReading | None:
    return outbox.append(
        signer.address, isp_start,
        lambda seq: signer.sign_new(isp_start=isp_start, sequence=seq, import_wh=import_wh, export_wh=0),
        now=isp_start + 900 if now is None else now,
    )


def test_sequences_continue_across_restarts(tmp_path: Path, meter_key: bytes, domain: OracleDomain) -> None:
    signer = MeterSigner(meter_key, domain)
    path = tmp_path / "outbox.sqlite3"
    with Outbox(path) as outbox:
        assert outbox.last_sequence(signer.address) == 0
        for i in range(3):
            _append(outbox, signer, 900 * (i + 1))
        for row in outbox.pending():
            outbox.delete(row.id)  # acknowledged: rows go, the sequence stays
    with Outbox(path) as outbox:
        assert outbox.last_sequence(signer.address) == 3
        assert outbox.last_isp_start(signer.address) == 2700
        signed = _append(outbox, signer, 3600)
        assert signed is not None and signed.reading.sequence == 4
        assert [r.sequence for r in outbox.pending()] == [4]


def test_an_isp_is_signed_once(tmp_path: Path, meter_key: bytes, domain: OracleDomain) -> None:
    signer = MeterSigner(meter_key, domain)
    with Outbox(tmp_path / "o.sqlite3") as outbox:
        assert _append(outbox, signer, 1800, now=2700) is not None
        assert _append(outbox, signer, 1800, import_wh=11, now=2700) is None
        assert _append(outbox, signer, 900, now=2700) is None
        assert outbox.count() == 1 and outbox.last_sequence(signer.address) == 1


def test_rows_come_out_in_sequence_order(tmp_path: Path, meter_key: bytes, domain: OracleDomain) -> None:
    signer = MeterSigner(meter_key, domain)
    with Outbox(tmp_path / "o.sqlite3") as outbox:
        for i in range(10):
            _append(outbox, signer, 900 * (i + 1))
        outbox.delete(outbox.pending()[3].id)
        rows = outbox.pending(limit=100)
        assert [r.sequence for r in rows] == [1, 2, 3, 5, 6, 7, 8, 9, 10]
        assert [r.sequence for r in outbox.pending(after_id=rows[4].id, limit=2)] == [7, 8]
        assert SignedReading.from_json(rows[0].payload).reading.sequence == 1
        assert rows[0].topic == "flexledger/v1/readings/" + signer.address.lower()


def test_rows_survive_a_killed_process(tmp_path: Path, meter_key: bytes, domain: OracleDomain) -> None:
    path = tmp_path / "outbox.sqlite3"
    script = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from flexledger_edge.outbox import Outbox
        from flexledger_edge.reading import MeterSigner, OracleDomain
        signer = MeterSigner(bytes.fromhex({meter_key.hex()!r}), OracleDomain({domain.chain_id}, {domain.verifying_contract!r}))
        outbox = Outbox(Path({str(path)!r}))
        for i in range(5):
            outbox.append(signer.address, 900 * (i + 1), lambda s, i=i: signer.sign_new(isp_start=900 * (i + 1), sequence=s, import_wh=i, export_wh=0), now=900 * (i + 2))
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert os.path.exists(path)
    with Outbox(path) as outbox:
        signer = MeterSigner(meter_key, domain)
        assert [r.sequence for r in outbox.pending()] == [1, 2, 3, 4, 5]
        assert outbox.last_sequence(signer.address) == 5
        assert all(SignedReading.from_json(r.payload).reading.meter == signer.address for r in outbox.pending())


NOW = 1_800_000_000 - 1_800_000_000 % 900  # an ISP boundary
TEN_YEARS = 10 * 365 * 86_400


def test_RT14_a_far_future_isp_is_quarantined_and_blocks_nothing(
    tmp_path: Path, meter_key: bytes, domain: OracleDomain
) -> None:
    """poc_edge_clock_jump.py: a reading for an ISP ten years ahead is not signed (quarantined); the
    real ISPs after it are signed, in sequence."""
    signer = MeterSigner(meter_key, domain)
    with Outbox(tmp_path / "o.sqlite3") as outbox:
        assert _append(outbox, signer, NOW + TEN_YEARS, now=NOW) is None
        later = [_append(outbox, signer, NOW + k * 900, now=NOW + (k + 1) * 900) for k in range(4)]
        assert all(r is not None for r in later)
        assert [r.reading.sequence for r in later if r] == [1, 2, 3, 4]
        assert [(isp, "outside" in why) for _m, isp, why in outbox.quarantined()] == [(NOW + TEN_YEARS, True)]
        # the lower bound: an ISP older than the horizon (a clock jump backwards, a stale register) neither
        assert _append(outbox, signer, NOW - 8 * 86_400, now=NOW + 5 * 900) is None
        # and an ISP that has not ended yet (a clock behind the meter's data)
        assert _append(outbox, signer, NOW + 5 * 900, now=NOW + 5 * 900) is None
        assert len(outbox.quarantined()) == 3


def test_RT14_an_isp_signed_while_the_clock_was_ahead_does_not_block_later_ones(
    tmp_path: Path, meter_key: bytes, domain: OracleDomain
) -> None:
    """The clock itself jumped: the agent signed the future ISP with the future clock. Once the clock is
    right again, the real ISPs are signed; the future ISP is never signed a second time (no equivocation)."""
    signer = MeterSigner(meter_key, domain)
    future = NOW + 2 * 3600  # two hours ahead: real time reaches it soon
    with Outbox(tmp_path / "o.sqlite3") as outbox:
        assert _append(outbox, signer, future, now=future + 900) is not None  # signed during the jump
        assert _append(outbox, signer, NOW, now=NOW + 900) is not None  # the clock is right again
        assert _append(outbox, signer, NOW + 900, now=NOW + 2 * 900) is not None
        assert _append(outbox, signer, future, import_wh=99, now=future + 900) is None  # never twice
        assert _append(outbox, signer, future + 900, now=future + 2 * 900) is not None
        assert [r.sequence for r in outbox.pending()] == [1, 2, 3, 4]


def test_RT14_a_schema_1_outbox_keeps_its_last_isp_signed_once(
    tmp_path: Path, meter_key: bytes, domain: OracleDomain
) -> None:
    """An outbox written before the clock bounds (schema 1) with a future last ISP: upgraded in place,
    the later ISPs are signed and the future one is still never signed twice."""
    import sqlite3

    signer = MeterSigner(meter_key, domain)
    path = tmp_path / "o.sqlite3"
    future = NOW + 3600
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, meter TEXT NOT NULL, sequence INTEGER NOT NULL,
            isp_start INTEGER NOT NULL, topic TEXT NOT NULL, payload BLOB NOT NULL, stored_at REAL NOT NULL,
            UNIQUE (meter, sequence));
        CREATE TABLE meter_state (meter TEXT PRIMARY KEY, last_sequence INTEGER NOT NULL, last_isp_start INTEGER NOT NULL);
        PRAGMA user_version=1;
    """)
    db.execute("INSERT INTO meter_state VALUES (?, 7, ?)", (signer.address, future))
    db.commit()
    db.close()
    with Outbox(path) as outbox:
        signed = _append(outbox, signer, NOW, now=NOW + 900)
        assert signed is not None and signed.reading.sequence == 8
        assert _append(outbox, signer, future, now=future + 900) is None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(st.integers(-200, 200), st.integers(-3, 3), st.booleans()), min_size=1, max_size=25))
def test_RT14_class_no_isp_twice_and_no_reading_blocked_by_a_jump(
    tmp_path_factory: pytest.TempPathFactory, meter_key: bytes, domain: OracleDomain,
    steps: list[tuple[int, int, bool]],
) -> None:
    """Any mix of clock jumps (the clock ``jump`` ISPs off, for one boundary) and honest boundaries: an ISP
    is never signed twice, nothing is signed outside the bounds of the clock it was signed under, and an
    honest boundary's reading (the clock right, its ISP new and after the last honest one) is always signed."""
    signer = MeterSigner(meter_key, domain)
    outbox = Outbox(tmp_path_factory.mktemp("fuzz") / "o.sqlite3")
    t = NOW
    honest_last: int | None = None
    signed: list[int] = []
    with outbox:
        for jump, shift, honest in steps:
            t += 900
            if honest:
                isp, clock = t - 900, t
            else:  # the clock is `jump` ISPs off; the reading is for an ISP near that wrong time, or any ISP
                clock = t + jump * 900
                isp = clock - 900 + shift * 900
            made = _append(outbox, signer, isp, now=clock)
            if made is not None:
                assert isp not in signed
                assert clock - outbox.horizon_s <= isp <= outbox.latest_signable(clock)
                signed.append(isp)
            if honest:
                fresh = isp not in signed[:-1] if made is not None else isp not in signed
                if fresh and (honest_last is None or isp > honest_last):
                    assert made is not None, (isp, signed)
                honest_last = isp if made is not None else honest_last
