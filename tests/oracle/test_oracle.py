"""The oracle: readings signed by the edge agent are verified, kept once, anchored as an
OpenZeppelin standard Merkle root in MeterOracle, and proven on chain; every bad reading is
refused with its reason and counted."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from chain_world import create_market, grant_roles
from eth_account.signers.local import LocalAccount
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle_stores import postgresql_schema
from sqlalchemy import update
from sqlalchemy.engine import Engine

from flexledger.chain.bindings import (
    AssetRegistryClient,
    GridZonesClient,
    MeterOracleClient,
    RoleRegistryClient,
)
from flexledger.chain.connection import ChainConnection
from flexledger.chain.manifest import Manifest
from flexledger.chain.transactions import Signer
from flexledger.grid.owners import register_with_meters
from flexledger.identity import keys
from flexledger.identity.eip712 import read_domain
from flexledger.identity.roles import Role
from flexledger.oracle.anchoring import ProofError, anchor_due, anchor_isp, proof_for
from flexledger.oracle.ingest import STORED, ingest
from flexledger.oracle.readings import Reading, parse_payload
from flexledger.oracle.store import (
    StoredReading,
    open_store,
    readings_of_isp,
    rejections,
    session,
    store_reading,
)
from flexledger.oracle.verify import ChainMeters, Reason, Verifier
from flexledger.settlement.records import NO_ANCHOR, reading_in
from flexledger_edge.reading import MeterSigner, OracleDomain

FOREVER = 2**64 - 1


@dataclass
class World:
    conn: ChainConnection
    oracle: MeterOracleClient
    market: int
    meters: dict[str, LocalAccount]  # good, other, pending, stranger, revoked
    signers: dict[str, MeterSigner]
    verifier: Verifier
    engine: Engine
    isp: int  # an ended ISP


@pytest.fixture
def world(conn: ChainConnection, manifest: Manifest, deployer: Signer, dev_signers: list[Signer], tmp_path: Path) -> World:
    tso, dso, owner, oracle_signer = dev_signers[1:5]
    meters = {name: keys.new_account() for name in ("good", "other", "pending", "stranger", "revoked")}
    grants = [(tso.address, Role.TSO), (dso.address, Role.DSO), (owner.address, Role.PROSUMER),
              (oracle_signer.address, Role.ORACLE),
              *((meters[n].address, Role.METER) for n in ("good", "other", "pending", "revoked"))]
    roles = grant_roles(conn, manifest, deployer, grants)
    market = create_market(conn, manifest, deployer)
    grid = GridZonesClient(conn, manifest.address("GridZones"))
    root = grid.add_zone(0, tso.address, 0, sender=tso).event("ZoneAdded").args["zoneId"]
    zone = grid.add_zone(root, dso.address, 10**6, sender=tso).event("ZoneAdded").args["zoneId"]
    assets = AssetRegistryClient(conn, manifest.address("AssetRegistry"))
    ids = {n: register_with_meters(assets, [meters[n]], [2], sender=owner).event("AssetRegistered").args["assetId"]
           for n in ("good", "other", "pending", "revoked")}
    assets.map_assets([ids["good"], ids["other"], ids["revoked"]], [zone] * 3, [5000] * 3, [5000] * 3, [market] * 3, sender=dso)
    roles.revoke_credential(meters["revoked"].address, Role.METER.id)
    oracle = MeterOracleClient(conn, manifest.address("MeterOracle"), signer=oracle_signer)
    domain = OracleDomain(conn.chain_id, oracle.address)
    signers = {n: MeterSigner(a.key, domain) for n, a in meters.items()}
    separator = read_domain(conn, oracle.address).separator()
    verifier = Verifier(separator, ChainMeters(roles, assets).problem)
    now = conn.latest_timestamp()
    return World(conn, oracle, market, meters, signers, verifier, open_store(f"sqlite:///{tmp_path / 'oracle.db'}"),
                 (now // 900 - 2) * 900)


def payload(world: World, name: str, *, isp: int | None = None, sequence: int = 1, imp: int = 1200, exp: int = 0,
            key: str | None = None) -> bytes:
    """A reading of meter ``name`` as the edge agent publishes it (signed by ``key``'s meter if given)."""
    isp = world.isp if isp is None else isp
    if key is None:
        return world.signers[name].sign_new(isp_start=isp, sequence=sequence, import_wh=imp, export_wh=exp).to_json()
    reading = Reading(world.meters[name].address, isp, sequence, imp, exp)
    signature = reading.typed(read_domain(world.conn, world.oracle.address)).sign(world.meters[key])
    return json.dumps({**reading.message(), "signature": "0x" + signature.hex()}).encode()


def test_the_edge_agents_readings_parse_and_verify_here(world: World) -> None:
    reading, signature = parse_payload(payload(world, "good"))
    assert reading.meter == world.meters["good"].address and len(signature) == 65
    assert world.verifier.check(payload(world, "good"), world.conn.latest_timestamp()).reason is None
    digest = reading.typed(read_domain(world.conn, world.oracle.address)).digest()
    assert digest == reading.digest(world.verifier.separator)


def test_readings_are_kept_once_anchored_and_proven_on_chain(world: World) -> None:
    now = world.conn.latest_timestamp()
    with session(world.engine) as s:
        assert ingest(s, world.verifier, world.market, payload(world, "good", imp=1500, exp=20), now) == STORED
        assert ingest(s, world.verifier, world.market, payload(world, "other", imp=700), now) == STORED
        assert ingest(s, world.verifier, world.market, payload(world, "good", imp=1500, exp=20), now) == Reason.DUPLICATE
    anchored = anchor_due(world.engine, world.oracle, world.market, now, isp_seconds=900, grace=0)
    assert anchored.anchored == [world.isp] and not anchored.failed
    assert anchor_due(world.engine, world.oracle, world.market, now, isp_seconds=900, grace=0).anchored == []  # once
    proof = proof_for(world.engine, world.meters["good"].address, world.isp)
    anchor = proof["anchor"]
    on_chain = reading_in(proof).anchor
    assert anchor["leafCount"] == 2
    signature = bytes.fromhex(proof["signature"][2:])
    assert world.oracle.verify_reading(world.market, world.isp, on_chain, proof["meter"], proof["sequence"],
                                       proof["importWh"], proof["exportWh"], signature,
                                       [bytes.fromhex(p[2:]) for p in proof["proof"]])
    assert not world.oracle.verify_reading(world.market, world.isp, on_chain, proof["meter"], proof["sequence"],
                                           proof["importWh"] + 1, proof["exportWh"], signature,
                                           [bytes.fromhex(p[2:]) for p in proof["proof"]])
    # the leaf commits to the meter's signature: another signature does not prove the reading
    assert not world.oracle.verify_reading(world.market, world.isp, on_chain, proof["meter"], proof["sequence"],
                                           proof["importWh"], proof["exportWh"], signature[:-1] + b"\x00",
                                           [bytes.fromhex(p[2:]) for p in proof["proof"]])
    # another reading of a meter for an anchored ISP is kept apart as evidence, in no root
    with session(world.engine) as s:
        assert ingest(s, world.verifier, world.market, payload(world, "other", sequence=2, imp=5), now) == \
            Reason.CONFLICTING
    assert proof_for(world.engine, world.meters["other"].address, world.isp)["importWh"] == 700  # the first stands
    with pytest.raises(ProofError):
        proof_for(world.engine, world.meters["other"].address, world.isp + 900)
    # a meter whose only reading of the ISP came late: given unanchored (a zero anchor, no proof),
    # and the chain takes it on the meter's signature alone (RT-7)
    meter = world.meters["stranger"]
    reading = Reading(meter.address, world.isp, 1, 5, 0)
    signature = reading.typed(read_domain(world.conn, world.oracle.address)).sign(meter)
    with session(world.engine) as s:
        store_reading(s, reading, signature, now, late=True)
    late = proof_for(world.engine, meter.address, world.isp)
    assert late["proof"] == [] and late["anchor"]["leafCount"] == 0 and late["importWh"] == 5
    zero = NO_ANCHOR
    assert world.oracle.verify_reading(world.market, world.isp, zero, meter.address, 1, 5, 0, signature, [])
    assert not world.oracle.verify_reading(world.market, world.isp, zero, meter.address, 1, 6, 0, signature, [])


def test_every_bad_reading_is_refused_with_its_reason(world: World) -> None:
    now = world.conn.latest_timestamp()
    cases = {
        Reason.BAD_SIGNATURE: payload(world, "good", key="other"),  # signed by another meter's key
        Reason.UNKNOWN_METER: payload(world, "stranger"),  # never held the METER role
        Reason.UNMAPPED: payload(world, "pending"),  # its asset is still pending
        "revoked": payload(world, "revoked"),  # its METER credential was revoked
        Reason.NOT_ALIGNED: payload(world, "good", isp=world.isp + 450),
        Reason.FUTURE: payload(world, "good", isp=(now // 900 + 4) * 900),
        Reason.TOO_OLD: payload(world, "good", isp=world.isp - 30 * 86_400),
        Reason.MALFORMED: b'{"meter": "0x12"}',
    }
    with session(world.engine) as s:
        outcomes = {name: ingest(s, world.verifier, world.market, body, now) for name, body in cases.items()}
    assert outcomes.pop("revoked") == Reason.UNKNOWN_METER
    assert outcomes == {name: name for name in outcomes}
    with session(world.engine) as s:
        counted = rejections(s)
    assert counted[Reason.UNKNOWN_METER] == 2 and all(counted[r] == 1 for r in outcomes if r != Reason.UNKNOWN_METER)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.binary(max_size=300), st.text(max_size=200).map(str.encode),
                 st.dictionaries(st.sampled_from(["meter", "ispStart", "sequence", "importWh", "exportWh", "signature"]),
                                 st.one_of(st.integers(-2**70, 2**70), st.text(max_size=70), st.none(),
                                           st.floats(allow_nan=True)), max_size=6).map(lambda d: json.dumps(d).encode())))
def test_malformed_payloads_are_refused_never_raised(world: World, body: bytes) -> None:
    verdict = world.verifier.check(body, world.conn.latest_timestamp())
    assert verdict.reason is not None


@pytest.mark.services
def test_the_store_keeps_a_reading_once_on_postgresql(world: World) -> None:
    with postgresql_schema() as url:
        engine = open_store(url)
        now = world.conn.latest_timestamp()
        body = payload(world, "good", sequence=int(now))
        with session(engine) as s:
            assert ingest(s, world.verifier, world.market, body, now) == STORED
        with session(engine) as s:
            assert ingest(s, world.verifier, world.market, body, now) == Reason.DUPLICATE
        engine.dispose()


def test_the_contract_hashes_a_reading_as_the_meter_signs_it(world: World) -> None:
    reading, _signature = parse_payload(payload(world, "good", imp=321, exp=7))
    assert bytes(world.oracle.reading_digest(*reading.signed_values())) == reading.digest(world.verifier.separator)


def test_the_consumer_keeps_each_reading_once_through_a_real_broker(world: World, tmp_path: Path) -> None:
    import time

    import paho.mqtt.client as mqtt

    from flexledger.delivery.broker import LocalBroker
    from flexledger.oracle.consumer import OracleConsumer

    broker = LocalBroker(tmp_path / "broker", auth=False)  # anonymous test clients
    info = broker.start()
    consumer = OracleConsumer(info.url, world.engine, world.verifier, world.market, client_id="test-oracle")
    try:
        consumer.start()
        assert consumer.wait_subscribed()
        bodies = [payload(world, "good", isp=world.isp - (k - 1) * 900, sequence=k, imp=100 + k) for k in range(1, 21)]
        bodies += bodies[:5]  # delivered twice (an edge agent that missed its PUBACKs)
        bodies += [payload(world, "stranger"), b"not json"]
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-meters")
        client.connect("127.0.0.1", info.port)
        client.loop_start()
        for body in bodies:
            client.publish("flexledger/v1/readings/x", body, qos=1).wait_for_publish(5)
        deadline = time.time() + 10
        while sum(consumer.outcomes.values()) < len(bodies) and time.time() < deadline:
            time.sleep(0.05)
        client.loop_stop()
        client.disconnect()
    finally:
        consumer.stop()
        broker.stop()
    assert consumer.outcomes == {STORED: 20, Reason.DUPLICATE: 5, Reason.UNKNOWN_METER: 1, Reason.MALFORMED: 1}
    with session(world.engine) as s:
        assert sum(len(readings_of_isp(s, world.isp - k * 900)) for k in range(20)) == 20


def test_readings_proof_from_the_cli(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from flexledger.cli.app import app

    now = world.conn.latest_timestamp()
    with session(world.engine) as s:
        ingest(s, world.verifier, world.market, payload(world, "good", imp=42), now)
    anchor_due(world.engine, world.oracle, world.market, now, isp_seconds=900, grace=0)
    monkeypatch.setenv("FLEXLEDGER_DATABASE_URL", str(world.engine.url))
    result = CliRunner().invoke(app, ["readings", "proof", "--meter", world.meters["good"].address, "--isp",
                                      str(world.isp), "--json"])
    assert result.exit_code == 0, result.output
    proof = json.loads(result.output)
    assert proof["importWh"] == 42 and proof["anchor"]["leafCount"] == 1 and proof["proof"] == []
    refused = CliRunner().invoke(app, ["readings", "refused", "--json"])
    assert refused.exit_code == 0 and json.loads(refused.output) == {}


def _into_the_baseline_window(world: World, isp_start: int) -> None:
    """The chain's clock a minute before the ISP's gate closure: in ``MeterOracle.baselineWindow``."""
    _opens, closes = world.oracle.baseline_window(world.market, isp_start)
    world.conn.set_next_block_timestamp(closes - 60)
    world.conn.mine()


def test_standard_baseline_and_erasure(world: World) -> None:
    from flexledger.oracle.baselines import erase_meter, standard_baseline
    from flexledger.rules.baselines import rolling_average

    now = world.conn.latest_timestamp()
    world.verifier.retention = 30 * 86_400
    target = world.isp
    history = {target - back * 86_400: 1000 + 10 * back for back in range(1, 22)}  # three weeks of the same ISP
    with session(world.engine) as s:
        for k, (isp, wh) in enumerate(sorted(history.items()), start=1):
            assert ingest(s, world.verifier, world.market, payload(world, "good", isp=isp, sequence=k, imp=wh), now) == STORED
    # kept but in no root: not on chain for anyone to check a baseline against, so not averaged
    assert standard_baseline(world.engine, world.meters["good"].address, target) is None
    with session(world.engine) as s:  # as if their roots were anchored (anchor_isp marks them so)
        s.execute(update(StoredReading).where(StoredReading.meter == world.meters["good"].address).values(anchored=True))
    baseline = standard_baseline(world.engine, world.meters["good"].address, target)
    assert baseline is not None and baseline == rolling_average(history, target)
    assert erase_meter(world.engine, world.meters["good"].address) == 21
    assert standard_baseline(world.engine, world.meters["good"].address, target) is None


def test_standard_baselines_are_anchored_and_proven_on_chain(world: World) -> None:
    from flexledger.oracle.baselines import (
        BaselineError,
        anchor_baselines,
        baseline_proof_for,
        standard_baseline,
    )

    now = world.conn.latest_timestamp()
    world.verifier.retention = 30 * 86_400
    target = world.isp + 2 * 86_400  # a day ahead: its baselines are anchored before its gate closure
    good, other = world.meters["good"].address, world.meters["other"].address
    with session(world.engine) as s:
        for back in range(2, 16):  # two weeks of the ISP for "good", two days only for "other"
            isp = target - back * 86_400
            assert ingest(s, world.verifier, world.market, payload(world, "good", isp=isp, sequence=back,
                                                                   imp=900 + back, exp=300), now) == STORED
            if back <= 3:
                assert ingest(s, world.verifier, world.market, payload(world, "other", isp=isp, sequence=back),
                              now) == STORED
    for back in range(2, 16):
        assert anchor_isp(world.engine, world.oracle, world.market, target - back * 86_400) is not None
    _into_the_baseline_window(world, target)
    with pytest.raises(BaselineError, match="no standard baselines anchored"):
        baseline_proof_for(world.engine, world.market, good, target)
    anchor = anchor_baselines(world.engine, world.oracle, world.market, target)
    assert anchor is not None and anchor.leaf_count == 1  # "other" has too little history
    again = anchor_baselines(world.engine, world.oracle, world.market, target)
    assert again is not None and again.root == anchor.root  # one anchor per ISP
    answer = baseline_proof_for(world.engine, world.market, good, target)
    assert answer["baselineWh"] == standard_baseline(world.engine, good, target) < 1000
    proof = [bytes.fromhex(h[2:]) for h in answer["witness"]]  # the inputs hash, then the Merkle proof
    assert world.oracle.verify_baseline(world.market, target, good, answer["baselineWh"], proof)
    assert not world.oracle.verify_baseline(world.market, target, good, answer["baselineWh"] + 1, proof)
    assert world.oracle.baseline_root(world.market, target) == anchor.root
    with pytest.raises(BaselineError, match="no standard baseline for"):
        baseline_proof_for(world.engine, world.market, other, target)


def test_standard_baselines_of_a_day_from_the_cli(
    world: World, manifest: Manifest, deployer: Signer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from flexledger.cli.app import app
    from flexledger.config import load_settings
    from flexledger.oracle.baselines import baseline_proof_for, day_baselines, standard_baseline
    from flexledger.times import iso

    now = world.conn.latest_timestamp()
    world.verifier.retention = 30 * 86_400
    good = world.meters["good"].address
    target = world.isp + 2 * 86_400  # a day ahead: its baselines are anchored before its gate closure
    with session(world.engine) as s:
        for back in range(2, 9):
            assert ingest(s, world.verifier, world.market, payload(world, "good", isp=target - back * 86_400,
                                                                   sequence=back, imp=500 + 7 * back), now) == STORED
    for back in range(2, 9):
        assert anchor_isp(world.engine, world.oracle, world.market, target - back * 86_400) is not None
    day_start = target - target % 86_400
    assert day_baselines(world.engine, day_start, 900)[target][good] == standard_baseline(world.engine, good, target)
    _into_the_baseline_window(world, target)
    RoleRegistryClient(world.conn, manifest.address("RoleRegistry"), signer=deployer).issue_credential(
        deployer.address, Role.ORACLE.id, 0, FOREVER, b"\x01" * 32)  # the CLI signs with the dev key here
    monkeypatch.setenv("FLEXLEDGER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FLEXLEDGER_RPC_URL", world.conn.rpc_url)
    monkeypatch.setenv("FLEXLEDGER_DATABASE_URL", str(world.engine.url))
    settings = load_settings()
    settings.manifest_path.parent.mkdir(parents=True, exist_ok=True)
    manifest.save(settings.manifest_path)
    result = CliRunner().invoke(app, ["oracle", "baselines", "--market", str(world.market), "--day",
                                      iso(day_start)[:10], "--isp", str(target), "--json"])
    assert result.exit_code == 0, result.output
    anchored = json.loads(result.output)["anchored"]
    assert [a["ispStart"] for a in anchored] == [target] and anchored[0]["meters"] == 1
    answer = baseline_proof_for(world.engine, world.market, good, target)
    assert world.oracle.verify_baseline(world.market, target, good, answer["baselineWh"],
                                        [bytes.fromhex(h[2:]) for h in answer["witness"]])
    whole_day = CliRunner().invoke(app, ["oracle", "baselines", "--market", str(world.market), "--day",
                                         iso(day_start)[:10], "--json"])  # the others have no history: only it
    assert whole_day.exit_code == 0, whole_day.output
    assert [a["ispStart"] for a in json.loads(whole_day.output)["anchored"]] == [target]


def test_the_oracle_service_anchors_what_it_kept(
    world: World, manifest: Manifest, deployer: Signer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from flexledger.cli.app import app
    from flexledger.config import load_settings
    from flexledger.delivery.broker import LocalBroker

    now = world.conn.latest_timestamp()
    with session(world.engine) as s:
        assert ingest(s, world.verifier, world.market, payload(world, "good", imp=77), now) == STORED
    RoleRegistryClient(world.conn, manifest.address("RoleRegistry"), signer=deployer).issue_credential(
        deployer.address, Role.ORACLE.id, 0, FOREVER, b"\x01" * 32)  # the CLI signs with the dev key here
    data = tmp_path / "data"
    monkeypatch.setenv("FLEXLEDGER_DATA_DIR", str(data))
    monkeypatch.setenv("FLEXLEDGER_RPC_URL", world.conn.rpc_url)
    monkeypatch.setenv("FLEXLEDGER_DATABASE_URL", str(world.engine.url))
    settings = load_settings()
    settings.manifest_path.parent.mkdir(parents=True, exist_ok=True)
    manifest.save(settings.manifest_path)
    try:
        result = CliRunner().invoke(app, ["oracle", "run", "--market", str(world.market), "--seconds", "1",
                                          "--interval", "0.2", "--grace", "0", "--json"])
    finally:
        LocalBroker(data).stop()
    assert result.exit_code == 0, result.output
    assert json.loads(result.output[result.output.index("{"):])["anchored"] == [world.isp]
    assert world.oracle.anchor_hash(world.market, world.isp) != bytes(32)


def test_meter_answers_are_kept_and_dropped_when_the_registries_say_so(
    conn: ChainConnection, manifest: Manifest, deployer: Signer, dev_signers: list[Signer], world: World,
) -> None:
    roles = RoleRegistryClient(conn, manifest.address("RoleRegistry"), signer=deployer)
    assets = AssetRegistryClient(conn, manifest.address("AssetRegistry"))
    calls: list[list[str]] = []
    real = assets.meter_states

    def counted(meters_: list[str], **kw: object) -> tuple[list[int], list[bool]]:
        calls.append(list(meters_))
        return real(meters_)  # type: ignore[no-any-return]

    assets.meter_states = counted  # type: ignore[method-assign]
    meters = ChainMeters(roles, assets, poll=0.0)
    names = ("good", "other", "pending", "stranger", "revoked")
    meters.prefetch([world.meters[n].address for n in names])  # one call for the batch
    assert len(calls) == 1 and sorted(calls[0]) == sorted(world.meters[n].address for n in names)
    answers = {n: meters.problem(world.meters[n].address) for n in names}
    assert answers == {"good": None, "other": None, "pending": Reason.UNMAPPED, "stranger": Reason.UNKNOWN_METER,
                       "revoked": Reason.UNKNOWN_METER}
    assert len(calls) == 1  # kept: asked once per ISP at most, not once per reading
    roles.revoke_credential(world.meters["good"].address, Role.METER.id)  # an event: the answer is dropped
    assert meters.problem(world.meters["good"].address) == Reason.UNKNOWN_METER
    roles.issue_credential(world.meters["stranger"].address, Role.METER.id, 0, FOREVER, b"\x01" * 32)
    assert meters.problem(world.meters["stranger"].address) == Reason.UNMAPPED  # now a meter, of no asset
    assert meters.problem(world.meters["other"].address) is None
    assert sum(c.count(world.meters["other"].address) for c in calls) == 1


def test_readings_out_of_order_are_each_kept_once(world: World) -> None:
    """A gateway's readings may arrive out of order (a resend after a reconnect, a broker
    redelivery): each is kept, once, under its own ISP, whatever came before it."""
    now = world.conn.latest_timestamp()
    isps = [world.isp - 2 * 900, world.isp - 900, world.isp]
    bodies = [payload(world, "good", isp=t, sequence=k + 1, imp=100 * (k + 1)) for k, t in enumerate(isps)]
    with session(world.engine) as s:
        outcomes = [ingest(s, world.verifier, world.market, b, now) for b in (bodies[2], bodies[0], bodies[1], bodies[0])]
    assert outcomes == [STORED, STORED, STORED, Reason.DUPLICATE]
    with session(world.engine) as s:
        kept = [[(r.sequence, r.import_wh) for r in readings_of_isp(s, t)] for t in isps]
    assert kept == [[(1, 100)], [(2, 200)], [(3, 300)]]


def test_the_meter_cache_stays_bounded_under_a_flood_of_fresh_keys(world: World, manifest: Manifest) -> None:
    """Readings signed by fresh keys (each valid, each a meter the chain never heard of) cost one
    chain call per batch and push out only other refused keys: the known meters stay answered."""
    asked: list[int] = []
    assets = AssetRegistryClient(world.conn, manifest.address("AssetRegistry"))
    real = assets.meter_states

    def meter_states(meters: list[str]) -> tuple[list[int], list[bool]]:
        asked.append(len(meters))
        return real(meters)  # type: ignore[return-value]

    assets.meter_states = meter_states  # type: ignore[method-assign]
    meters = ChainMeters(RoleRegistryClient(world.conn, manifest.address("RoleRegistry")), assets, size=10,
                         refused_size=50, batch=500)
    good = world.meters["good"].address
    assert meters.problem(good) is None
    flood = [keys.new_account().address for _ in range(300)]
    meters.prefetch(flood)
    assert meters.cached() == (1, 50) and asked == [1, 300]
    assert meters.problem(sorted(flood)[-1]) == Reason.UNKNOWN_METER and asked == [1, 300]
    assert meters.problem(good) is None and asked == [1, 300]  # still known, not asked again
    brief = ChainMeters(RoleRegistryClient(world.conn, manifest.address("RoleRegistry")), assets, refused_ttl=0.0)
    brief.problem(flood[0])
    brief.problem(flood[0])
    assert asked[-2:] == [1, 1]  # a refused meter is asked again once its short while is over


def test_a_store_of_an_earlier_version_keeps_its_standard_baselines(tmp_path: Path) -> None:
    """Baselines kept before their leaves committed to their inputs get empty inputs (their leaves
    are of the old format; nothing re-anchors them) and the store opens."""
    import sqlalchemy

    from flexledger.oracle.store import StoredBaseline

    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = sqlalchemy.create_engine(url)
    with old.begin() as c:
        c.execute(sqlalchemy.text("CREATE TABLE standard_baselines (market INTEGER NOT NULL, isp_start BIGINT NOT NULL, "
                                  "meter VARCHAR(42) NOT NULL, baseline_wh BIGINT NOT NULL, "
                                  "PRIMARY KEY (market, isp_start, meter))"))
        c.execute(sqlalchemy.text("INSERT INTO standard_baselines VALUES (1, 900, '0xabc', 1500)"))
    old.dispose()
    engine = open_store(url)
    with session(engine) as s:
        (row,) = s.scalars(sqlalchemy.select(StoredBaseline)).all()
        assert (row.baseline_wh, row.days_back, row.nets) == (1500, 0, "")
