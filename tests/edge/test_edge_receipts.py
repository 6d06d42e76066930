"""What the agent does with the oracle's receipts beyond clearing a row: it keeps the signed
"accepted" ones (an omission claim is filed with them) for a bounded time; it never re-sends for
ever a reading the oracle can never take (refused for good, older than the oracle's retention, or
unreceipted past ``give_up_s``): it quarantines it with its reason and payload, counted and logged;
and it says loudly when no receipt can come (a refused subscription, or none ever)."""

from __future__ import annotations

import json
import logging
import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from flexledger_edge.outbox import Outbox
from flexledger_edge.publisher import Backoff, ReadingPublisher, ResendPolicy
from flexledger_edge.reading import MeterSigner, OracleDomain, SignedReading
from flexledger_edge.topics import receipts_topic

DAY = 86_400
NOW = 1_800_000_000  # the agent's clock in these tests


class ManualClock:
    def __init__(self, t: float = 0.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _store(outbox: Outbox, signer: MeterSigner, isps: list[int], now: float) -> None:
    for isp in isps:
        def sign(sequence: int, isp: int = isp) -> SignedReading:
            return signer.sign_new(isp_start=isp, sequence=sequence, import_wh=5, export_wh=1)
        assert outbox.append(signer.address, isp, sign, now=now) is not None


def _publisher(outbox: Outbox, broker: Any, signer: MeterSigner, wall: ManualClock,
               policy: ResendPolicy | None = None) -> tuple[ReadingPublisher, ManualClock]:
    clock = ManualClock()
    publisher = ReadingPublisher(outbox, broker.connect, backoff=Backoff(1.0, 8.0, rng=random.Random(1)),
                                 clock=clock, receipts=policy or ResendPolicy(10.0, 40.0, give_up_s=3600.0),
                                 wall=wall)
    publisher.subscribe(receipts_topic(signer.address), publisher.on_receipt)
    return publisher, clock


def _receipt(row: SignedReading, outcome: str, **extra: Any) -> bytes:
    r = row.reading
    return json.dumps({"meter": r.meter, "ispStart": r.isp_start, "sequence": r.sequence, "importWh": r.import_wh,
                       "exportWh": r.export_wh, "outcome": outcome, **extra}).encode()


def _rows(outbox: Outbox) -> list[SignedReading]:
    return [SignedReading.from_json(r.payload) for r in outbox.pending()]


def test_an_accepted_signed_receipt_is_kept_and_pruned_after_its_horizon(
        tmp_path: Path, meter_key: bytes, domain: OracleDomain, fake_broker: Any) -> None:
    signer = MeterSigner(meter_key, domain)
    fake_broker.receipts = False  # the receipts are delivered by hand
    wall = ManualClock(NOW)
    with Outbox(tmp_path / "o.sqlite3", receipts_keep_s=2 * DAY) as outbox:
        isps = [NOW - 4 * 900, NOW - 3 * 900, NOW - 2 * 900]
        _store(outbox, signer, isps, NOW)
        publisher, _ = _publisher(outbox, fake_broker, signer, wall)
        publisher.step(0)
        first, second, third = _rows(outbox)
        topic = receipts_topic(signer.address)
        signed = {"market": 1, "accepted": True, "oracle": "0x" + "0a" * 20, "signature": "0x" + "11" * 65}
        fake_broker.session.deliver(topic, _receipt(first, "stored", **signed))
        fake_broker.session.deliver(topic, _receipt(second, "late", **{**signed, "accepted": False}))
        fake_broker.session.deliver(topic, _receipt(third, "stored"))  # an oracle that does not sign
        assert outbox.count() == 0
        (kept,) = outbox.receipts()
        assert (kept.isp_start, kept.sequence, kept.market) == (isps[0], 1, 1)
        assert json.loads(kept.body)["signature"] == signed["signature"]
        # another reading receipted three days later prunes the first (kept two days)
        wall.t = NOW + 3 * DAY
        _store(outbox, signer, [NOW + 3 * DAY - 2 * 900], NOW + 3 * DAY)
        publisher.step(0)
        (fourth,) = _rows(outbox)
        fake_broker.session.deliver(topic, _receipt(fourth, "stored", **signed))
        assert [r.sequence for r in outbox.receipts()] == [4]


def test_a_reading_refused_for_good_is_quarantined_with_its_reason_not_resent(
        tmp_path: Path, meter_key: bytes, domain: OracleDomain, fake_broker: Any,
        caplog: pytest.LogCaptureFixture) -> None:
    signer = MeterSigner(meter_key, domain)
    fake_broker.receipts = False
    wall = ManualClock(NOW)
    with Outbox(tmp_path / "o.sqlite3") as outbox:
        _store(outbox, signer, [NOW - 3 * 900, NOW - 2 * 900], NOW)
        publisher, clock = _publisher(outbox, fake_broker, signer, wall)
        publisher.step(0)
        refused, conflicting = _rows(outbox)
        topic = receipts_topic(signer.address)
        with caplog.at_level(logging.ERROR, logger="flexledger_edge.outbox"):
            fake_broker.session.deliver(topic, _receipt(refused, "unknown_meter"))
            fake_broker.session.deliver(topic, _receipt(conflicting, "conflicting"))
        assert outbox.count() == 0 and publisher.quarantined_count == 2
        assert [(t, r) for _m, t, r in outbox.quarantined()] == [
            (NOW - 3 * 900, "refused by the oracle: unknown_meter"), (NOW - 2 * 900, "refused by the oracle: conflicting")]
        assert "quarantined" in caplog.text
        sent = len(fake_broker.received)
        for t in (100, 1000, 5000):
            clock.t = t
            publisher.step(0)
        assert len(fake_broker.received) == sent, "never sent again"
        # the payload is kept: still the meter's signed word
        with sqlite3.connect(outbox.path) as db:
            payloads = [bytes(p[0]) for p in db.execute("SELECT payload FROM quarantine ORDER BY id")]
        assert SignedReading.from_json(payloads[0]).reading == refused.reading


def test_a_reading_older_than_the_oracles_retention_is_quarantined_before_it_is_sent(
        tmp_path: Path, meter_key: bytes, domain: OracleDomain, fake_broker: Any) -> None:
    signer = MeterSigner(meter_key, domain)
    wall = ManualClock(NOW)
    with Outbox(tmp_path / "o.sqlite3") as outbox:
        _store(outbox, signer, [NOW - 2 * 900, NOW - 900], NOW)
        wall.t = NOW + 7 * DAY - 1000  # offline for a week: the first is now too old, not the second
        publisher, _ = _publisher(outbox, fake_broker, signer, wall, ResendPolicy(10.0, 40.0, give_up_s=30 * DAY))
        publisher.step(0)
        publisher.step(0)
        assert [SignedReading.from_json(p).reading.sequence for _t, p in fake_broker.received] == [2]
        assert [r for _m, _t, r in outbox.quarantined()] == ["older than the oracle's 7-day retention: it would "
                                                             "be refused"]
        assert outbox.count() == 0 and publisher.quarantined_count == 1


def test_a_reading_never_receipted_is_given_up_after_give_up_s_and_the_receipts_are_silent(
        tmp_path: Path, meter_key: bytes, domain: OracleDomain, fake_broker: Any,
        caplog: pytest.LogCaptureFixture) -> None:
    signer = MeterSigner(meter_key, domain)
    fake_broker.receipts = False  # an oracle that never answers (or whose receipts cannot come)
    wall = ManualClock(NOW)
    with Outbox(tmp_path / "o.sqlite3") as outbox:
        _store(outbox, signer, [NOW - 2 * 900], NOW)
        publisher, clock = _publisher(outbox, fake_broker, signer, wall)
        assert publisher.receipts_state() == "waiting"
        with caplog.at_level(logging.ERROR, logger="flexledger_edge.publisher"):
            while clock.t < 200:
                publisher.step(0)
                clock.t += 1
        assert publisher.receipts_state() == "silent"
        assert "no receipt from the oracle has ever come" in caplog.text
        assert outbox.count() == 1, "kept until the horizon"
        wall.t = NOW + 3601
        clock.t += 100
        publisher.step(0)
        assert outbox.count() == 0 and publisher.quarantined_count == 1
        assert outbox.quarantined()[0][2] == "no receipt from the oracle within 3600 s"
        sent = len(fake_broker.received)
        clock.t += 1000
        publisher.step(0)
        assert len(fake_broker.received) == sent
        assert publisher.status()["quarantined"] == 1


def test_a_refused_receipts_subscription_is_a_status_not_silence(
        tmp_path: Path, meter_key: bytes, domain: OracleDomain, fake_broker: Any) -> None:
    signer = MeterSigner(meter_key, domain)
    with Outbox(tmp_path / "o.sqlite3") as outbox:
        publisher, _ = _publisher(outbox, fake_broker, signer, ManualClock(NOW))
        publisher.step(0)
        fake_broker.session.callbacks.on_refused(receipts_topic(signer.address))  # the broker's SUBACK 0x80
        assert publisher.receipts_state() == "refused"
        assert publisher.status()["refused_subscriptions"] == [receipts_topic(signer.address)]


def test_a_schema_2_outbox_gains_the_quarantine_payload_and_the_receipts(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript("""
            CREATE TABLE quarantine (id INTEGER PRIMARY KEY AUTOINCREMENT, meter TEXT NOT NULL,
                isp_start INTEGER NOT NULL, clock REAL NOT NULL, reason TEXT NOT NULL);
            INSERT INTO quarantine (meter, isp_start, clock, reason) VALUES ('0xab', 900, 1.0, 'clock');
            PRAGMA user_version = 2;
        """)
    with Outbox(path) as outbox:
        assert outbox.quarantined() == [("0xab", 900, "clock")]
        assert outbox.receipts() == []
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 3


def test_flexledger_edge_status_says_when_no_receipt_can_come(
        write_config: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from flexledger_edge.cli import main
    from flexledger_edge.config import load_config

    path = write_config()
    config = load_config(path)
    config.state_dir.mkdir(parents=True, exist_ok=True)
    with Outbox(config.outbox_path) as outbox:
        outbox.quarantine("0xab", 900, 1.0, "clock")
    config.status_path.write_text(json.dumps({"receipts": "ok", "outbox": 0}))
    assert main(["status", "--config", str(path)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["receipts"] == "ok" and shown["quarantine"] == [{"meter": "0xab", "ispStart": 900, "reason": "clock"}]
    config.status_path.write_text(json.dumps({"receipts": "refused"}))
    assert main(["status", "--config", str(path)]) == 1
    assert main(["receipts", "--config", str(path)]) == 0


def test_a_reading_refused_as_future_stays_and_is_taken_when_sent_again(
        tmp_path: Path, meter_key: bytes, domain: OracleDomain, fake_broker: Any) -> None:
    """A gateway whose clock runs ahead of the oracle's: the oracle refuses its reading as `future`;
    the reading is not lost after the broker's PUBACK, nor quarantined: it is sent again later and
    cleared by the oracle's receipt then."""
    signer = MeterSigner(meter_key, domain)
    fake_broker.receipts = False
    wall = ManualClock(NOW)
    with Outbox(tmp_path / "o.sqlite3") as outbox:
        _store(outbox, signer, [NOW - 900], NOW)
        publisher, clock = _publisher(outbox, fake_broker, signer, wall)
        publisher.step(0)
        (early,) = _rows(outbox)
        topic = receipts_topic(signer.address)
        fake_broker.session.deliver(topic, _receipt(early, "future"))
        assert outbox.count() == 1 and publisher.quarantined_count == 0 and publisher.deferred_count == 1
        assert publisher.status()["deferred"] == 1
        sent = len(fake_broker.received)
        clock.t = 5
        publisher.step(0)
        assert len(fake_broker.received) == sent, "not before the resend delay"
        clock.t = 11
        publisher.step(0)
        assert len(fake_broker.received) == sent + 1, "sent again after it"
        fake_broker.session.deliver(topic, _receipt(early, "stored"))
        assert outbox.count() == 0 and outbox.quarantined() == []
