"""The meter's key outside the agent: an external signer over a real Unix socket.

The agent asks a signer daemon for each reading's signature and checks that it recovers to the
configured meter; a signer that is down leaves the measured ISPs waiting (on disk), signed in order
once it answers again; the daemon signs one reading per ISP, whoever asks.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import socketserver
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data

from flexledger_edge.agent import EdgeAgent
from flexledger_edge.cli import main
from flexledger_edge.config import ConfigError, load_config
from flexledger_edge.metering import IspEnergy
from flexledger_edge.outbox import Outbox
from flexledger_edge.reading import OracleDomain, Reading, SignedReading, recover_signer, verify
from flexledger_edge.signer import (
    SignerError,
    SignerRefusedError,
    SignerUnavailableError,
    SocketSigner,
)
from flexledger_edge.signer_daemon import ReadingJournal, ReadingSigner, SignerServer, serve
from flexledger_edge.unsigned import UnsignedQueue

CHAIN_ID = 31337
ORACLE = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
METER_KEY = "0x" + "4c" * 32
ISP = 900
START = 1_700_000_000 - 1_700_000_000 % ISP
DOMAIN = OracleDomain(CHAIN_ID, ORACLE)
METER = Account.from_key(METER_KEY).address
OTHER_KEY = "0x" + "5d" * 32


def base_config(**overrides: Any) -> dict[str, Any]:
    """A simulated gateway without an asset (the edge conftest's, which tests cannot import by name)."""
    return {
        "chain_id": CHAIN_ID, "oracle_address": ORACLE, "mode": "development", "state_dir": "state",
        "meter": {"private_key": METER_KEY}, "broker": {"url": "mqtt://127.0.0.1:1"},
        "driver": {"kind": "simulated", "base_load_w": 500, "pv_peak_w": 3000, "seed": 7}, **overrides,
    }


class StepClock:
    """Simulated time that jumps to whatever the agent waits for; ``at`` runs hooks on the way."""

    def __init__(self, t: float) -> None:
        self.t = t
        self.hooks: list[tuple[float, Callable[[], object]]] = []

    def now(self) -> float:
        return self.t

    def wait_until(self, at: float, stop: threading.Event) -> bool:
        if stop.is_set():
            return False
        self.t = max(self.t, at)
        for hook in [h for h in self.hooks if h[0] <= self.t]:
            self.hooks.remove(hook)
            hook[1]()
        return True


class Daemon:
    """The reference signer daemon in a thread, on a real Unix socket; can be stopped and started."""

    def __init__(self, socket_path: Path, journal: Path, clock: Callable[[], float], key: str = METER_KEY) -> None:
        self.socket_path, self.journal_path, self.clock, self.key = socket_path, journal, clock, key
        self.thread: threading.Thread | None = None
        self.rules: ReadingSigner | None = None

    def start(self, allowed_uids: frozenset[int] | None = None) -> Daemon:
        journal = ReadingJournal(self.journal_path)
        self.rules = ReadingSigner(bytes.fromhex(self.key[2:]), DOMAIN, journal, clock=self.clock)
        server = SignerServer(self.socket_path, self.rules, allowed_uids=allowed_uids)
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=serve, args=(server, self.stop_event), daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.thread is not None:
            assert self.rules is not None
            self.stop_event.set()
            self.thread.join()
            self.rules.journal.close()
            self.thread = None


@pytest.fixture
def sock(tmp_path: Path) -> Path:
    return tmp_path / "signer.sock"


@pytest.fixture
def daemon(sock: Path, tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    made: list[Daemon] = []

    def make(clock: Callable[[], float], key: str = METER_KEY) -> Daemon:
        made.append(Daemon(sock, tmp_path / "signer-journal.sqlite3", clock, key))
        return made[-1]

    yield make
    for d in made:
        d.stop()


def _external(write_config: Callable[..., Path], sock: Path, **meter: Any) -> Path:
    return write_config(base_config(mode="production",
                                    meter={"signer": f"socket:{sock}", "address": METER, **meter}))


def _readings(broker: Any) -> list[SignedReading]:
    return [SignedReading.from_json(p) for t, p in broker.received if t.startswith("flexledger/v1/readings/")]


def test_the_agent_signs_through_the_daemon_over_a_unix_socket(
    write_config: Callable[..., Path], fake_broker: Any, sock: Path, daemon: Callable[..., Daemon]
) -> None:
    clock = StepClock(START)
    signer = daemon(lambda: clock.t).start()
    assert stat.S_IMODE(sock.stat().st_mode) == 0o660  # the agent's group may ask; others may not connect
    config = load_config(_external(write_config, sock))
    assert config.mode == "production" and config.meter.signer_socket == sock
    agent = EdgeAgent(config, clock, session_factory=fake_broker.connect)
    assert agent.meter == METER
    assert agent.run(isps=4, drain_s=5) == 4
    readings = _readings(fake_broker)
    assert [r.reading.sequence for r in readings] == [1, 2, 3, 4]
    assert [r.reading.isp_start for r in readings] == [START + i * ISP for i in range(4)]
    assert all(verify(r, DOMAIN) and r.reading.meter == METER for r in readings)
    assert signer.rules is not None and signer.rules.journal.signed_count() == 4
    with pytest.raises(ConfigError, match="external signer"):
        config.meter.load_private_key()  # the agent's host has no key to load


def _answering(sock: Path, answer: Callable[[dict[str, Any]], dict[str, Any]]) -> socketserver.UnixStreamServer:
    """A rogue signer on the socket: answers each request as ``answer`` says."""

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            request = json.loads(self.rfile.readline())
            self.wfile.write(json.dumps({"id": request["id"], **answer(request)}).encode() + b"\n")

    server = socketserver.UnixStreamServer(str(sock), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


def _signed_by(key: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def answer(request: dict[str, Any]) -> dict[str, Any]:
        m = request["message"]
        reading = Reading(m["meter"], m["ispStart"], m["sequence"], m["importWh"], m["exportWh"])
        signature = Account.from_key(key).sign_message(encode_typed_data(full_message=reading.typed_data(DOMAIN)))
        return {"signature": "0x" + bytes(signature.signature).hex()}

    return answer


@pytest.mark.parametrize(("answer", "message"), [
    (_signed_by(OTHER_KEY), "signed with 0x"),  # a valid signature, of another key
    (lambda r: {"signature": "0x" + "11" * 65}, "malformed signature"),
    (lambda r: {"signature": "0xzz"}, "malformed signature"),
    (lambda r: {"nothing": True}, "no signature"),
    (lambda r: {"error": {"code": "wrong_meter", "message": "not mine"}}, "wrong_meter"),
])
def test_a_signature_of_another_key_or_none_is_refused_and_the_reading_waits(
    write_config: Callable[..., Path], fake_broker: Any, sock: Path, daemon: Callable[..., Daemon],
    answer: Callable[[dict[str, Any]], dict[str, Any]], message: str,
) -> None:
    rogue = _answering(sock, answer)
    clock = StepClock(START)
    config = load_config(_external(write_config, sock))
    agent = EdgeAgent(config, clock, session_factory=fake_broker.connect)
    with pytest.raises(SignerError, match=message):
        agent.signer.sign_new(isp_start=START, sequence=1, import_wh=1, export_wh=0)
    assert agent.run(isps=2, drain_s=0) == 0
    assert _readings(fake_broker) == []  # nothing stored or sent with a signature that is not the meter's
    with UnsignedQueue(config.unsigned_path) as queue, Outbox(config.outbox_path) as outbox:
        assert [e.isp_start for e in queue.waiting(METER)] == [START, START + ISP]
        assert outbox.last_sequence(METER) == 0 and outbox.quarantined() == []
    rogue.shutdown()
    rogue.server_close()
    sock.unlink()
    # the honest signer takes over: what waited is signed, in order, with no gap in the sequence
    daemon(lambda: clock.t).start()
    assert EdgeAgent(config, clock, session_factory=fake_broker.connect).run(isps=1, drain_s=5) == 3
    readings = _readings(fake_broker)
    assert [(r.reading.sequence, r.reading.isp_start) for r in readings] == [
        (1, START), (2, START + ISP), (3, START + 2 * ISP)]
    assert all(verify(r, DOMAIN) for r in readings)


def test_signer_down_the_readings_wait_and_are_signed_when_it_comes_back(
    write_config: Callable[..., Path], fake_broker: Any, sock: Path, daemon: Callable[..., Daemon]
) -> None:
    clock = StepClock(START)
    config = load_config(_external(write_config, sock))
    signer = daemon(lambda: clock.t)
    # the signer is down for three ISPs and comes back a minute into the fourth
    clock.hooks.append((START + 3 * ISP + 60, signer.start))
    agent = EdgeAgent(config, clock, session_factory=fake_broker.connect)
    assert agent.run(isps=5, drain_s=5) == 5
    readings = _readings(fake_broker)
    assert [(r.reading.sequence, r.reading.isp_start) for r in readings] == [
        (i + 1, START + i * ISP) for i in range(5)]
    assert all(verify(r, DOMAIN) for r in readings)
    with UnsignedQueue(config.unsigned_path) as queue:
        assert queue.count() == 0

    # down across a restart of the agent: the waiting ISPs are on disk, not in the agent's memory
    signer.stop()
    clock.t = START + 20 * ISP
    assert EdgeAgent(config, clock, session_factory=fake_broker.connect).run(isps=2, drain_s=0) == 0
    assert stat.S_IMODE(config.unsigned_path.stat().st_mode) == 0o600  # household data
    signer.start()
    assert EdgeAgent(config, clock, session_factory=fake_broker.connect).run(isps=1, drain_s=5) == 3
    assert [(r.reading.sequence, r.reading.isp_start) for r in _readings(fake_broker)][5:] == [
        (6, START + 20 * ISP), (7, START + 21 * ISP), (8, START + 22 * ISP)]


def test_the_daemon_signs_one_reading_per_isp(sock: Path, daemon: Callable[..., Daemon]) -> None:
    now = START + 10 * ISP
    d = daemon(lambda: now).start()
    client = SocketSigner(sock, METER, DOMAIN)
    first = client.sign_new(isp_start=START, sequence=1, import_wh=100, export_wh=0)
    assert recover_signer(first, DOMAIN) == METER
    # the same reading again (its answer was lost on the way): signed again, the same signature
    assert client.sign(first.reading).signature == first.signature
    with pytest.raises(SignerRefusedError, match="equivocation") as refused:
        client.sign_new(isp_start=START, sequence=1, import_wh=999, export_wh=0)
    assert refused.value.final
    with pytest.raises(SignerRefusedError, match="equivocation"):  # another sequence is another reading too
        client.sign_new(isp_start=START, sequence=7, import_wh=100, export_wh=0)
    assert d.rules is not None and [isp for isp, _ in d.rules.journal.refused()] == [START, START]
    # the journal outlives the daemon
    d.stop()
    d.start()
    with pytest.raises(SignerRefusedError, match="equivocation"):
        client.sign_new(isp_start=START, sequence=1, import_wh=0, export_wh=5)
    assert client.sign_new(isp_start=START + ISP, sequence=2, import_wh=0, export_wh=5).reading.isp_start == START + ISP


def test_an_agent_that_lost_its_outbox_cannot_make_the_meter_equivocate(
    write_config: Callable[..., Path], fake_broker: Any, sock: Path, daemon: Callable[..., Daemon]
) -> None:
    clock = StepClock(START)
    daemon(lambda: clock.t).start()
    config = load_config(_external(write_config, sock))
    assert EdgeAgent(config, clock, session_factory=fake_broker.connect).run(isps=2, drain_s=5) == 2
    # the gateway's state is wiped (or its owner wipes it to sign again): sequences restart at 1, and
    # the owner asks for other values for an ISP already signed
    for path in config.state_dir.iterdir():
        path.unlink()
    agent = EdgeAgent(config, clock, session_factory=fake_broker.connect)
    with pytest.raises(SignerRefusedError, match="equivocation"):
        agent.signer.sign_new(isp_start=START + ISP, sequence=1, import_wh=1, export_wh=50_000)
    agent.unsigned.add(METER, IspEnergy(START + ISP, 1, 50_000), clock.t)
    assert agent.sign_waiting() == []
    assert agent.unsigned.count() == 0  # not retried for ever: quarantined with the signer's reason
    [(meter, isp, reason)] = agent.outbox.quarantined()
    assert (meter, isp) == (METER, START + ISP) and "equivocation" in reason
    agent.publisher.close()
    agent.outbox.close()
    agent.unsigned.close()


@pytest.mark.parametrize(("change", "code"), [
    ({"domain": {**DOMAIN.as_dict(), "chainId": 1}}, "wrong_domain"),
    ({"domain": {**DOMAIN.as_dict(), "verifyingContract": METER}}, "wrong_domain"),
    ({"message": {"meter": Account.from_key(OTHER_KEY).address}}, "wrong_meter"),
    ({"message": {"ispStart": START + 10 * ISP}}, "not_ended"),  # its own clock: no reading signed ahead
    ({"message": {"ispStart": START - 8 * 86_400}}, "too_old"),
    ({"message": {"ispStart": START + 1}}, "bad_request"),
    ({"message": {"importWh": 2**64}}, "bad_request"),
    ({"message": {"extra": 1}}, "bad_request"),
    ({"method": "sign_anything"}, "unknown_method"),
])
def test_the_daemon_refuses_what_a_meter_may_not_sign(
    sock: Path, daemon: Callable[..., Daemon], change: dict[str, Any], code: str
) -> None:
    daemon(lambda: START + 10 * ISP - 60).start()
    message = {"meter": METER, "ispStart": START, "sequence": 1, "importWh": 1, "exportWh": 0,
               **change.get("message", {})}
    request = {"method": "sign_reading", "domain": change.get("domain", DOMAIN.as_dict()), "message": message,
               **{k: v for k, v in change.items() if k == "method"}}
    with pytest.raises(SignerRefusedError) as refused:
        SocketSigner(sock, METER, DOMAIN).call(request.pop("method"), **request)
    assert refused.value.code == code
    assert refused.value.final == (code in ("too_old",))


def test_the_daemon_survives_bad_lines(sock: Path, daemon: Callable[..., Daemon]) -> None:
    daemon(lambda: START + 10 * ISP).start()
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(sock))
        s.sendall(b"not json\n" + json.dumps({"id": 9, "method": "address"}).encode() + b"\n")
        stream = s.makefile("rb")
        assert json.loads(stream.readline())["error"]["code"] == "bad_request"
        assert json.loads(stream.readline()) == {"id": 9, "address": METER}  # one connection, several requests
        s.sendall(b"x" * 5000 + b"\n")  # longer than a line may be: answered, and the connection closed
        assert json.loads(stream.readline())["error"]["code"] == "bad_request"
    assert SocketSigner(sock, METER, DOMAIN).remote_address() == METER


def test_a_socket_with_nobody_behind_it_is_unavailable(sock: Path, tmp_path: Path) -> None:
    client = SocketSigner(sock, METER, DOMAIN, timeout_s=0.5)
    with pytest.raises(SignerUnavailableError, match="cannot be reached"):
        client.remote_address()
    # a peer that accepts and never answers: the agent's wait is bounded
    with socket.socket(socket.AF_UNIX) as silent:
        silent.bind(str(sock))
        silent.listen()
        started = time.monotonic()
        with pytest.raises(SignerUnavailableError):
            client.remote_address()
        assert time.monotonic() - started < 3
    # a plain file where the socket should be is not replaced by the daemon; a live signer neither
    other = tmp_path / "plain"
    other.write_text("x")
    with pytest.raises(OSError, match="not a socket"):
        Daemon(other, tmp_path / "j.sqlite3", time.time).start()


@pytest.mark.parametrize(("meter", "message"), [
    ({"signer": "socket:/run/x.sock"}, "address: missing"),
    ({"signer": "socket:/run/x.sock", "address": "0x1234"}, "address: must be a 0x-prefixed"),
    ({"signer": "/run/x.sock", "address": METER}, 'must be "socket:'),
    ({"signer": "tcp:127.0.0.1:9", "address": METER}, 'must be "socket:'),
    ({"signer": "socket:", "address": METER}, 'must be "socket:'),
    ({"signer": "socket:/" + "d" * 120, "address": METER}, "longer than 107 bytes"),
    ({"signer": "socket:/run/x.sock", "address": METER, "timeout_s": 0}, "timeout_s: must be between"),
    ({"signer": "socket:/run/x.sock", "address": METER, "password_env": "X"}, "password_env: is not read"),
    ({"signer": "socket:/run/x.sock", "address": METER, "private_key": METER_KEY}, "exactly one of"),
    ({"private_key": METER_KEY, "address": METER}, "address: is read only with signer"),
    ({}, "exactly one of keystore"),
])
def test_bad_signer_configurations_say_what_to_write(
    write_config: Callable[..., Path], meter: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load_config(write_config(base_config(meter=meter)))


def test_production_refuses_a_raw_key_and_takes_an_external_signer(write_config: Callable[..., Path]) -> None:
    with pytest.raises(ConfigError, match=r"refused in production.*external signer"):
        load_config(write_config(base_config(mode="production")))
    config = load_config(write_config(base_config(
        mode="production", meter={"signer": "socket:run/meter.sock", "address": METER.lower(), "timeout_s": 2})))
    assert config.meter.signer_socket == config.source.parent / "run" / "meter.sock"  # relative to the file
    assert config.meter.address == METER and config.meter.timeout_s == 2


def test_signer_serve_command_as_a_process(tmp_path: Path, write_config: Callable[..., Path], fake_broker: Any) -> None:
    keystore = tmp_path / "meter-key.json"
    keystore.write_text(json.dumps(Account.encrypt(bytes.fromhex(METER_KEY[2:]), "pw", iterations=2)))
    sock = tmp_path / "m.sock"
    exe = Path(sys.executable).parent / "flexledger-edge"
    args = [str(exe), "signer", "serve", "--keystore", str(keystore), "--socket", str(sock),
            "--chain-id", str(CHAIN_ID), "--oracle", ORACLE]
    assert subprocess.run([*args, "--socket-mode", "0666"], capture_output=True, text=True,
                          env={**os.environ, "METER_KEY_PASSWORD": "pw"}).returncode == 2
    bad = subprocess.run(args, capture_output=True, text=True, env={k: v for k, v in os.environ.items()
                                                                     if k != "METER_KEY_PASSWORD"})
    assert bad.returncode == 2 and "METER_KEY_PASSWORD is not set" in bad.stderr
    proc = subprocess.Popen(args, env={**os.environ, "METER_KEY_PASSWORD": "pw"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not sock.exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        assert stat.S_IMODE(sock.stat().st_mode) == 0o660
        assert main(["signer", "address", "--socket", str(sock)]) == 0
        # real time, for the daemon's own clock: ISPs that have ended
        now = time.time()
        clock = StepClock(now - now % ISP - 10 * ISP)
        config = load_config(_external(write_config, sock))
        assert EdgeAgent(config, clock, session_factory=fake_broker.connect).run(isps=3, drain_s=5) == 3
        assert all(verify(r, DOMAIN) and r.reading.meter == METER for r in _readings(fake_broker))
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert not sock.exists()
    assert f"signing readings of meter {METER}" in err
    assert (tmp_path / "meter-key.json.signed.sqlite3").exists()


def test_sign_registration_where_the_key_is(
    tmp_path: Path, write_config: Callable[..., Path], sock: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    terms = ["--owner", METER, "--nonce", "0", "--deadline", "1893456000", "--chain-id", "31337",
             "--registry", ORACLE, "--out", str(tmp_path / "consent.json")]
    # the gateway holds no key: it says where to sign instead of failing obscurely
    assert main(["sign-registration", "--config", str(_external(write_config, sock)), *terms]) == 2
    assert "external signer" in capsys.readouterr().err
    # on the signer's host, from its keystore
    keystore = tmp_path / "meter-key.json"
    keystore.write_text(json.dumps(Account.encrypt(bytes.fromhex(METER_KEY[2:]), "pw", iterations=2)))
    monkeypatch.setenv("METER_KEY_PASSWORD", "pw")
    assert main(["sign-registration", "--keystore", str(keystore), *terms]) == 0
    assert f"meter {METER} consents" in capsys.readouterr().out


def test_energy_no_reading_can_carry_is_quarantined_and_blocks_nothing(
    write_config: Callable[..., Path], fake_broker: Any
) -> None:
    clock = StepClock(START + 4 * ISP)
    agent = EdgeAgent(load_config(write_config(base_config())), clock, session_factory=fake_broker.connect)
    agent.unsigned.add(METER, IspEnergy(START, 2**64, 0), clock.t)  # beyond uint64: a driver's garbage
    agent.unsigned.add(METER, IspEnergy(START + ISP, 2**64 - 1, 0), clock.t)  # a legal uint64, past SQLite's INTEGER
    agent.unsigned.add(METER, IspEnergy(START + 2 * ISP, 10, 0), clock.t)
    done = agent.sign_waiting()
    assert [(s.reading.sequence, s.reading.isp_start, s.reading.import_wh) for s in done] == [
        (1, START + ISP, 2**64 - 1), (2, START + 2 * ISP, 10)]
    [(_, isp, reason)] = agent.outbox.quarantined()
    assert isp == START and "not a valid reading" in reason and agent.unsigned.count() == 0
    agent.publisher.close()
    agent.outbox.close()
    agent.unsigned.close()


def test_the_agent_says_at_start_whether_its_signer_answers_for_the_meter(
    sock: Path, daemon: Callable[..., Daemon], caplog: pytest.LogCaptureFixture
) -> None:
    from flexledger_edge.cli import _check_signer

    caplog.set_level("INFO")
    _check_signer(SocketSigner(sock, METER, DOMAIN))
    assert "cannot be reached" in caplog.text and "will wait" in caplog.text
    daemon(time.time, key=OTHER_KEY).start()
    _check_signer(SocketSigner(sock, METER, DOMAIN))
    assert f"not of the meter {METER}" in caplog.text


def test_the_daemon_answers_only_the_users_it_allows(sock: Path, daemon: Callable[..., Daemon]) -> None:
    d = daemon(time.time).start(allowed_uids=frozenset({os.getuid() + 1}))
    with pytest.raises(SignerRefusedError, match="forbidden"):
        SocketSigner(sock, METER, DOMAIN).remote_address()
    d.stop()
    d.start(allowed_uids=frozenset({os.getuid()}))
    assert SocketSigner(sock, METER, DOMAIN).remote_address() == METER


def test_a_refusal_sent_before_the_request_is_read_reaches_the_client(
    sock: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The daemon refuses a peer without reading its request: when the refusal and the close come
    before the client writes, the write breaks (EPIPE), and the client still reports the refusal."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(sock))
    listener.listen(1)
    closed = threading.Event()

    def refuse() -> None:
        conn, _ = listener.accept()
        conn.sendall(b'{"id":null,"error":{"code":"forbidden","message":"uid 0 may not ask"}}\n')
        conn.close()
        closed.set()

    class LateWriter(socket.socket):  # the client's socket writes only once the daemon closed
        connected = False

        def connect(self, address: Any) -> None:
            super().connect(address)
            self.connected = True

        def sendall(self, data: Any, flags: int = 0) -> None:
            if self.connected:
                assert closed.wait(5), "the daemon did not answer"
            super().sendall(data, flags)

    thread = threading.Thread(target=refuse, daemon=True)
    thread.start()
    monkeypatch.setattr("flexledger_edge.signer.socket.socket", LateWriter)
    try:
        with pytest.raises(SignerRefusedError, match="forbidden"):
            SocketSigner(sock, METER, DOMAIN).remote_address()
    finally:
        thread.join(5)
        listener.close()


def test_the_socket_takes_the_group_given_and_a_live_signer_is_not_replaced(tmp_path: Path, sock: Path) -> None:
    journal = ReadingJournal(tmp_path / "j.sqlite3")
    rules = ReadingSigner(bytes.fromhex(METER_KEY[2:]), DOMAIN, journal)
    server = SignerServer(sock, rules, group=os.getgid(), mode=0o660)
    stop = threading.Event()
    thread = threading.Thread(target=serve, args=(server, stop), daemon=True)
    thread.start()
    try:
        assert sock.stat().st_gid == os.getgid() and stat.S_IMODE(sock.stat().st_mode) == 0o660
        with pytest.raises(OSError, match="another signer is serving"):
            SignerServer(sock, rules)
    finally:
        stop.set()
        thread.join()
        journal.close()
    assert not sock.exists()
