"""The embedded MQTT broker: aedes (npm) on a free port, started and stopped like the local anvil.

With ``mqtt_url`` unset, flexledger uses this broker: ``scripts/mqtt-broker.mjs`` run by Node,
listening on 127.0.0.1 only, its process id and port recorded in ``<data dir>/broker.json``.
aedes speaks MQTT 3.1 and 3.1.1 (not MQTT 5). The sessions of clean_session=false clients (the
oracle's, the edge agents') are kept in ``<data dir>/broker-state`` (LevelDB): their subscriptions
and the QoS 1 messages accepted for them and not yet acknowledged survive a restart of the broker,
its process killed included (not a power cut: the writes are not synced to disk), so an edge agent
that forgot a reading on its PUBACK loses nothing. ``scripts/mqtt-broker.mjs`` explains how.

It admits no anonymous client: each client is a user of ``<data dir>/broker-users.json`` (private
to its owner) with a random password and the topics it may publish and subscribe to, and must
connect under its user name as client id, so a session belongs to whoever holds the password
(:class:`BrokerUsers`). The oracle's user is made on first use; meters and other services are
added with ``flexledger broker user add``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import selectors
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypedDict
from urllib.parse import quote, urlsplit, urlunsplit

from flexledger.chain.node import process_alive
from flexledger.chain.paths import node_modules, project_root
from flexledger.config import Settings
from flexledger.errors import ConfigurationError, FlexledgerError
from flexledger.private_files import private_dir, write_private
from flexledger.redaction import child_environment, redact_url

DEFAULT_PORT = 1883
HOST = "127.0.0.1"
START_TIMEOUT = 15.0
BROKER_FILE = "broker.json"
LOG_FILE = "broker.log"
STATE_DIR = "broker-state"
SCRIPT = Path("scripts") / "mqtt-broker.mjs"
USERS_FILE = "broker-users.json"
log = logging.getLogger(__name__)
ORACLE_CREDENTIALS_FILE = "broker-oracle.json"
READINGS_FILTER = "flexledger/v1/readings/+"
RECEIPTS_FILTER = "flexledger/v1/receipts/+"


# A production Mosquitto's ACL (`acl_file`, `flexledger broker mosquitto-acl`): each meter's user
# (its certificate's CN with use_identity_as_username) is its lowercase address; %u makes one rule
# serve every meter, so a meter added later needs no new line and none lacks its receipts.
MOSQUITTO_ACL = """\
# flexledger: a meter publishes only its own readings and reads only its own receipts and orders
pattern write flexledger/v1/readings/%u
pattern read  flexledger/v1/receipts/%u
pattern read  flexledger/v1/orders/#
pattern write flexledger/v1/acks/#
user flexledger-oracle
topic read  flexledger/v1/readings/#
topic write flexledger/v1/receipts/#
"""


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
    """Whether an MQTT 3.1.1 broker at ``host:port`` answers a CONNECT (clean session, no id) with a
    CONNACK; a refusal (the embedded broker refuses anonymous clients) is an answer too."""
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
    return connack[0] == 0x20


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


def with_credentials(url: str, username: str, password: str) -> str:
    """``url`` carrying ``username`` and ``password`` (for the oracle's own connection; never printed)."""
    parts = urlsplit(url)
    host = parts.hostname or HOST
    netloc = f"{quote(username, safe='')}:{quote(password, safe='')}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@dataclass(frozen=True)
class BrokerUser:
    """A client of the embedded broker: its name is also the only client id it may connect under."""

    name: str
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]


class BrokerUsers:
    """``<data dir>/broker-users.json``: who may connect to the embedded broker, and to which topics.

    Passwords are random 256-bit tokens, shown once when made; the file keeps a salted SHA-256.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def _load(self) -> dict[str, dict[str, Any]]:
        if not self.path.is_file():
            return {}
        return dict(json.loads(self.path.read_text()).get("users", {}))

    def _save(self, users: dict[str, dict[str, Any]]) -> None:
        write_private(self.path, json.dumps({"users": users}, indent=1, sort_keys=True) + "\n")

    def ensure(self) -> None:
        if not self.path.is_file():
            self._save({})

    def add(self, name: str, *, publish: list[str] | tuple[str, ...] = (),
            subscribe: list[str] | tuple[str, ...] = ()) -> str:
        """Make (or remake, with a new password) the user ``name``; its password."""
        if not name or any(c in name for c in "/+#:\0") or len(name) > 128:
            raise ConfigurationError(f"{name!r} cannot be a broker user (it is its MQTT client id too)",
                                     hint="use letters, digits, '-', '_' and '.'")
        password = secrets.token_urlsafe(32)
        salt = secrets.token_bytes(16)
        users = self._load()
        users[name] = {"salt": salt.hex(), "hash": hashlib.sha256(salt + password.encode()).hexdigest(),
                       "publish": list(publish), "subscribe": list(subscribe)}
        self._save(users)
        return password

    def set_topics(self, name: str, *, publish: list[str] | tuple[str, ...] = (),
                   subscribe: list[str] | tuple[str, ...] = ()) -> bool:
        """Change what an existing user may publish and read, keeping its password; False if unknown."""
        users = self._load()
        if name not in users:
            return False
        users[name] = {**users[name], "publish": list(publish), "subscribe": list(subscribe)}
        self._save(users)
        return True

    def upgrade_meters(self) -> list[str]:
        """Give every edge agent's user (``flexledger-edge-<meter>``, publishing that meter's
        readings) made before receipts the right to read its meter's receipts, keeping its password
        and other topics: without it the agent never hears the oracle and re-sends its readings until
        it gives up. The names upgraded (none when all are current)."""
        users = self._load()
        upgraded = []
        for name, u in users.items():
            meter = name.removeprefix("flexledger-edge-")
            if meter == name or f"flexledger/v1/readings/{meter}" not in u.get("publish", []):
                continue
            receipts = f"flexledger/v1/receipts/{meter}"
            if receipts not in u.get("subscribe", []):
                u["subscribe"] = [receipts, *u.get("subscribe", [])]
                upgraded.append(name)
        if upgraded:
            self._save(users)
        return upgraded

    def remove(self, name: str) -> bool:
        users = self._load()
        if users.pop(name, None) is None:
            return False
        self._save(users)
        return True

    def list(self) -> list[BrokerUser]:
        return [BrokerUser(name, tuple(str(t) for t in u.get("publish", [])),
                           tuple(str(t) for t in u.get("subscribe", [])))
                for name, u in sorted(self._load().items())]


def meter_user(meter: str, asset: int | None = None) -> BrokerUser:
    """What an edge agent may do: publish its meter's readings (and its asset's order acknowledgements),
    read the oracle's receipts for its meter (and its asset's orders); its name (and client id) is the
    agent's default ``flexledger-edge-<meter>``."""
    meter = meter.lower()
    publish = [f"flexledger/v1/readings/{meter}"]
    subscribe: list[str] = [f"flexledger/v1/receipts/{meter}"]
    if asset is not None:
        publish.append(f"flexledger/v1/acks/{asset}")
        subscribe.append(f"flexledger/v1/orders/{asset}")
    return BrokerUser(f"flexledger-edge-{meter}", tuple(publish), tuple(subscribe))


class LocalBroker:
    """Starts, finds and stops the embedded broker that belongs to one data directory.

    ``auth=False`` (tests and benchmarks that speak to the broker as anonymous clients) admits
    anyone to every topic: never what the CLI runs.
    """

    def __init__(self, data_dir: Path, *, port: int = DEFAULT_PORT, persist: bool = True, auth: bool = True) -> None:
        self.data_dir = Path(data_dir)
        self.port = port
        self.persist = persist
        self.auth = auth
        self.users = BrokerUsers(self.data_dir / USERS_FILE)

    def oracle_credentials(self) -> tuple[str, str]:
        """The oracle's user name (its client id too) and password, made on first use: a random
        per-install name, so no other install's oracle (nor a guess) names the same session."""
        path = self.data_dir / ORACLE_CREDENTIALS_FILE
        publish, subscribe = (RECEIPTS_FILTER,), (READINGS_FILTER,)
        if path.is_file():
            saved = json.loads(path.read_text())
            known = {u.name: u for u in self.users.list()}.get(saved.get("name"))
            if known is not None:
                if (known.publish, known.subscribe) != (publish, subscribe):  # made before receipts
                    self.users.set_topics(known.name, publish=publish, subscribe=subscribe)
                return str(saved["name"]), str(saved["password"])
        name = f"flexledger-oracle-{secrets.token_hex(6)}"
        password = self.users.add(name, publish=publish, subscribe=subscribe)
        write_private(path, json.dumps({"name": name, "password": password}) + "\n")
        return name, password

    def oracle_url(self, info: BrokerInfo) -> tuple[str, str]:
        """The URL (with the oracle's credentials) and client id the oracle connects with."""
        if not self.auth:
            return info.url, "flexledger-oracle"
        name, password = self.oracle_credentials()
        return with_credentials(info.url, name, password), name

    def client_url(self, info: BrokerInfo, user: BrokerUser) -> str:
        """A URL with a new password for ``user`` (made or remade): for tests, the demo and scripts."""
        password = self.users.add(user.name, publish=user.publish, subscribe=user.subscribe)
        return with_credentials(info.url, user.name, password)

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
        if self.auth and self.users.path.is_file():
            # meter users made before receipts are upgraded on every start (a running broker reads
            # its users file again when it changes), so that no operator has to notice
            for name in self.users.upgrade_meters():
                log.warning("broker user %s may now read its receipts (it was made before receipts)", name)
        running = self.status()
        if running is not None:
            return running
        command = broker_command()
        private_dir(self.data_dir)
        if self.auth:
            self.users.ensure()
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
        users = ["--users", str(self.users.path)] if self.auth else []
        with self.log_file.open("ab") as log:
            proc = subprocess.Popen(
                [*command, "--host", HOST, "--port", str(port), *persist, *users],
                stdout=subprocess.PIPE,
                stderr=log,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env=child_environment(),
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
        raise ConfigurationError(
            f"a broker is configured (mqtt_url = {redact_url(settings.mqtt_url)}); the embedded broker is not used",
            hint="unset FLEXLEDGER_MQTT_URL (or mqtt_url in the config file) to use the embedded broker",
        )


def broker_url(settings: Settings, *, start_local: bool = True) -> str:
    """The configured ``mqtt_url``; on the embedded default, the local broker's URL (started if needed)."""
    if settings.mqtt_url:
        return settings.mqtt_url
    return _running_local(settings, start_local).url


def _running_local(settings: Settings, start_local: bool) -> BrokerInfo:
    broker = local_broker(settings)
    info = broker.status()
    if info is None:
        if not start_local:
            raise BrokerError(
                "the embedded MQTT broker is not running", hint="start it with `flexledger broker start`"
            )
        info = broker.start()
    return info


def oracle_broker(settings: Settings, *, start_local: bool = True) -> tuple[str, str]:
    """The URL (credentials included: never print it, :func:`redact_url` it) and the client id the
    oracle connects with: the configured broker's with ``mqtt_client_id`` (else a per-install random
    id kept in the data directory), or the embedded broker's oracle user."""
    if settings.mqtt_url:
        return settings.mqtt_url, settings.mqtt_client_id or install_client_id(settings.data_dir)
    return local_broker(settings).oracle_url(_running_local(settings, start_local))


def install_client_id(data_dir: Path) -> str:
    """``flexledger-oracle-<random>``, made once per data directory: the public fixed id let anyone
    who could connect take the oracle's session over; the broker must still bind the id to the
    oracle's user (Mosquitto: an ACL pattern or ``use_username_as_clientid``)."""
    path = data_dir / "oracle-client-id"
    if path.is_file():
        return path.read_text().strip()
    name = f"flexledger-oracle-{secrets.token_hex(6)}"
    write_private(path, name + "\n")
    return name


class TlsFiles(TypedDict):
    ca_file: str | None
    cert_file: str | None
    key_file: str | None


def mqtt_tls(settings: Settings) -> TlsFiles:
    """The oracle's TLS files from the settings, as keyword arguments of the consumer and the check."""
    return {"ca_file": str(settings.mqtt_ca_file) if settings.mqtt_ca_file else None,
            "cert_file": str(settings.mqtt_cert_file) if settings.mqtt_cert_file else None,
            "key_file": str(settings.mqtt_key_file) if settings.mqtt_key_file else None}
