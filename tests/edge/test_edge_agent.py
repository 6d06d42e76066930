"""The agent's loop with a simulated meter and an in-memory broker; the command line."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from dispatch_world import signed_order
from eth_utils import keccak

from flexledger_edge.agent import EdgeAgent
from flexledger_edge.cli import main
from flexledger_edge.config import load_config
from flexledger_edge.outbox import Outbox
from flexledger_edge.reading import OracleDomain, SignedReading, verify

ISP = 900
START = 1_700_000_000 - 1_700_000_000 % ISP


class StepClock:
    """Simulated time that jumps to whatever the agent waits for."""

    def __init__(self, t: float) -> None:
        self.t = t

    def now(self) -> float:
        return self.t

    def wait_until(self, at: float, stop: threading.Event) -> bool:
        if stop.is_set():
            return False
        self.t = max(self.t, at)
        return True


def _readings(broker: Any) -> list[SignedReading]:
    return [SignedReading.from_json(p) for t, p in broker.received if t.startswith("flexledger/v1/readings/")]


def test_run_signs_stores_and_publishes_each_isp(
    write_config: Callable[..., Path], fake_broker: Any, domain: OracleDomain
) -> None:
    config = load_config(write_config())
    agent = EdgeAgent(config, StepClock(START), session_factory=fake_broker.connect)
    assert agent.run(isps=4, drain_s=5) == 4
    readings = _readings(fake_broker)
    assert [r.reading.sequence for r in readings] == [1, 2, 3, 4]
    assert [r.reading.isp_start for r in readings] == [START + i * ISP for i in range(4)]
    assert all(verify(r, domain) and r.reading.meter == agent.meter for r in readings)
    assert agent.left_in_outbox == 0

    # A restart continues the sequence; the first boundary after it only sets a baseline.
    again = EdgeAgent(config, StepClock(START + 10 * ISP), session_factory=fake_broker.connect)
    assert again.run(isps=2, drain_s=5) == 2
    assert [r.reading.sequence for r in _readings(fake_broker)] == [1, 2, 3, 4, 5, 6]


def test_broker_down_keeps_readings_for_the_next_start(
    write_config: Callable[..., Path], fake_broker: Any
) -> None:
    config = load_config(write_config())
    fake_broker.up = False
    agent = EdgeAgent(config, StepClock(START), session_factory=fake_broker.connect)
    assert agent.run(isps=3, drain_s=0) == 3
    assert agent.left_in_outbox == 3 and fake_broker.received == []
    fake_broker.up = True
    with Outbox(config.outbox_path) as outbox:
        assert [r.sequence for r in outbox.pending()] == [1, 2, 3]
    EdgeAgent(config, StepClock(START + 100 * ISP), session_factory=fake_broker.connect).run(isps=1, drain_s=5)
    assert [r.reading.sequence for r in _readings(fake_broker)] == [1, 2, 3, 4]


def test_orders_are_acknowledged_and_change_the_metered_energy(
    write_config: Callable[..., Path], fake_broker: Any
) -> None:
    config = load_config(write_config())
    clock = StepClock(START)
    agent = EdgeAgent(config, clock, session_factory=fake_broker.connect)
    agent.publisher.step(0)
    assert fake_broker.session.subscriptions == [f"flexledger/v1/receipts/{agent.meter.lower()}", "flexledger/v1/orders/7"]
    agent.at_boundary(START)  # baseline
    order: dict[str, Any] = {"isp_start": START + ISP, "isps": 1, "power_w": 5000, "expires_at": START + 2 * ISP}
    fake_broker.session.deliver("flexledger/v1/orders/7", signed_order(**order))
    topic, payload = fake_broker.received[-1]
    assert topic == "flexledger/v1/acks/7"
    a = "0x" + keccak(text="o-1").hex()
    assert json.loads(payload) == {"orderId": a, "asset": 7, "status": "accepted", "reason": None, "at": START}
    agent.at_boundary(START + ISP)  # the battery starts discharging for this ISP
    clock.t = START + 2 * ISP
    signed = agent.at_boundary(START + 2 * ISP)
    assert signed is not None and signed.reading.isp_start == START + ISP
    # 5 kW for 15 minutes is 1250 Wh injected, minus the house's own consumption.
    assert signed.reading.export_wh > 500 and signed.reading.import_wh == 0

    config.override_file.parent.mkdir(parents=True, exist_ok=True)
    config.override_file.touch()
    fake_broker.session.deliver("flexledger/v1/orders/7", signed_order(**{**order, "order_id": keccak(text="b"),
                                                                          "isp_start": START + 4 * ISP}))
    ack = json.loads(fake_broker.received[-1][1])
    assert ack["status"] == "overridden" and "override" in ack["reason"]
    agent.publisher.close()
    agent.outbox.close()


def test_help_explains(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "run" in out and "outbox" in out and "override" in out
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    assert "--accelerated" in out and "--isps" in out and "--config" in out


def test_config_errors_are_printed_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "agent.toml"
    bad.write_text('chain_id = 1\noracle_address = "nope"\n')
    assert main(["run", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "oracle_address" in err and "Traceback" not in err
    assert main(["run", "--config", str(tmp_path / "missing.toml")]) == 2
    assert "no such configuration file" in capsys.readouterr().err


def test_cli_accelerated_run_without_a_broker(write_config: Callable[..., Path]) -> None:
    config_path = write_config()
    exe = Path(sys.executable).parent / "flexledger-edge"
    proc = subprocess.run(
        [str(exe), "run", "--config", str(config_path), "--accelerated", "0.05", "--isps", "3", "--drain-seconds", "0"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "3 reading(s) signed; 3 left in the outbox" in proc.stdout
    with Outbox(load_config(config_path).outbox_path) as outbox:
        assert [r.sequence for r in outbox.pending()] == [1, 2, 3]


def test_the_mqtt_client_id_is_random_per_install_and_kept(write_config: Callable[..., Path], tmp_path: Path) -> None:
    """Also seen (issue 17, finding 4): a client id derived from the meter's public address lets anyone's
    clean-session CONNECT wipe the agent's persistent session; each install draws its own."""
    from flexledger_edge.agent import install_client_id

    config = load_config(write_config())
    first = install_client_id(config.client_id_path)
    assert first.startswith("flexledger-edge-") and len(first) > 30
    assert install_client_id(config.client_id_path) == first
    assert (config.client_id_path.stat().st_mode & 0o777) == 0o600
    other = load_config(write_config(state_dir="other-state"))
    assert install_client_id(other.client_id_path) != first
    agent = EdgeAgent(config, StepClock(START), session_factory=lambda _c: None)  # type: ignore[arg-type,return-value]
    assert agent.client_id == first and agent.meter.lower() not in first
    agent.outbox.close()
    # with a broker user, the id is the user's: a broker that authenticates binds the session to it
    named = load_config(write_config(broker={"url": "mqtt://127.0.0.1:1", "username": "gw-7", "password": "p"}))
    with_user = EdgeAgent(named, StepClock(START), session_factory=lambda _c: None)  # type: ignore[arg-type,return-value]
    assert with_user.client_id == "gw-7"
    with_user.outbox.close()


def test_a_simulated_meter_backfills_a_past_day(write_config: Callable[..., Path],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    config_path = write_config()
    yesterday = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).date()
    midnight = int(dt.datetime(yesterday.year, yesterday.month, yesterday.day, tzinfo=dt.UTC).timestamp())
    assert main(["run", "--config", str(config_path), "--day", yesterday.isoformat(), "--backfill",
                 "--drain-seconds", "0"]) == 0
    assert "96 reading(s) signed; 96 left in the outbox" in capsys.readouterr().out
    with Outbox(load_config(config_path).outbox_path) as outbox:
        isps = [SignedReading.from_json(r.payload).reading.isp_start for r in outbox.pending()]
    assert isps == list(range(midnight, midnight + 86_400, 900))


def test_start_day_and_backfill_are_refused_where_they_cannot_hold(write_config: Callable[..., Path],
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    config_path = write_config()
    tomorrow = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).date().isoformat()
    cases = [
        (["--day", tomorrow, "--backfill"], "past ISPs only"),
        (["--start", "2026-01-01T00:00:00Z"], "need --accelerated SECONDS_PER_ISP or --backfill"),
        (["--start", "2026-01-01T00:05:00Z", "--accelerated", "1"], "is not the start of a 900 s ISP"),
        (["--backfill"], "needs the past ISPs to meter"),
    ]
    for extra, problem in cases:
        assert main(["run", "--config", str(config_path), *extra]) == 2, extra
        assert problem in capsys.readouterr().err
    modbus = write_config(name="modbus.toml", driver={"kind": "modbus", "host": "127.0.0.1"})
    assert main(["run", "--config", str(modbus), "--day", "2026-01-01", "--backfill"]) == 2
    assert "only a simulated meter has" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["run", "--config", str(config_path), "--day", "yesterday"])
    assert "not a day written YYYY-MM-DD" in capsys.readouterr().err
