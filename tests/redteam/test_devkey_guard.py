"""Red-team finding 13 (issue 17): the development-key guard.

It read the RPC URL with urllib.parse while requests/urllib3 send the request: ``http://HOST\\@127.0.0.1/``
passed as loopback and went to HOST. And any chain id 1337 node on loopback (a production node run
locally) passed. Now the host is read as the request library reads it, an ambiguous URL is not
loopback, and the node must show that it is a development node (anvil, Hardhat) before a
well-known key signs anything.
"""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator

import pytest

from flexledger.chain.connection import ChainConnection, is_loopback_url
from flexledger.chain.errors import DevKeyRefusedError
from flexledger.chain.node import NodeInfo
from flexledger.identity import keys


def _fake_node(host: str, version: str, answers: set[str]) -> tuple[http.server.ThreadingHTTPServer, list[str]]:
    """A JSON-RPC endpoint with chain id 1337 that says it is ``version`` and answers ``answers``."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append(body["method"])
            results = {"eth_chainId": "0x539", "web3_clientVersion": version, "eth_getTransactionCount": "0x0",
                       "eth_gasPrice": "0x1", "eth_sendRawTransaction": "0x" + "11" * 32}
            if body["method"] in results or body["method"] in answers:
                reply = {"jsonrpc": "2.0", "id": body["id"], "result": results.get(body["method"], {})}
            else:
                reply = {"jsonrpc": "2.0", "id": body["id"], "error": {"code": -32601, "message": "no such method"}}
            out = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *_args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer((host, 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, seen


def _outside_address() -> str:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.254", 9))  # no packet is sent: the address of the outgoing interface
        return str(s.getsockname()[0])
    finally:
        s.close()


@pytest.fixture
def remote_anvil_lookalike() -> Iterator[tuple[str, int, list[str]]]:
    ip = _outside_address()
    if ip.startswith("127."):
        pytest.skip("this machine has no address outside loopback")
    server, seen = _fake_node(ip, "anvil/v1.7.0", {"anvil_nodeInfo"})
    yield ip, server.server_address[1], seen
    server.shutdown()


def test_RT13_a_url_that_parsers_read_differently_is_not_loopback(
        remote_anvil_lookalike: tuple[str, int, list[str]]) -> None:
    ip, port, seen = remote_anvil_lookalike
    tricked = f"http://{ip}:{port}\\@127.0.0.1:{port}/"
    assert not is_loopback_url(tricked)
    conn = ChainConnection.connect(tricked)
    with pytest.raises(DevKeyRefusedError):
        keys.signer(keys.dev_accounts()[0], conn)
    assert seen and "eth_sendRawTransaction" not in seen  # the remote node saw requests, never a signed one
    for url in (f"http://{ip}:{port}/", f"http://127.0.0.1@{ip}:{port}/", f"http://127.0.0.1:{port}\\@{ip}:{port}/"):
        assert not is_loopback_url(url), url


@pytest.mark.parametrize(("version", "answers"), [
    ("besu/v24.1.0/linux-x86_64/openjdk-java-21", set()),  # a production node run locally, chain id 1337
    ("anvil/v1.7.0", set()),  # says it is anvil but does not answer as anvil does
    ("Geth/v1.14.0-stable", {"anvil_nodeInfo"}),
])
def test_RT13_a_loopback_chain_id_1337_node_is_not_enough(version: str, answers: set[str]) -> None:
    server, seen = _fake_node("127.0.0.1", version, answers)
    try:
        conn = ChainConnection.connect(f"http://127.0.0.1:{server.server_address[1]}/")
        assert conn.chain_id == 1337 and not conn.is_local_dev_chain()
        with pytest.raises(DevKeyRefusedError):
            keys.signer(keys.dev_accounts()[0], conn)
        assert "eth_sendRawTransaction" not in seen
    finally:
        server.shutdown()


def test_RT13_the_local_anvil_still_takes_dev_keys(anvil: NodeInfo) -> None:
    conn = ChainConnection.connect(anvil.rpc_url)
    assert conn.is_local_dev_chain()
    keys.signer(keys.dev_accounts()[0], conn)


@pytest.mark.parametrize(("url", "loopback"), [
    ("http://127.0.0.1:8545", True), ("http://localhost:8545/", True), ("http://[::1]:8545", True),
    ("http://10.0.0.5:8545\\@127.0.0.1:8545/", False), ("http://127.0.0.1:8545\\@10.0.0.5/", False),
    ("http://user@127.0.0.1:8545/", True), ("not a url", False),
])
def test_RT13_loopback_is_what_the_request_reaches(url: str, loopback: bool) -> None:
    assert is_loopback_url(url) is loopback
