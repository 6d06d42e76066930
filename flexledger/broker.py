"""The embedded MQTT broker: aedes (npm) on a free port, started and stopped like the local anvil.

With ``mqtt_url`` unset, flexledger uses this broker: ``scripts/mqtt-broker.mjs`` run by Node,
listening on 127.0.0.1 only, its process id and port recorded in ``<data dir>/broker.json``.
aedes speaks MQTT 3.1 and 3.1.1 (not MQTT 5). The sessions of clean_session=false clients (the
oracle's, the edge agents') are kept in ``<data dir>/broker-state`` (LevelDB): their subscriptions
and the QoS 1 messages accepted for them and not yet acknowledged survive a restart of the broker,
its process killed included (not a power cut: the writes are not synced to disk), so an edge agent
that forgot a reading on its PUBACK loses nothing. ``scripts/mqtt-broker.mjs`` explains how.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .chain.node import process_alive
from .chain.paths import node_modules, project_root
from .config import Settings
from .errors import ConfigurationError, FlexledgerError

DEFAULT_PORT = 1883
HOST = "127.0.0.1"
START_TIMEOUT = 15.0
BROKER_FILE = "broker.json"
LOG_FILE = "broker.log"
STATE_DIR = "broker-state"
SCRIPT = Path("scripts") / "mqtt-broker.mjs"


class BrokerError(FlexledgerError):
    """The embedded MQTT broker could not be started, found or stopped."""


class BrokerToolMissingError(BrokerError):
    """What the embedded broker needs (Node.js, the aedes package, its start script) is missing."""

    def __init__(self, tool: str, message: str) -> None:
        super().__init__(
            message,
            hint="run `make install` (or `npm ci`) in the project folder, "
            "or set FLEXLEDGER_MQTT_URL (or mqtt_url in the config file) to a broker that runs",
        )
        self.tool = tool


@dataclass(frozen=True)
class BrokerInfo:
    """A running embedded broker, as recorded in ``<data dir>/broker.json``."""

    url: str
    port: int
    pid: int
    log_file: str


def broker_script() -> Path:
    return project_root() / SCRIPT


def broker_command() -> list[str]:
    """``node scripts/mqtt-broker.mjs``; :class:`BrokerToolMissingError` when a part is missing."""
    script = broker_script()
    if not script.is_file():
        raise BrokerToolMissingError("mqtt-broker.mjs", f"the embedded broker's start script {script} is missing")
    node = shutil.which("node")
    if node is None:
        raise BrokerToolMissingError("node", "Node.js was not found on PATH; install Node.js 18 or newer")
    if not (node_modules() / "aedes" / "package.json").is_file():
        raise BrokerToolMissingError("aedes", f"the MQTT broker package aedes is missing from {node_modules()}")
    return [node, str(script)]


def mqtt_answers(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether an MQTT 3.1.1 broker at ``host:port`` accepts a CONNECT (clean session, no id)."""
    connect = bytes([0x10, 12, 0, 4, *b"MQTT", 4, 0x02, 0, 10, 0, 0])
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(connect)
            connack = b""
            while len(connack) < 4:
                chunk = sock.recv(4 - len(connack))
                if not chunk:
                    return False
                connack += chunk
            sock.sendall(bytes([0xE0, 0]))  # DISCONNECT
    except OSError:
        return False
    return connack[0] == 0x20 and connack[3] == 0


def _port_is_free(port: int) -> bool:
    """Whether the broker can listen on ``port``. Node listens with SO_REUSEADDR, and so does this
    check: the connections of a broker that just stopped (TIME_WAIT for a minute) must not push the
    restarted broker to another port, where the edge agents configured for this one cannot find it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


class LocalBroker:
    """Starts, finds and stops the embedded broker that belongs to one data directory."""

    def __init__(self, data_dir: Path, *, port: int = DEFAULT_PORT, persist: bool = True) -> None:
        self.data_dir = Path(data_dir)
        self.port = port
        self.persist = persist

    @property
    def broker_file(self) -> Path:
        return self.data_dir / BROKER_FILE

    @property
    def log_file(self) -> Path:
        return self.data_dir / LOG_FILE

    @property
    def state_dir(self) -> Path:
        """Where the broker keeps persistent sessions and their queued messages."""
        return self.data_dir / STATE_DIR

    def status(self) -> BrokerInfo | None:
        """The broker of this data directory if it is running and answering, else ``None``."""
        if not self.broker_file.is_file():
            return None
        info = BrokerInfo(**json.loads(self.broker_file.read_text()))
        if process_alive(info.pid) and mqtt_answers(HOST, info.port):
            return info
        self.broker_file.unlink(missing_ok=True)  # a stale record of a broker that is gone
        return None

    def start(self, *, timeout: float = START_TIMEOUT) -> BrokerInfo:
        """Start the broker (or return the one already running for this data directory).

        It listens on the preferred port if that is free, else on one the system picks.
        """
        running = self.status()
        if running is not None:
            return running
        command = broker_command()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        last_error = ""
        for attempt in range(3):
            port = self.port if attempt == 0 and _port_is_free(self.port) else 0
            info = self._spawn(command, port, timeout)
            if isinstance(info, BrokerInfo):
                self.broker_file.write_text(json.dumps(asdict(info), indent=1) + "\n")
                return info
            last_error = info
            if "in use" not in last_error.lower():
                break  # not a port race: trying again will not help
        raise BrokerError(f"the embedded MQTT broker did not start: {last_error}", hint=f"see {self.log_file}")

    def _spawn(self, command: list[str], port: int, timeout: float) -> BrokerInfo | str:
        persist = ["--persist", str(self.state_dir)] if self.persist else []
        with self.log_file.open("ab") as log:
            proc = subprocess.Popen(
                [*command, "--host", HOST, "--port", str(port), *persist],
                stdout=subprocess.PIPE,
                stderr=log,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        assert proc.stdout is not None
        try:
            line = _read_line(proc, timeout)
        finally:
            proc.stdout.close()  # the script prints nothing after its ready line
        if line is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(0.5)  # an end of output is the process exiting
            if proc.returncode is None:
                _terminate(proc.pid)
                return f"not ready within {timeout:.0f} s"
            tail = self.log_file.read_text(errors="replace").splitlines()[-3:]
            return " | ".join(tail) or f"exited with {proc.returncode}"
        try:
            ready = json.loads(line)
            actual = int(ready["port"])
        except (ValueError, KeyError, TypeError):
            _terminate(proc.pid)
            return f"unexpected ready line: {line!r}"
        return BrokerInfo(f"mqtt://{HOST}:{actual}", actual, proc.pid, str(self.log_file))

    def stop(self, *, timeout: float = 10.0) -> bool:
        """Stop the broker; ``False`` if none was running."""
        if not self.broker_file.is_file():
            return False
        info = BrokerInfo(**json.loads(self.broker_file.read_text()))
        self.broker_file.unlink(missing_ok=True)
        if not process_alive(info.pid):
            return False
        _terminate(info.pid, timeout)
        return True


def _read_line(proc: subprocess.Popen[bytes], timeout: float) -> str | None:
    """The first line the process prints, or ``None`` if it exits or the time runs out first."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buffer = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while b"\n" not in buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            if selector.select(min(left, 0.2)):
                chunk = os.read(fd, 4096)
                if not chunk:
                    return None  # end of output: the process exited
                buffer += chunk
    return buffer.split(b"\n", 1)[0].decode(errors="replace")


def _terminate(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout``; reaps the process if it is our child."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        if not process_alive(pid):
            # Its main thread has exited; Node's other threads may not have yet, and until they
            # have the zombie cannot be reaped without waiting (a blocking wait, then, not WNOHANG).
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            return
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def local_broker(settings: Settings) -> LocalBroker:
    return LocalBroker(settings.data_dir)


def require_embedded_broker(settings: Settings) -> None:
    """:class:`ConfigurationError` when ``mqtt_url`` is configured: the embedded broker is not used then."""
    if settings.mqtt_url:
        from .services import redact

        raise ConfigurationError(
            f"a broker is configured (mqtt_url = {redact(settings.mqtt_url)}); the embedded broker is not used",
            hint="unset FLEXLEDGER_MQTT_URL (or mqtt_url in the config file) to use the embedded broker",
        )


def broker_url(settings: Settings, *, start_local: bool = True) -> str:
    """The configured ``mqtt_url``; on the embedded default, the local broker's URL (started if needed)."""
    if settings.mqtt_url:
        return settings.mqtt_url
    broker = local_broker(settings)
    info = broker.status()
    if info is None:
        if not start_local:
            raise BrokerError(
                "the embedded MQTT broker is not running", hint="start it with `flexledger broker start`"
            )
        info = broker.start()
    return info.url
