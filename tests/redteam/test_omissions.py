"""RT-7 (issue 16), the oracle's half, end to end: an oracle that received a reading, receipted it
"accepted", then left it out of the ISP's root escaped unmarked (the seller settles on the meter's
signature, so only the oracle's word was broken). Now the oracle signs every receipt (EIP-712
``ReadingReceipt`` in MeterOracle's domain), the edge agent keeps the accepted ones, and anyone
holding one files an omission claim; the honest oracle answers a wrong claim with its proof (and
takes the bond), an unanswered one marks and slashes it.

Real pieces: anvil with the deployed contracts, the embedded broker, two edge agents, the oracle's
consumer and store; the omission is the oracle anchoring a root without one meter's reading."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from chain_world import create_market, grant_roles
from eth_account import Account
from eth_account.messages import encode_typed_data
from typer.testing import CliRunner

from flexledger.chain.bindings import (
    AssetRegistryClient,
    GridZonesClient,
    MeterOracleClient,
    OmissionClaimsClient,
    SettlementTokenClient,
)
from flexledger.chain.connection import ChainConnection
from flexledger.chain.manifest import Manifest
from flexledger.chain.revert_errors import (
    OmissionAlreadyClaimed,
    OmissionNotOpen,
    OmissionNotReceipted,
)
from flexledger.chain.transactions import Signer
from flexledger.cli import context as cli_context
from flexledger.cli.app import app
from flexledger.config import load_settings
from flexledger.delivery.broker import BrokerInfo, LocalBroker, meter_user
from flexledger.delivery.omissions import (
    OmissionClaimError,
    SignedReceipt,
    answer_claims,
    file_claim,
    uphold,
)
from flexledger.grid.owners import register_with_meters
from flexledger.identity import keys
from flexledger.identity.eip712 import read_domain
from flexledger.identity.roles import Role
from flexledger.oracle.anchoring import anchor_due, tree_of
from flexledger.oracle.consumer import OracleConsumer
from flexledger.oracle.readings import Reading
from flexledger.oracle.receipts import (
    ReceiptSigner,
    receipt_digest,
    receipt_digest_abi,
    receipt_typed,
)
from flexledger.oracle.store import open_store, readings_of_isp, session
from flexledger.oracle.verify import Verifier
from flexledger.rules.market import MarketParams
from flexledger_edge.agent import EdgeAgent
from flexledger_edge.cli import main as edge_main
from flexledger_edge.clock import RealClock
from flexledger_edge.config import load_config
from flexledger_edge.reading import SignedReading

ISP = 900
STAKE = 50_000
GRACE = 3600  # the anchoring's grace: readings committed before an ISP's end + this are promised


def test_receipt_digest_is_eth_accounts_typed_data_and_the_contracts(conn: ChainConnection, manifest: Manifest) -> None:
    oracle = MeterOracleClient(conn, manifest.address("MeterOracle"))
    domain = read_domain(conn, oracle.address)
    account = Account.create()
    for accepted, market, sequence in ((True, 3, 7), (False, 2**32 - 1, 2**64 - 1)):
        signer = ReceiptSigner(account.key, domain.separator(), market)
        assert signer.address == account.address
        reading = Reading(Account.create().address, 1_800_000_000, sequence, 2**64 - 1, 0)
        typed = receipt_typed(domain, market, reading, accepted)
        ours = receipt_digest(domain.separator(), market, reading, accepted)
        assert ours == receipt_digest_abi(domain.separator(), market, reading, accepted)
        assert ours == typed.digest() == bytes(oracle.receipt_digest(market, reading.meter, reading.isp_start,
                                                                     reading.sequence, reading.import_wh,
                                                                     reading.export_wh, accepted))
        signature = signer.sign(reading, accepted)
        assert Account.recover_message(encode_typed_data(full_message=typed.to_json()), signature=signature) == \
            account.address
        assert signature == bytes(account.sign_message(encode_typed_data(full_message=typed.to_json())).signature)
    with pytest.raises(ValueError):
        receipt_digest(domain.separator(), 2**32, Reading(account.address, 0, 0, 0, 0), True)


def _agent(local: LocalBroker, info: BrokerInfo, folder: Path, key: bytes, chain_id: int, oracle: str) -> EdgeAgent:
    address = Account.from_key(key).address
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "agent.toml"
    path.write_text(f"""
chain_id = {chain_id}
oracle_address = "{oracle}"
mode = "development"
state_dir = "state"
[meter]
private_key = "{key.hex()}"
[broker]
url = "{local.client_url(info, meter_user(address))}"
resend_s = 1
resend_max_s = 2
[driver]
kind = "simulated"
""")
    return EdgeAgent(load_config(path), RealClock())


def _step_until(agents: list[EdgeAgent], pred: object, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for agent in agents:
            agent.publisher.step(0.05)
        if pred():  # type: ignore[operator]
            return True
    return bool(pred())  # type: ignore[operator]


def test_rt7_an_oracle_that_leaves_out_a_receipted_reading_is_marked_and_slashed(
        conn: ChainConnection, manifest: Manifest, deployer: Signer, dev_signers: list[Signer],
        broker: tuple[LocalBroker, BrokerInfo], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    local, info = broker
    tso, dso, owner, oracle_signer = dev_signers[1:5]
    meters = {name: Account.create() for name in ("good", "left_out")}
    grant_roles(conn, manifest, deployer, [
        (tso.address, Role.TSO), (dso.address, Role.DSO), (owner.address, Role.PROSUMER),
        (oracle_signer.address, Role.ORACLE), *((m.address, Role.METER) for m in meters.values())])
    market = create_market(conn, manifest, deployer)
    grid = GridZonesClient(conn, manifest.address("GridZones"))
    root = grid.add_zone(0, tso.address, 0, sender=tso).event("ZoneAdded").args["zoneId"]
    zone = grid.add_zone(root, dso.address, 10**6, sender=tso).event("ZoneAdded").args["zoneId"]
    assets = AssetRegistryClient(conn, manifest.address("AssetRegistry"))
    ids = [register_with_meters(assets, [m], [2], sender=owner).event("AssetRegistered").args["assetId"]
           for m in meters.values()]
    assets.map_assets(ids, [zone] * 2, [5000] * 2, [5000] * 2, [market] * 2, sender=dso)
    oracle = MeterOracleClient(conn, manifest.address("MeterOracle"), signer=oracle_signer)
    token = SettlementTokenClient(conn, manifest.address("SettlementToken"), signer=deployer)
    oracle.set_required_stake(market, STAKE, sender=deployer)
    token.mint(oracle_signer.address, STAKE, sender=deployer)
    token.approve(oracle.address, STAKE, sender=oracle_signer)
    oracle.stake(market, STAKE)

    # the oracle's consumer signs its receipts; the agents keep the accepted ones
    domain = read_domain(conn, oracle.address)
    engine = open_store(f"sqlite:///{tmp_path / 'oracle.db'}")
    url, client_id = local.oracle_url(info)
    consumer = OracleConsumer(url, engine, Verifier(domain.separator(), lambda _m: None, isp_seconds=ISP), market,
                              client_id=client_id, clock=lambda: max(int(time.time()), conn.latest_timestamp()))
    consumer.receipts = True
    consumer.receipt_signer = ReceiptSigner(oracle_signer.account.key, domain.separator(), market)
    consumer.anchor_grace, consumer.isp_seconds = GRACE, ISP
    consumer.start()
    assert consumer.wait_subscribed()
    agents = {n: _agent(local, info, tmp_path / n, bytes(m.key), conn.chain_id, oracle.address)
              for n, m in meters.items()}
    now = max(int(time.time()), conn.latest_timestamp())
    honest_isp, omitted_isp = (now // ISP - 2) * ISP, (now // ISP - 1) * ISP
    try:
        for agent in agents.values():
            for isp in (honest_isp, omitted_isp):
                def sign(seq: int, isp: int = isp, agent: EdgeAgent = agent) -> SignedReading:
                    return agent.signer.sign_new(isp_start=isp, sequence=seq, import_wh=1200, export_wh=30)
                assert agent.outbox.append(agent.meter, isp, sign, now=now) is not None
        assert _step_until(list(agents.values()), lambda: all(a.outbox.count() == 0 for a in agents.values()))
        for agent in agents.values():
            kept = agent.outbox.receipts()
            assert [(r.isp_start, r.market) for r in kept] == [(honest_isp, market), (omitted_isp, market)]
    finally:
        consumer.stop()
        for agent in agents.values():
            agent.publisher.close()

    # `flexledger-edge receipts` prints them, one a line: what a claim is filed with
    capsys.readouterr()
    assert edge_main(["receipts", "--config", str(tmp_path / "left_out" / "agent.toml")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    receipts = [SignedReceipt.load(line) for line in lines]
    assert [r.oracle for r in receipts] == [oracle_signer.address] * 2

    # the honest ISP is anchored by the store; the other, dishonestly, without the left-out meter
    if conn.latest_timestamp() < omitted_isp + ISP:  # the chain's clock may lag the wall clock
        conn.increase_time(omitted_isp + ISP - conn.latest_timestamp())
    done = anchor_due(engine, oracle, market, honest_isp + ISP + GRACE, isp_seconds=ISP, grace=GRACE)
    assert done.anchored == [honest_isp]
    with session(engine) as s:
        kept_rows = [r for r in readings_of_isp(s, omitted_isp) if r.meter == meters["good"].address]
        oracle.anchor_root(market, omitted_isp, tree_of(kept_rows).root, 1)

    claimant = owner  # the meter's owner, holding its gateway's receipts
    claims = OmissionClaimsClient(conn, manifest.address("OmissionClaims"), signer=claimant)
    as_oracle = OmissionClaimsClient(conn, claims.address, signer=oracle_signer)
    bond = claims.claim_bond()
    token.mint(claimant.address, 2 * bond, sender=deployer)
    owner_token = SettlementTokenClient(conn, token.address, signer=claimant)
    before = owner_token.balance_of(claimant.address)

    # a wrong claim (the reading IS in the honest root) is answered by the oracle, which takes the bond
    honest = next(r for r in receipts if r.isp_start == honest_isp)
    claim_tx = file_claim(claims, oracle, owner_token, honest)
    answered = answer_claims(engine, as_oracle, market)
    assert [(a["ispStart"], a["meter"]) for a in answered] == [(honest_isp, meters["left_out"].address)]
    assert owner_token.balance_of(oracle_signer.address) == bond

    # the real omission, claimed with `flexledger omission claim`: unanswerable from the store,
    # upheld after the window with `flexledger omission uphold`
    omitted = next(r for r in receipts if r.isp_start == omitted_isp)
    receipt_file = tmp_path / "receipt.json"
    receipt_file.write_text(next(line for line in lines if json.loads(line)["ispStart"] == omitted_isp) + "\n")
    monkeypatch.setenv("FLEXLEDGER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FLEXLEDGER_RPC_URL", conn.rpc_url)
    monkeypatch.setenv("FLEXLEDGER_DATABASE_URL", str(engine.url))
    settings = load_settings()
    settings.manifest_path.parent.mkdir(parents=True, exist_ok=True)
    manifest.save(settings.manifest_path)
    monkeypatch.setattr(cli_context, "load_signer", lambda c, _key: keys.signer(claimant.account, c))
    claimed = CliRunner().invoke(app, ["omission", "claim", "--receipt", str(receipt_file), "--json"])
    assert claimed.exit_code == 0, claimed.output
    omission_gas = json.loads(claimed.output)["gasUsed"]
    claimant.forget_nonce()  # the CLI sent with its own signer of the same key
    assert answer_claims(engine, as_oracle, market) == []
    with pytest.raises(OmissionAlreadyClaimed):
        file_claim(claims, oracle, owner_token, omitted)
    conn.increase_time(MarketParams().dispute_window_seconds + 1)
    upheld_cli = CliRunner().invoke(app, ["omission", "uphold", "--market", str(market), "--meter",
                                          meters["left_out"].address, "--isp", str(omitted_isp), "--json"])
    assert upheld_cli.exit_code == 0, upheld_cli.output
    upheld = json.loads(upheld_cli.output)
    assert upheld["slashed"] == STAKE and upheld["omissions"] == 1
    assert claims.omissions_of(oracle_signer.address) == 1
    assert oracle.stake_of(market, oracle_signer.address).amount == 0
    assert owner_token.balance_of(claimant.address) == before - bond + STAKE, "one bond lost, the other back + stake"

    # a receipt promising nothing (not accepted), or signed by another key, cannot claim
    with pytest.raises(OmissionClaimError):
        SignedReceipt.from_json({**json.loads(lines[0]), "accepted": False})
    stranger = ReceiptSigner(Account.create().key, domain.separator(), market)
    good_reading = Reading(meters["good"].address, omitted_isp, 2, 1200, 30)
    forged = SignedReceipt(market, good_reading.meter, omitted_isp, 2, 1200, 30, stranger.address,
                           stranger.sign(good_reading, True))
    with pytest.raises(OmissionNotReceipted):
        file_claim(claims, oracle, owner_token, forged)
    print(f"gas: claim {claim_tx.gas_used}, answer {answered[0]['gasUsed']}, claim {omission_gas}, "
          f"uphold (slash) {upheld['gasUsed']}")
    with pytest.raises(OmissionNotOpen):
        uphold(claims, market, omitted_isp, meters["left_out"].address)
