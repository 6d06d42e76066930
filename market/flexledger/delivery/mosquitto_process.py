"""This machine's Mosquitto binary run as a broker of one's own, on a free port, with the README's
production persistence (less TLS and ACLs): for tests and benchmarks that kill and restart it. A
Mosquitto run as a system service must not be restarted by them."""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from flexledger.chain.node import free_port
from flexledger.delivery.broker import HOST, BrokerError, mqtt_answers


class MosquittoMissingError(BrokerError):
    """No ``mosquitto`` binary here."""

    def __init__(self) -> None:
        super().__init__("no mosquitto binary was found on PATH (nor in /usr/sbin, /usr/local/sbin)",
                         hint="install Mosquitto (Debian: `apt-get install mosquitto`)")


def mosquitto_binary() -> str | None:
    return shutil.which("mosquitto", path=f"{os.environ.get('PATH', '')}:/usr/sbin:/usr/local/sbin")


class MosquittoProcess:
    """One Mosquitto under ``folder``: its configuration, store and log. ``autosave_each_change``
    saves the store on every change (the closest Mosquitto comes to keeping what it acknowledged);
    otherwise every ``autosave_interval`` seconds, as the README's production configuration."""

    def __init__(self, folder: Path, *, autosave_each_change: bool = False, autosave_interval: int = 60) -> None:
        binary = mosquitto_binary()
        if binary is None:
            raise MosquittoMissingError()
        self.binary = binary
        self.port = free_port()
        self.url = f"mqtt://{HOST}:{self.port}"
        folder.mkdir(parents=True, exist_ok=True)
        self.log = folder / "mosquitto.log"
        self.config = folder / "mosquitto.conf"
        # `user` keeps a run as root from dropping to a user that cannot write the folder
        lines = [f"listener {self.port} {HOST}", "allow_anonymous true", "persistence true",
                 f"persistence_location {folder}/", "max_queued_messages 0", f"user {getpass.getuser()}"]
        if autosave_each_change:
            lines += ["autosave_on_changes true", "autosave_interval 1"]
        else:
            lines += [f"autosave_interval {autosave_interval}"]
        self.config.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([self.binary, "-c", str(self.config)], stdout=log, stderr=log,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not mqtt_answers(HOST, self.port):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop(signal.SIGKILL)  # it runs in its own session: nothing else would end it
                raise BrokerError(f"the private Mosquitto on port {self.port} did not answer", hint=f"see {self.log}")
            time.sleep(0.02)

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """``sig`` to the broker, then wait for it: SIGTERM saves the store, SIGKILL is the crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)
        self.proc = None
