"""The local development node: anvil on a free port, its state kept between runs when asked."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import requests

from flexledger.private_files import private_dir
from flexledger.redaction import child_environment

from .errors import NodeError, RpcUnreachableError
from .paths import foundry_tool

DEFAULT_PORT = 8545
DEFAULT_CHAIN_ID = 31337
START_TIMEOUT = 30.0
STATE_FILE = "anvil-state.json"
NODE_FILE = "node.json"
LOG_FILE = "anvil.log"


@dataclass(frozen=True)
class NodeInfo:
    """A running local node, as recorded in ``<data dir>/node.json``."""

    rpc_url: str
    port: int
    pid: int
    chain_id: int
    state_file: str | None
    log_file: str


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def rpc_answers(url: str, timeout: float = 1.0) -> int | None:
    """The chain id the node at ``url`` reports, or ``None`` when nothing answers."""
    try:
        response = requests.post(
            url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}, timeout=timeout
        )
        return int(response.json()["result"], 16)
    except (requests.RequestException, ValueError, KeyError):
        return None


def process_alive(pid: int) -> bool:
    """Whether the process runs; a zombie (exited, not yet reaped by its parent) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError):  # Linux: the state follows the ")" of the name
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


class LocalNode:
    """Starts, finds and stops the anvil node that belongs to one data directory."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int = DEFAULT_PORT,
        chain_id: int = DEFAULT_CHAIN_ID,
        persist: bool = True,
        block_time: float | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.port = port
        self.chain_id = chain_id
        self.persist = persist
        self.block_time = block_time

    @property
    def node_file(self) -> Path:
        return self.data_dir / NODE_FILE

    def status(self) -> NodeInfo | None:
        """The node of this data directory if it is running and answering, else ``None``."""
        if not self.node_file.is_file():
            return None
        info = NodeInfo(**json.loads(self.node_file.read_text()))
        if process_alive(info.pid) and rpc_answers(info.rpc_url) is not None:
            return info
        self.node_file.unlink(missing_ok=True)  # a stale record of a node that is gone
        return None

    def start(self, *, timeout: float = START_TIMEOUT) -> NodeInfo:
        """Start anvil (or return the one already running for this data directory)."""
        running = self.status()
        if running is not None:
            return running
        anvil = foundry_tool("anvil")
        private_dir(self.data_dir)
        last_error = ""
        for attempt in range(5):
            port = self.port if attempt == 0 and port_is_free(self.port) else free_port()
            info = self._spawn(anvil, port, timeout)
            if isinstance(info, NodeInfo):
                self.node_file.write_text(json.dumps(asdict(info), indent=1) + "\n")
                return info
            last_error = info
            if "in use" not in last_error.lower():
                break  # not a port race: trying again will not help
        raise NodeError(f"anvil did not start: {last_error}", hint=f"see {self.data_dir / LOG_FILE}")

    def _spawn(self, anvil: Path, port: int, timeout: float) -> NodeInfo | str:
        log_path = self.data_dir / LOG_FILE
        args = [
            str(anvil),
            "--host", "127.0.0.1",
            "--port", str(port),
            "--chain-id", str(self.chain_id),
            "--gas-limit", "30000000",
        ]
        state: str | None = None
        if self.persist:
            state = str(self.data_dir / STATE_FILE)
            args += ["--state", state, "--state-interval", "30", "--preserve-historical-states"]
        if self.block_time:
            args += ["--block-time", str(self.block_time)]
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                env=child_environment(),
            )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = log_path.read_text(errors="replace").splitlines()[-5:]
                return " | ".join(tail) or f"exited with {proc.returncode}"
            if rpc_answers(url, timeout=0.5) is not None:
                return NodeInfo(url, port, proc.pid, self.chain_id, state, str(log_path))
            time.sleep(0.1)
        proc.kill()
        return f"no answer at {url} within {timeout:.0f} s"

    def stop(self, *, timeout: float = 15.0) -> bool:
        """Stop the node (anvil writes its state on SIGTERM); ``False`` if none was running."""
        if not self.node_file.is_file():
            return False
        info = NodeInfo(**json.loads(self.node_file.read_text()))
        self.node_file.unlink(missing_ok=True)
        if not process_alive(info.pid):
            return False
        os.kill(info.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not process_alive(info.pid):
                return True
            with contextlib.suppress(ChildProcessError):
                os.waitpid(info.pid, os.WNOHANG)
            time.sleep(0.05)
        os.kill(info.pid, signal.SIGKILL)
        return True


def require_node(url: str) -> int:
    """The chain id at ``url``; :class:`RpcUnreachableError` when nothing answers there."""
    chain_id = rpc_answers(url, timeout=3.0)
    if chain_id is None:
        raise RpcUnreachableError(url)
    return chain_id
