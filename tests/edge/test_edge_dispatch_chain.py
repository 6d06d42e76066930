"""Orders the dispatcher signs from a final result, checked by a gateway against the chain itself
(JSON-RPC to anvil): only an award of the final result, for the gateway's asset, within its ISPs and
power, signed by the key the MarketRegistry names, is executed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak
from settlement_world import ISP, SettlementWorld, build_world

from flexledger.chain import structs
from flexledger.chain.bindings import MarketRegistryClient
from flexledger.chain.connection import ChainConnection
from flexledger.chain.manifest import Manifest
from flexledger.chain.transactions import Signer
from flexledger.clearing.commitment import award_proofs
from flexledger.delivery.dispatch import (
    DispatchError,
    SignedActivation,
    dispatch_result,
    registry_domain,
)
from flexledger.identity import keys
from flexledger_edge.activation import ActivationOrder, AwardEvidence, parse_signed_order
from flexledger_edge.chainview import JsonRpcChain
from flexledger_edge.devices import SimulatedBattery
from flexledger_edge.orders import OrderHandler, OrderPolicy


@pytest.fixture
def world(conn: ChainConnection, manifest: Manifest, deployer: Signer, dev_signers: list[Signer],
          tmp_path: Path) -> SettlementWorld:
    return build_world(conn, manifest, deployer, dev_signers, tmp_path)


def _dispatch(w: SettlementWorld, deployer: Signer) -> tuple[Any, list[SignedActivation]]:
    dispatcher = keys.new_account()
    markets = MarketRegistryClient(w.conn, w.manifest.address("MarketRegistry"))
    markets.set_dispatcher(w.market, dispatcher.address, sender=deployer)
    offers = {d: o for o, d in w.loaded.book.digests.items()}
    done = dispatch_result(w.result_id, offers, award_proofs(w.clearing, w.result_id), isp_seconds=ISP,
                           dispatcher=dispatcher, domain=registry_domain(w.conn, markets.address),
                           named_dispatcher=markets.dispatcher(w.market))
    return dispatcher, done.orders


def _gateway(w: SettlementWorld, asset: int, tmp_path: Path, *, max_power_w: int = 5_000,
             dispatcher_ttl_s: float = 60.0) -> OrderHandler:
    chain = JsonRpcChain(w.conn.rpc_url, market_registry=w.manifest.address("MarketRegistry"),
                         clearing_commitment=w.manifest.address("ClearingCommitment"),
                         asset_registry=w.manifest.address("AssetRegistry"), dispatcher_ttl_s=dispatcher_ttl_s)
    policy = OrderPolicy(market=w.market, domain=None, dispatcher=None, chain=chain,
                         prequalified_up_w=20_000, prequalified_down_w=20_000)
    return OrderHandler(asset, SimulatedBattery(20_000, max_power_w, 0.5), ISP, clock=lambda: float(w.hour - 600),
                        override_active=lambda: None, policy=policy, log_path=tmp_path / f"orders-{asset}.sqlite3")


def _resign(signed: SignedActivation, key: Any, w: SettlementWorld, *, evidence: AwardEvidence | None = None,
            **change: Any) -> bytes:
    parsed = parse_signed_order(signed.payload)
    fields = {**parsed.order.__dict__, **change}
    order = ActivationOrder(**fields)
    domain = registry_domain(w.conn, w.manifest.address("MarketRegistry"))
    return order.to_json(order.sign(bytes(key.key), domain), evidence if evidence is not None else parsed.award)


def test_the_contracts_digest_is_the_agents_and_eth_accounts(world: SettlementWorld, deployer: Signer) -> None:
    w = world
    dispatcher, orders = _dispatch(w, deployer)
    order = parse_signed_order(orders[0].payload)
    domain = registry_domain(w.conn, w.manifest.address("MarketRegistry"))
    markets = MarketRegistryClient(w.conn, w.manifest.address("MarketRegistry"))
    o = order.order
    on_chain = markets.activation_order_digest(structs.ActivationOrder(o.order_id, o.market, o.asset, o.isp_start, o.isps,
                                                               0 if o.direction == "UP" else 1, o.power_w, o.expires_at,
                                                               o.result_id, o.offer_digest))
    signable = encode_typed_data(full_message=o.typed_data(domain))
    assert bytes(on_chain) == o.digest(domain) == keccak(b"\x19" + signable.version + signable.header + signable.body)
    assert Account.recover_message(signable, signature=order.signature) == dispatcher.address


def test_an_award_of_the_final_result_is_executed_and_nothing_beyond_it(
    world: SettlementWorld, deployer: Signer, tmp_path: Path
) -> None:
    w = world
    dispatcher, orders = _dispatch(w, deployer)
    by_asset = {s.order.asset: s for s in orders}
    a, b = w.assets
    assert sorted(by_asset) == sorted(w.assets) and by_asset[a].order.power_w == 5_000
    assert by_asset[a].topic == f"flexledger/v1/orders/{a}"
    gateway = _gateway(w, a, tmp_path, max_power_w=10_000)

    def answer(payload: bytes) -> tuple[str, str]:
        ack = gateway.handle(payload)
        return ack.status, str(ack.reason)

    # B's order is not A's; A's order carrying B's award: the offer is not A's
    assert "wrong asset" in answer(by_asset[b].payload)[1]
    assert "not for asset" in answer(_resign(by_asset[b], dispatcher, w, order_id=keccak(text="x1"), asset=a))[1]
    # above the award's power; beyond its ISPs (booking the asset for longer)
    assert "power above the award" in answer(_resign(by_asset[a], dispatcher, w, order_id=keccak(text="x2"),
                                                     power_w=5_001))[1]
    assert "no proven award" in answer(_resign(by_asset[a], dispatcher, w, order_id=keccak(text="x3"), isps=2,
                                               expires_at=w.hour + 2 * ISP))[1]
    # a proof that does not hold; another result; no evidence at all
    evidence = parse_signed_order(by_asset[a].payload).award
    assert evidence is not None
    bad = AwardEvidence(evidence.offer, tuple(p.__class__(p.chunk, p.request_id, p.isp_start, p.power_w, p.level_w,
                                                          (b"\x01" * 32, *p.proof)) for p in evidence.proofs))
    assert "no proven award" in answer(_resign(by_asset[a], dispatcher, w, evidence=bad, order_id=keccak(text="x4")))[1]
    assert "is not of market" in answer(_resign(by_asset[a], dispatcher, w, order_id=keccak(text="x5"),
                                                result_id=999))[1]
    bare = json.loads(by_asset[a].payload)
    bare.pop("award")
    assert "carries no award proof" in answer(json.dumps(bare).encode())[1]
    # signed by a key the registry does not name
    stranger = keys.new_account()
    assert "dispatcher" in answer(_resign(by_asset[a], stranger, w, order_id=keccak(text="x6")))[1]
    # the real order, although its id was met above with spoilt or stripped evidence: accepted, once
    assert answer(by_asset[a].payload) == ("accepted", "None")
    assert gateway.handle(by_asset[a].payload).status == "accepted"
    assert len(gateway.device.activations) == 1  # type: ignore[attr-defined]


def test_a_rotated_dispatcher_key_orders_nothing(world: SettlementWorld, deployer: Signer, tmp_path: Path) -> None:
    w = world
    old, orders = _dispatch(w, deployer)
    gateway = _gateway(w, orders[0].order.asset, tmp_path, dispatcher_ttl_s=0)
    assert gateway.handle(orders[0].payload).status == "accepted"
    MarketRegistryClient(w.conn, w.manifest.address("MarketRegistry")).set_dispatcher(
        w.market, keys.new_account().address, sender=deployer)
    ack = gateway.handle(_resign(orders[0], old, w, order_id=keccak(text="after rotation")))
    assert ack.status == "rejected" and "dispatcher" in str(ack.reason)
    with pytest.raises(DispatchError, match="is not the market's dispatcher"):
        dispatch_result(w.result_id, {}, [], isp_seconds=ISP, dispatcher=old,
                        domain=registry_domain(w.conn, w.manifest.address("MarketRegistry")),
                        named_dispatcher=MarketRegistryClient(w.conn, w.manifest.address("MarketRegistry")).dispatcher(w.market))


def test_a_portfolio_award_orders_its_members_only(conn: ChainConnection, manifest: Manifest, deployer: Signer,
                                                   dev_signers: list[Signer], tmp_path: Path) -> None:
    """The aggregator splits a portfolio's award (not the market's dispatcher): the dispatch leaves it out;
    an order carrying it is taken by a member asset (as of gate closure) and by no other asset."""
    w = build_world(conn, manifest, deployer, dev_signers, tmp_path, portfolio=True)
    dispatcher = keys.new_account()
    markets = MarketRegistryClient(w.conn, w.manifest.address("MarketRegistry"))
    markets.set_dispatcher(w.market, dispatcher.address, sender=deployer)
    offers = {d: o for o, d in w.loaded.book.digests.items()}
    awards = award_proofs(w.clearing, w.result_id)
    domain = registry_domain(w.conn, markets.address)
    done = dispatch_result(w.result_id, offers, awards, isp_seconds=ISP, dispatcher=dispatcher, domain=domain,
                           named_dispatcher=dispatcher.address)
    assert done.orders == [] and len(done.undispatched) == 1
    digest = done.undispatched[0]
    proof = next(p for p in awards if p.offer_digest == digest)
    offer = offers[digest]
    evidence = AwardEvidence({k: v if isinstance(v, bytes) else int(v) for k, v in offer.message().items()},
                             (parse_proof(proof),))

    def order_for(asset: int, n: str) -> bytes:
        order = ActivationOrder(keccak(text=n), w.market, asset, w.hour, 1, "UP", 4_000, w.hour + ISP, w.result_id,
                                digest)
        return order.to_json(order.sign(bytes(dispatcher.key), domain), evidence)

    member, _other_member = w.assets
    assert _gateway(w, member, tmp_path, max_power_w=10_000).handle(order_for(member, "m")).status == "accepted"
    stranger = _gateway(w, 424_242, tmp_path, max_power_w=10_000).handle(order_for(424_242, "s"))
    assert stranger.status == "rejected" and "not for asset 424242" in str(stranger.reason)


def parse_proof(p: Any) -> Any:
    from flexledger_edge.activation import AwardProof as OrderAwardProof

    return OrderAwardProof(p.chunk, p.request_id, p.isp_start, p.power_w, p.level_w, tuple(p.proof))
