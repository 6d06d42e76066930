"""The `flexledger` command as a user runs it: JSON for machines, no tracebacks.

The commands run in this process through the entry point's own ``main`` (its error printer
included), with the environment a process of their own would get: a new interpreter per call
would spend most of the test importing. The installed script itself runs as a process in the two
tests that are about it: that it starts, and that its help loads no chain or solver library.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cli_runner import FLEXLEDGER, Ran, run

from flexledger.chain.manifest import Manifest
from flexledger.chain.node import free_port
from flexledger.identity import keys
from flexledger.identity.eip712 import typed_data_from_json
from flexledger_edge.registration import sign_registration, write_registration


def test_help_explains() -> None:
    proc = subprocess.run([FLEXLEDGER, "--help"], capture_output=True, text=True, check=True)
    for word in ("node", "deploy", "demo", "version", "embedded"):
        assert word in proc.stdout


# a command imports these when it runs; listing the commands must not wait for them
HEAVY = ("web3", "eth_account", "eth_abi", "pyomo", "highspy", "sqlalchemy", "paho")
_HELP_PROBE = """
import json, sys
from flexledger.cli.app import main
sys.argv = ["flexledger", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
loaded = sorted({m.split(".")[0] for m in sys.modules} & set(json.loads(sys.stdin.read())))
print(json.dumps(loaded), file=sys.stderr)
"""


@pytest.mark.parametrize("args", [["--help"], ["offer", "--help"], ["clear", "--help"]])
def test_help_loads_no_chain_or_solver_library(tmp_path: Path, args: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-c", _HELP_PROBE, *args], input=json.dumps(HEAVY), capture_output=True,
                          text=True, check=True, cwd=tmp_path, timeout=120)
    assert "Usage" in proc.stdout
    assert json.loads(proc.stderr.splitlines()[-1]) == []


def test_version_json(tmp_path: Path) -> None:
    info = json.loads(run("version", "--json", data_dir=tmp_path).stdout)
    assert info["solc"].startswith("0.8.")


@pytest.mark.slow
def test_node_start_deploy_status_stop(tmp_path: Path) -> None:
    port = str(free_port())
    env = {"FLEXLEDGER_NODE_PORT": port}
    started = json.loads(run("node", "start", "--json", data_dir=tmp_path, env=env).stdout)
    try:
        assert started["rpc_url"] == f"http://127.0.0.1:{port}"
        manifest = json.loads(run("deploy", "--json", data_dir=tmp_path, env=env).stdout)
        assert manifest["chain_id"] == 31337
        assert manifest["rpc_url"] == started["rpc_url"]
        assert set(manifest["contracts"]) >= {"MarketAuthority", "RoleRegistry", "DIDRegistry"}
        for c in manifest["contracts"].values():
            assert c["address"].startswith("0x") and c["block"] > 0
        assert json.loads((tmp_path / "manifest.json").read_text()) == manifest
        again = json.loads(run("deploy", "--json", data_dir=tmp_path, env=env).stdout)
        assert again == manifest  # current: not deployed twice
        status = json.loads(run("node", "status", "--json", data_dir=tmp_path, env=env).stdout)
        assert status["running"] and status["block"] >= 2
    finally:
        stopped = json.loads(run("node", "stop", "--json", data_dir=tmp_path).stdout)
    assert stopped == {"stopped": True}
    assert run("node", "status", data_dir=tmp_path, check=False).returncode == 3


def test_unreachable_rpc_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    proc = run("--rpc-url", url, "deploy", data_dir=tmp_path, check=False)
    assert proc.returncode == 1
    assert url in proc.stderr
    assert "what to do" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_errors_in_json_mode_are_json(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    proc = run("--rpc-url", url, "deploy", "--json", data_dir=tmp_path, check=False)
    assert proc.returncode == 1
    error = json.loads(proc.stdout)
    assert url in error["error"] and error["hint"]


def test_node_commands_refuse_a_remote_chain(tmp_path: Path) -> None:
    proc = run("node", "start", data_dir=tmp_path, check=False, env={"FLEXLEDGER_RPC_URL": "http://example.org:8545"})
    assert proc.returncode == 1
    assert "remote chain" in proc.stderr


@pytest.mark.parametrize("args", [["nonsense"], ["node", "start", "--bogus"]])
def test_usage_errors_are_short(tmp_path: Path, args: list[str]) -> None:
    proc = run(*args, data_dir=tmp_path, check=False)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_identity_did_and_role_commands(tmp_path: Path) -> None:
    env = {"FLEXLEDGER_NODE_PORT": str(free_port()), "FLEXLEDGER_KEY_PASSWORD": "correct horse"}
    created = json.loads(run("identity", "new", "--json", data_dir=tmp_path, env=env).stdout)
    assert created["did"] == f"did:ethr:0x7a69:{created['address']}"
    assert Path(created["keystore"]).is_file()
    run("node", "start", data_dir=tmp_path, env=env)
    try:
        run("deploy", data_dir=tmp_path, env=env)
        granted = json.loads(
            run("role", "grant", created["did"], "meter", "--out", str(tmp_path / "vc.json"), "--json", data_dir=tmp_path, env=env).stdout
        )
        assert granted["credential"]["credentialSubject"]["role"] == "METER"
        assert json.loads((tmp_path / "vc.json").read_text()) == granted["credential"]
        check = run("role", "check", created["address"], "METER", "--json", data_dir=tmp_path, env=env)
        assert json.loads(check.stdout)["held"] is True
        run("role", "revoke", created["address"], "METER", data_dir=tmp_path, env=env)
        assert run("role", "check", created["address"], "METER", data_dir=tmp_path, env=env, check=False).returncode == 3
        doc = json.loads(run("did", "show", created["did"], "--json", data_dir=tmp_path, env=env).stdout)
        assert doc["didDocument"]["id"] == created["did"]
        bad = run("did", "show", "did:ethr:nonsense", data_dir=tmp_path, env=env, check=False)
        assert bad.returncode == 1 and "not a valid did:ethr" in bad.stderr
        unknown = run("role", "check", created["address"], "king", data_dir=tmp_path, env=env, check=False)
        assert unknown.returncode == 1 and "unknown role" in unknown.stderr
    finally:
        run("node", "stop", data_dir=tmp_path)


@pytest.mark.slow
def test_market_zone_and_lights_commands(tmp_path: Path) -> None:
    env = {"FLEXLEDGER_NODE_PORT": str(free_port())}
    me = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"  # the dev key the CLI signs with here
    run("node", "start", data_dir=tmp_path, env=env)
    try:
        run("deploy", data_dir=tmp_path, env=env)
        run("role", "grant", me, "TSO", data_dir=tmp_path, env=env)
        run("role", "grant", me, "DSO", data_dir=tmp_path, env=env)
        assert json.loads(run("market", "create", "--json", data_dir=tmp_path, env=env).stdout)["market"] == 1
        dispatcher = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
        assert json.loads(run("market", "dispatcher", "1", "--json", data_dir=tmp_path, env=env).stdout)[
            "dispatcher"] == "0x" + "0" * 40
        named = json.loads(run("market", "dispatcher", "1", "--set", dispatcher, "--json", data_dir=tmp_path, env=env).stdout)
        assert named["dispatcher"] == dispatcher and named["tx_hash"]
        assert json.loads(run("grid", "zone", "add", "--json", data_dir=tmp_path, env=env).stdout)["zone"] == 1
        run("grid", "zone", "add", "--parent", "1", "--max-asset-power", "500000", data_dir=tmp_path, env=env)
        run("grid", "zone", "add", "--parent", "2", "--max-asset-power", "500000", data_dir=tmp_path, env=env)
        run("grid", "lights", "static", "--zone", "3", "--direction", "up", "--colour", "yellow", "--capability", "400000",
            data_dir=tmp_path, env=env)
        zone = json.loads(run("grid", "zone", "show", "3", "--json", data_dir=tmp_path, env=env).stdout)
        assert (zone["depth"], zone["path_to_root"], zone["static_up"], zone["max_asset_power_w"]) == (
            2, [3, 2, 1], "YELLOW 400000 W", 500_000)
        status = json.loads(run("node", "status", "--json", data_dir=tmp_path, env=env).stdout)
        day = (int(time.time()) // 86400 + 2) * 86400
        (tmp_path / "lights.csv").write_text(
            f"zone,isp_start,direction,colour,capability_w\n3,{day},UP,YELLOW,100000\n2,{day + 900},UP,RED,\n"
        )
        published = json.loads(run("grid", "lights", "publish", str(tmp_path / "lights.csv"), "--json", data_dir=tmp_path, env=env).stdout)
        assert published["entries"] == 2 and [d["zones"] for d in published["days"]] == [[2, 3]]
        date = dt.datetime.fromtimestamp(day, dt.UTC).date().isoformat()
        shown = json.loads(run("grid", "lights", "show", "--zone", "3", "--day", date, "--json", data_dir=tmp_path, env=env).stdout)
        first, second, third = shown["isps"][:3]
        assert first["UP"] == {"light": "YELLOW 100000 W", "tso_allowed": True, "tso_headroom_w": 100000}
        assert second["UP"]["light"] == "YELLOW 400000 W" and second["UP"]["tso_allowed"] is False  # RED above
        assert third["UP"]["tso_headroom_w"] == 400000 and third["DOWN"]["tso_headroom_w"] is None
        (tmp_path / "loose.csv").write_text(f"zone,isp_start,direction,colour,capability_w\n3,{day},UP,GREEN,\n")
        loose = run("grid", "lights", "publish", str(tmp_path / "loose.csv"), data_dir=tmp_path, env=env, check=False)
        assert loose.returncode == 1 and "GridZonesLooserThanStatic" in loose.stderr
        assert status["running"]
        meter_key = keys.new_account()
        meter = meter_key.address
        run("role", "grant", meter, "METER", data_dir=tmp_path, env=env)
        run("role", "grant", me, "PROSUMER", data_dir=tmp_path, env=env)
        unsigned = run("grid", "asset", "register", meter, "--type", "2", data_dir=tmp_path, env=env, check=False)
        assert unsigned.returncode == 1 and "flexledger-edge sign-registration" in unsigned.stderr
        # the gateway's file: the meter consents to be registered for `me`
        registry = Manifest.load(tmp_path / "manifest.json").address("AssetRegistry")
        terms, signature = sign_registration(meter_key.key, me, 2, 0, int(time.time()) + 86_400, 31337, registry)
        write_registration(tmp_path / "consent.json", terms, signature)
        asset = json.loads(run("grid", "asset", "register", meter, "--type", "2", "--meter-signature",
                               str(tmp_path / "consent.json"), "--json", data_dir=tmp_path, env=env).stdout)
        assert asset["status"] == "PENDING"
        too_big = run("grid", "asset", "map", str(asset["asset"]), "--zone", "2", "--up", "600000", "--down", "1", "--market", "1",
                      data_dir=tmp_path, env=env, check=False)
        assert too_big.returncode == 1 and "AssetPowerAboveZoneLimit" in too_big.stderr
        run("grid", "asset", "map", str(asset["asset"]), "--zone", "2", "--up", "5000", "--down", "3000", "--market", "1", data_dir=tmp_path, env=env)
        run("grid", "asset", "suspend", str(asset["asset"]), data_dir=tmp_path, env=env)
        shown = json.loads(run("grid", "asset", "show", str(asset["asset"]), "--json", data_dir=tmp_path, env=env).stdout)
        assert (shown["status"], shown["zone"], shown["up_w"], shown["meter"]) == ("SUSPENDED", 2, 5000, meter)
    finally:
        run("node", "stop", data_dir=tmp_path)


def test_error_text_with_brackets_is_printed_verbatim(tmp_path: Path) -> None:
    proc = run("did", "show", "did:ethr:[bold]x", data_dir=tmp_path, check=False)
    assert proc.returncode == 1 and "[bold]x" in proc.stderr


@pytest.mark.slow
def test_offer_request_and_book_commands(
    tmp_path: Path, ethers: Callable[[dict[str, Any], str, str], dict[str, str]]
) -> None:
    env = {"FLEXLEDGER_NODE_PORT": str(free_port()), "FLEXLEDGER_METER_KEY_PASSWORD": "meter"}
    me = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"  # the dev key the CLI signs with here
    meter_key = keys.new_account()
    meter = meter_key.address
    meter_keystore = keys.save_keystore(meter_key, "meter", tmp_path / "meter")

    def cli(*args: str, check: bool = True) -> Ran:
        return run(*args, data_dir=tmp_path, env=env, check=check)

    cli("node", "start")
    try:
        cli("deploy")
        for role in ("TSO", "DSO", "AGGREGATOR", "PROSUMER"):
            cli("role", "grant", me, role)
        cli("role", "grant", meter, "METER")
        cli("market", "create")
        cli("grid", "zone", "add")
        cli("grid", "zone", "add", "--parent", "1", "--max-asset-power", "500000")
        cli("grid", "asset", "register", meter, "--type", "2", "--meter-key", str(meter_keystore))  # development
        cli("grid", "asset", "map", "1", "--zone", "2", "--up", "5000", "--down", "5000", "--market", "1")
        cli("token", "mint", me, "1000000")
        balance = json.loads(cli("token", "balance", me, "--json").stdout)["balance"]
        # text writes base units by the token's decimals (2: euro cents)
        assert cli("token", "balance", me).stdout.strip() == f"{balance // 100:,}.{balance % 100:02d}"
        day = (int(time.time()) // 86400 + 2) * 86400
        start = dt.datetime.fromtimestamp(day + 17 * 3600, dt.UTC).isoformat()

        def offer(power: str) -> Path:
            typed = cli("offer", "typed-data", "--asset", "1", "--start", start, "--isps", "4", "--power", power,
                        "--price", "15000", "--baseline-method", "ROLLING_AVERAGE", "--json").stdout
            assert json.loads(typed)["domain"]["name"] == "flexledger OrderBook"
            (tmp_path / f"offer-{power}.json").write_text(typed)
            cli("offer", "sign", str(tmp_path / f"offer-{power}.json"), "--out", str(tmp_path / f"signed-{power}.json"))
            return tmp_path / f"signed-{power}.json"

        good = offer("3000")
        refused = json.loads(cli("offer", "submit", str(good), "--json").stdout)
        assert refused["accepted"] == 0  # a seller without free bond does not sell
        assert cli("bond", "post", "100000").stdout.strip() == f"bond of {me}: 1,000.00"
        assert json.loads(cli("bond", "show", me, "--json").stdout)["may_sell"] is True
        submitted = json.loads(cli("offer", "submit", str(good), "--json").stdout)
        assert submitted["accepted"] == 1 and submitted["offers"][0]["nonce"] == 1
        # the printed typed data signed by an ordinary wallet library (ethers), then relayed
        printed = json.loads(cli("offer", "typed-data", "--asset", "1", "--start", start, "--power", "2000", "--price",
                                 "14000", "--baseline-hash", "0x" + "ab" * 32, "--json").stdout)
        assert printed["message"]["nonce"] == 2
        account = keys.dev_accounts()[0]
        ours = typed_data_from_json(printed).sign(account)  # only for ethers to recover from
        wallet = ethers(printed, "0x" + account.key.hex(), "0x" + ours.hex())
        assert wallet["recovered"] == account.address
        (tmp_path / "wallet.json").write_text(json.dumps({"typedData": printed, "signature": wallet["signature"]}))
        assert json.loads(cli("offer", "submit", str(tmp_path / "wallet.json"), "--json").stdout)["accepted"] == 1
        too_big = json.loads(cli("offer", "submit", str(offer("9000")), "--json").stdout)
        assert too_big["skipped"] == 1 and "OrderBookInvalidPower" in too_big["offers"][0]["reason"]
        replayed = json.loads(cli("offer", "submit", str(good), "--json").stdout)
        assert "OrderBookStaleNonce" in replayed["offers"][0]["reason"]
        short = json.loads(good.read_text())
        short["signature"] = short["signature"][:-2]  # 64 bytes: the packed batch has no room for it
        (tmp_path / "short.json").write_text(json.dumps(short))
        cut = cli("offer", "submit", str(tmp_path / "short.json"), check=False)
        assert cut.returncode != 0 and "65 wanted" in cut.stdout + cut.stderr and "Traceback" not in cut.stderr

        posted = json.loads(cli("request", "post", "--zone", "2", "--start", start, "--isps", "4", "--power", "10000",
                                "--max-price", "20000", "--json").stdout)
        assert posted["escrow"] == 200  # 10 kWh at 200.00 per MWh: 2.00
        date = dt.datetime.fromtimestamp(day, dt.UTC).date().isoformat()
        book = json.loads(cli("book", "show", "--day", date, "--json").stdout)
        # the wallet's single-ISP offer (nonce 2) overlaps asset 1's block: it replaces the block (rule 3, RT-3)
        assert (book["requests"], book["offers"], book["replaced"]) == (1, 1, 1)
        first, second = (next(c for c in book["cells"] if c["isp_start"] == day + 17 * 3600 + k * 900) for k in (0, 1))
        assert first == {"zone": 2, "direction": "UP", "isp_start": day + 17 * 3600, "requested_w": 10000,
                         "offered_w": 2000, "offers": 1}
        assert (second["offered_w"], second["offers"]) == (0, 0)
        assert "digest matches" in cli("book", "show", "--day", date).stdout
        revoked = json.loads(cli("role", "revoke", me, "PROSUMER", "--json").stdout)
        assert revoked["assets_suspended"] == 0  # the dev key still holds AGGREGATOR: its assets stay
        cleared = json.loads(cli("clear", "--day", date, "--json").stdout)
        assert (cleared["offers"], cleared["requests"], cleared["solver"]["optimal"]) == (1, 1, True)
        per_isp = {}
        for award in cleared["award_list"]:
            per_isp[award["isp_start"]] = per_isp.get(award["isp_start"], 0) + award["power_w"]
        assert per_isp == {day + 17 * 3600: 2000}  # asset 1 sold once: its offer in force, not the replaced block
        table = cli("clear", "--day", date).stdout
        # 2 kW for one ISP at 150.00 per MWh pays 0.07 (rounded down): 140.00 per MWh on average
        assert "awarded per request zone" in table and "0.07" in table and "140.00" in table
        cancelled = json.loads(cli("request", "cancel", str(posted["request"]), "--json").stdout)
        assert cancelled["refund"] == 200
        bad = cli("request", "post", "--zone", "9", "--start", start, "--power", "1", "--max-price", "1", check=False)
        assert bad.returncode == 1 and "GridZonesUnknownZone" in bad.stderr
    finally:
        cli("node", "stop")
