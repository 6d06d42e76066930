"""The outbox: signed before sending, ordered, durable across kills, sequences persisted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from flexledger_edge.outbox import Outbox
from flexledger_edge.reading import MeterSigner, OracleDomain, SignedReading


def _append(outbox: Outbox, signer: MeterSigner, isp_start: int, import_wh: int = 10) -> SignedReading | None:
    return outbox.append(
        signer.address, isp_start,
        lambda seq: signer.sign_new(isp_start=isp_start, sequence=seq, import_wh=import_wh, export_wh=0),
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
        assert _append(outbox, signer, 1800) is not None
        assert _append(outbox, signer, 1800, import_wh=11) is None
        assert _append(outbox, signer, 900) is None
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
            outbox.append(signer.address, 900 * (i + 1), lambda s, i=i: signer.sign_new(isp_start=900 * (i + 1), sequence=s, import_wh=i, export_wh=0))
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
