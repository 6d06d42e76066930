"""Store-and-forward with an in-memory broker: outages lose nothing; resends are in order."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from flexledger_edge.outbox import Outbox
from flexledger_edge.publisher import Backoff, ReadingPublisher, ResendPolicy
from flexledger_edge.reading import MeterSigner, OracleDomain, SignedReading
from flexledger_edge.topics import receipts_topic


class ManualClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _store(outbox: Outbox, signer: MeterSigner, n: int, first_isp: int = 900) -> None:
    start = outbox.last_isp_start(signer.address) or (first_isp - 900)
    for i in range(n):
        isp = start + 900 * (i + 1)

        def sign(sequence: int, isp: int = isp) -> SignedReading:
            return signer.sign_new(isp_start=isp, sequence=sequence, import_wh=5, export_wh=1)

        outbox.append(signer.address, isp, sign, now=isp + 900)


def _sequences(received: list[tuple[str, bytes]]) -> list[int]:
    return [SignedReading.from_json(payload).reading.sequence for _, payload in received]


def _publisher(outbox: Outbox, broker: Any, clock: ManualClock, **kw: Any) -> ReadingPublisher:
    return ReadingPublisher(outbox, broker.connect, backoff=Backoff(1.0, 8.0, rng=random.Random(1)), clock=clock, **kw)


def test_rows_are_published_in_order_and_deleted_on_puback(
    tmp_path: Path, meter_key: bytes, domain: OracleDomain, fake_broker: Any
) -> None:
    signer = MeterSigner(meter_key, domain)
    with Outbox(tmp_path / "o.sqlite3") as outbox:
        _store(outbox, signer, 5)
        publisher = _publisher(outbox, fake_broker, ManualClock())
        publisher.step(0)
        assert _sequences(fake_broker.received) == [1, 2, 3, 4, 5]
        assert {t for t, _ in fake_broker.received} == {"flexledger/v1/readings/" + signer.address.lower()}
        assert outbox.count() == 0
        _store(outbox, signer, 2)
        publisher.step(0)
        publisher.step(0)
        assert _sequences(fake_broker.received) == [1, 2, 3, 4, 5, 6, 7]


def test_no_puback_keeps_rows_until_acknowledged(tmp_path: Path, meter_key: bytes, domain: OracleDomain, fake_broker: Any) -> None:
    signer = MeterSigner(meter_key, domain)
    with Outbox(tmp_path / "o.sqlite3") as outbox:
        _store(outbox, signer, 3)
        fake_broker.auto_ack = False
        publisher = _publisher(outbox, fake_broker, ManualClock())
        publisher.step(0)
        publisher.step(0)
        assert _sequences(fake_broker.received) == [1, 2, 3]  # sent once, not again while in flight
        assert outbox.count() == 3
        fake_broker.auto_ack = True
        publisher.step(0)
        assert outbox.count() == 0 and _sequences(fake_broker.received) == [1, 2, 3]


def test_outage_loses_nothing_and_resends_in_order_exactly_once(
    tmp_path: Path, meter_key: bytes, domain: OracleDomain, fake_broker: Any
) -> None:
    signer = MeterSigner(meter_key, domain)
    clock = ManualClock()
    with Outbox(tmp_path / "o.sqlite3") as outbox:
        publisher = _publisher(outbox, fake_broker, clock)
        _store(outbox, signer, 2)
        publisher.step(0)
        assert _sequences(fake_broker.received) == [1, 2] and outbox.count() == 0

        fake_broker.up = False  # the network goes away
        _store(outbox, signer, 3)
        publisher.step(0)  # publish refused: session dropped
        assert not publisher.connected
        for _ in range(5):  # attempts while down fail; nothing is lost
            clock.t += 100
            publisher.step(0)
        assert outbox.count() == 3
        assert _sequences(fake_broker.received) == [1, 2]

        fake_broker.up = True
        clock.t += 100
        publisher.step(0)
        assert _sequences(fake_broker.received) == [1, 2, 3, 4, 5]
        assert outbox.count() == 0
        publisher.step(0)
        assert _sequences(fake_broker.received) == [1, 2, 3, 4, 5]  # exactly once


def test_lost_pubacks_are_resent_on_the_next_session_in_order(
    tmp_path: Path, meter_key: bytes, domain: OracleDomain, fake_broker: Any
) -> None:
    signer = MeterSigner(meter_key, domain)
    clock = ManualClock()
    with Outbox(tmp_path / "o.sqlite3") as outbox:
        _store(outbox, signer, 4)
        fake_broker.auto_ack = False
        publisher = _publisher(outbox, fake_broker, clock)
        publisher.step(0)
        first = fake_broker.session
        first.callbacks.on_puback(first.unacked[0])  # only reading 1 acknowledged
        fake_broker.up = False
        publisher.step(0)
        assert not publisher.connected and outbox.count() == 3
        fake_broker.up, fake_broker.auto_ack = True, True
        clock.t += 100
        publisher.step(0)
        assert _sequences(fake_broker.received) == [1, 2, 3, 4, 2, 3, 4]
        assert outbox.count() == 0
        # A late PUBACK from the dead session deletes nothing twice and breaks nothing.
        first.callbacks.on_puback(first.unacked[-1])
        assert outbox.count() == 0


def test_a_restart_resends_what_the_outbox_holds(tmp_path: Path, meter_key: bytes, domain: OracleDomain, fake_broker: Any) -> None:
    signer = MeterSigner(meter_key, domain)
    path = tmp_path / "o.sqlite3"
    with Outbox(path) as outbox:
        _store(outbox, signer, 3)  # stored, never sent (process dies)
    with Outbox(path) as outbox:
        _publisher(outbox, fake_broker, ManualClock()).step(0)
        assert _sequences(fake_broker.received) == [1, 2, 3] and outbox.count() == 0


def test_in_flight_window_and_backoff(tmp_path: Path, meter_key: bytes, domain: OracleDomain, fake_broker: Any) -> None:
    signer = MeterSigner(meter_key, domain)
    clock = ManualClock()
    with Outbox(tmp_path / "o.sqlite3") as outbox:
        _store(outbox, signer, 7)
        fake_broker.auto_ack = False
        publisher = _publisher(outbox, fake_broker, clock, max_in_flight=3)
        publisher.step(0)
        assert _sequences(fake_broker.received) == [1, 2, 3]
        fake_broker.auto_ack = True
        publisher.step(0)
        publisher.step(0)
        publisher.step(0)
        assert _sequences(fake_broker.received) == [1, 2, 3, 4, 5, 6, 7]

        fake_broker.up = False
        publisher.step(0)
        attempts = fake_broker.attempts
        publisher.step(0)  # too early: no new attempt
        assert fake_broker.attempts == attempts
        delays = []
        for _ in range(6):
            delays.append(publisher.seconds_until_retry())
            clock.t += publisher.seconds_until_retry()
            publisher.step(0)
        assert fake_broker.attempts == attempts + 6
        assert all(d <= 8.0 for d in delays) and delays[-1] >= 4.0


# -- end-to-end acknowledgement: the oracle's receipt, not the broker's PUBACK, clears a row -----------


def _receipting(outbox: Outbox, broker: Any, clock: ManualClock, signer: MeterSigner) -> ReadingPublisher:
    publisher = _publisher(outbox, broker, clock, receipts=ResendPolicy(10.0, 40.0))
    publisher.subscribe(receipts_topic(signer.address), publisher.on_receipt)
    return publisher


def test_a_reading_the_broker_acknowledged_but_the_oracle_lost_is_sent_again_until_stored(
    tmp_path: Path, meter_key: bytes, domain: OracleDomain, fake_broker: Any
) -> None:
    signer = MeterSigner(meter_key, domain)
    clock = ManualClock()
    fake_broker.oracle_loses = 2  # PUBACKed, never stored: the oracle lost its session, say
    with Outbox(tmp_path / "o.sqlite3") as outbox:
        _store(outbox, signer, 3)
        publisher = _receipting(outbox, fake_broker, clock, signer)
        publisher.step(0)
        publisher.step(0)
        assert fake_broker.stored == [(signer.address, 3)]
        assert [r.sequence for r in outbox.pending()] == [1, 2]  # PUBACK alone deletes nothing
        clock.t = 9.9
        publisher.step(0)
        assert _sequences(fake_broker.received) == [1, 2, 3]  # not before the resend interval
        clock.t = 10.0
        publisher.step(0)
        publisher.step(0)
        assert _sequences(fake_broker.received) == [1, 2, 3, 1, 2]
        assert sorted(fake_broker.stored) == sorted([(signer.address, s) for s in (1, 2, 3)])
        assert outbox.count() == 0 and publisher.resent_count == 2 and publisher.acked_count == 3


def test_resends_back_off_and_stay_bounded(
    tmp_path: Path, meter_key: bytes, domain: OracleDomain, fake_broker: Any
) -> None:
    signer = MeterSigner(meter_key, domain)
    clock = ManualClock()
    fake_broker.receipts = False  # an oracle that never answers
    with Outbox(tmp_path / "o.sqlite3") as outbox:
        _store(outbox, signer, 1)
        publisher = _receipting(outbox, fake_broker, clock, signer)
        sent_at: list[float] = []
        while clock.t <= 200:
            before = len(fake_broker.received)
            publisher.step(0)
            if len(fake_broker.received) > before:
                sent_at.append(clock.t)
            clock.t += 1
        # 10, 20, 40, then the 40 s ceiling
        assert sent_at == [0, 10, 30, 70, 110, 150, 190]
        assert outbox.count() == 1


def test_a_receipt_for_another_reading_or_a_malformed_one_clears_nothing(
    tmp_path: Path, meter_key: bytes, domain: OracleDomain, fake_broker: Any
) -> None:
    signer = MeterSigner(meter_key, domain)
    fake_broker.receipts = False
    with Outbox(tmp_path / "o.sqlite3") as outbox:
        _store(outbox, signer, 2)
        publisher = _receipting(outbox, fake_broker, ManualClock(), signer)
        publisher.step(0)
        row = SignedReading.from_json(outbox.pending()[0].payload).reading
        good = {"meter": row.meter, "ispStart": row.isp_start, "sequence": row.sequence,
                "importWh": row.import_wh, "exportWh": row.export_wh, "outcome": "stored"}
        topic = receipts_topic(signer.address)
        for bad in (
            {**good, "importWh": row.import_wh + 1},
            {**good, "exportWh": row.export_wh + 1},
            {**good, "ispStart": row.isp_start + 900},
            {**good, "sequence": 3},
            {**good, "meter": "0x" + "ab" * 20},
            {**good, "sequence": True},
            {**good, "importWh": "5"},
            {k: v for k, v in good.items() if k != "exportWh"},
        ):
            fake_broker.session.deliver(topic, json.dumps(bad).encode())
        for raw in (b"", b"not json", b"[1, 2]", b"\xff\xfe", json.dumps({**good, "meter": None}).encode()):
            fake_broker.session.deliver(topic, raw)
        assert outbox.count() == 2
        fake_broker.session.deliver(topic, json.dumps({**good, "meter": row.meter.lower()}).encode())
        assert [r.sequence for r in outbox.pending()] == [2]


def test_without_receipts_a_puback_clears_the_row(
    tmp_path: Path, meter_key: bytes, domain: OracleDomain, fake_broker: Any
) -> None:
    signer = MeterSigner(meter_key, domain)
    fake_broker.oracle_loses = 1
    with Outbox(tmp_path / "o.sqlite3") as outbox:
        _store(outbox, signer, 1)
        _publisher(outbox, fake_broker, ManualClock()).step(0)
        assert outbox.count() == 0
