"""The order book: requests with escrow, wallet-signed offers relayed in batches, bonds, the book
read back from events; every bad input of the order-book issue as a typed Python exception, and
the Python mirror of eligibility held against the contract."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest
from chain_world import grant_roles
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flexledger.book.offers import SignedOfferError, judge_offers, next_nonce, read_signed
from flexledger.book.order_book import SignedOffer, read_book, relay_offers, sign_permit
from flexledger.chain import revert_errors, structs
from flexledger.chain.bindings import (
    AssetRegistryClient,
    GridZonesClient,
    MarketRegistryClient,
    OrderBookClient,
    RoleRegistryClient,
    SettlementTokenClient,
)
from flexledger.chain.connection import ChainConnection
from flexledger.chain.manifest import Manifest
from flexledger.chain.transactions import Signer
from flexledger.deployment import Deployment
from flexledger.grid.owners import assets_of, register_with_meters, suspend_uncredentialed_assets
from flexledger.identity import keys
from flexledger.identity.eip712 import Eip712Domain, read_domain
from flexledger.identity.roles import Role
from flexledger.rules.market import MarketParams
from flexledger.rules.orders import (
    BaselineMethod,
    BondState,
    Mode,
    Offer,
    RequestParams,
    bond_problem,
    max_exposure,
    unpack_accepted,
)

FOREVER = 2**64 - 1
SELLER_BOND = 1_000_000


@dataclass
class World:
    conn: ChainConnection
    book: OrderBookClient
    assets: AssetRegistryClient
    token: SettlementTokenClient
    domain: Eip712Domain
    params: MarketParams
    market: int
    day: int
    deployer: Signer
    tso: Signer
    dso1: Signer
    dso2: Signer
    aggregator: Signer
    owner: LocalAccount
    owner2: LocalAccount
    active: int  # asset of owner, mapped in feeder 4 (10 kW both ways)
    pending: int  # asset of owner2, never mapped
    suspended: int  # asset of owner, mapped then suspended
    manifest: Manifest

    def offer(self, **changes: Any) -> Offer:
        base = Offer(market=self.market, asset=self.active, portfolio=0, start=self.day + 68 * 900, isps=4, direction=0,
                     power_w=5000, price=15_000, mode=Mode.DIVISIBLE, min_power_w=0,
                     baseline_method=BaselineMethod.COMMITTED, baseline=keccak(text="baseline"),
                     expiry=self.conn.latest_timestamp() + 86_400, nonce=1)
        return replace(base, **changes)

    def signed(self, offer: Offer, key: LocalAccount | None = None) -> SignedOffer:
        return SignedOffer(offer, offer.sign(key or self.owner, self.domain))

    def request(self, **changes: Any) -> RequestParams:
        base = RequestParams(market=self.market, zone=4, start=self.day + 68 * 900, isps=4, direction=0, power_w=20_000,
                             max_price=20_000)
        return replace(base, **changes)


@pytest.fixture
def world(conn: ChainConnection, manifest: Manifest, deployer: Signer, dev_signers: list[Signer]) -> World:
    tso, dso1, dso2, aggregator = dev_signers[1:5]
    owner, owner2 = keys.dev_accounts()[5], keys.dev_accounts()[6]
    meters = [keys.new_account() for _ in range(3)]
    grants = [(tso.address, Role.TSO), (dso1.address, Role.DSO), (dso2.address, Role.DSO),
              (aggregator.address, Role.AGGREGATOR), (owner.address, Role.PROSUMER), (owner2.address, Role.PROSUMER),
              *((m.address, Role.METER) for m in meters)]
    grant_roles(conn, manifest, deployer, grants)
    params = MarketParams()
    markets = MarketRegistryClient(conn, manifest.address("MarketRegistry"), signer=deployer)
    market = markets.create_market(structs.MarketParams.like(params)).event("MarketCreated").args["marketId"]
    grid = GridZonesClient(conn, manifest.address("GridZones"))
    root = grid.add_zone(0, tso.address, 0, sender=tso).event("ZoneAdded").args["zoneId"]
    p1 = grid.add_zone(root, dso1.address, 1_000_000, sender=tso).event("ZoneAdded").args["zoneId"]
    grid.add_zone(root, dso2.address, 1_000_000, sender=tso)
    feeder = grid.add_zone(p1, dso1.address, 100_000, sender=dso1).event("ZoneAdded").args["zoneId"]
    assert feeder == 4, "the tests name the feeder 4"
    assets = AssetRegistryClient(conn, manifest.address("AssetRegistry"))
    owner_signer, owner2_signer = keys.signer(owner, conn), keys.signer(owner2, conn)
    ids = [register_with_meters(assets, [m], [2], sender=s).event("AssetRegistered").args["assetId"]
           for m, s in zip(meters, (owner_signer, owner2_signer, owner_signer), strict=True)]
    assets.map_assets([ids[0], ids[2]], [feeder, feeder], [10_000, 10_000], [10_000, 10_000], [market, market],
                      sender=dso1)
    assets.suspend_asset(ids[2], sender=dso1)
    token = SettlementTokenClient(conn, manifest.address("SettlementToken"))
    book = OrderBookClient(conn, manifest.address("OrderBook"), signer=aggregator)  # relays by default
    for who in (dso1, tso, aggregator):
        token.mint(who.address, 10_000_000, sender=deployer)
    token.approve(book.address, 2**256 - 1, sender=dso1)
    for seller in (owner_signer, owner2_signer):  # a seller without free bond does not sell
        token.mint(seller.address, SELLER_BOND, sender=deployer)
        token.approve(book.address, SELLER_BOND, sender=seller)
        book.post_bond(seller.address, SELLER_BOND, sender=seller)
    day = params.day_start(conn.latest_timestamp()) + 2 * 86_400
    return World(conn, book, assets, token, read_domain(conn, book.address), params, market, day, deployer, tso,
                 dso1, dso2, aggregator, owner, owner2, ids[0], ids[1], ids[2], manifest)


def test_an_offer_signed_by_ethers_from_the_printed_typed_data_is_accepted(
    world: World, ethers: Callable[[dict[str, Any], str, str], dict[str, str]]
) -> None:
    offer = world.offer()
    payload = offer.typed(world.domain).to_json()
    assert payload["domain"]["verifyingContract"] == world.book.address
    ours = offer.sign(world.owner, world.domain)
    wallet = ethers(payload, "0x" + world.owner.key.hex(), "0x" + ours.hex())
    assert wallet["hash"] == "0x" + bytes(world.book.offer_digest(structs.Offer.like(offer))).hex()
    assert wallet["recovered"] == world.owner.address
    report = relay_offers(world.book, [SignedOffer(offer, bytes.fromhex(wallet["signature"][2:]))])
    assert report.accepted == 1 and not report.skipped
    assert world.book.asset_nonce(world.active) == 1
    book = read_book(world.book, world.market, world.day)
    assert book.offers == [offer]
    accepted = world.book.events("OffersAccepted")[-1]
    # the event's packing, both sides: the seller, then the offer as relayed
    assert bytes(accepted.args["offers"]) == bytes.fromhex(world.owner.address[2:]) + offer.pack()
    assert unpack_accepted(bytes(accepted.args["offers"])) == [(world.owner.address, offer)]


def verdicts(world: World, batch: list[SignedOffer], relayer: Signer) -> list[str | None]:
    """What the Python mirror says of each offer, from the chain's state before the batch (the
    relay's intake check, flexledger.book.offers.judge_offers, held here to the contract)."""
    deployment = Deployment(world.conn, world.manifest)
    return [v.problem for v in judge_offers(deployment, batch, relayer=relayer.address,
                                            now=world.conn.latest_timestamp() + 1)]


def test_each_bad_offer_is_skipped_with_its_reason_and_the_mirror_agrees(world: World) -> None:
    now = world.conn.latest_timestamp()
    stranger = keys.new_account()
    good = world.offer(nonce=5)
    bad = {
        "OrderBookInvalidSignature": SignedOffer(world.offer(nonce=6), b"\x01" * 65),
        "OrderBookNotSeller": world.signed(world.offer(nonce=6), stranger),
        "OrderBookOfferExpired": world.signed(world.offer(nonce=6, expiry=now - 1)),
        "OrderBookAfterGateClosure": world.signed(world.offer(nonce=6, start=(now // 900 + 2) * 900)),
        "OrderBookWindowInPast": world.signed(world.offer(nonce=6, start=(now // 900 - 1) * 900)),
        "OrderBookWindowNotAligned": world.signed(world.offer(nonce=6, start=world.day + 100)),
        "OrderBookInvalidWindow": world.signed(world.offer(nonce=6, start=world.day + 95 * 900, isps=2)),
        "OrderBookAssetNotActive": world.signed(world.offer(nonce=6, asset=world.pending), world.owner2),
        "OrderBookInvalidPower": world.signed(world.offer(nonce=6, power_w=10_001)),
        "OrderBookInvalidMode": world.signed(world.offer(nonce=6, mode=Mode.ALL_OR_NOTHING, min_power_w=10)),
        "OrderBookInvalidBaseline": world.signed(world.offer(nonce=6, baseline=bytes(32))),
        "OrderBookZeroPrice": world.signed(world.offer(nonce=6, price=0)),
        "OrderBookUnknownMarket": world.signed(world.offer(nonce=6, market=99)),
        "OrderBookInvalidSubject": world.signed(world.offer(nonce=6, portfolio=1)),
        "OrderBookStaleNonce": world.signed(world.offer(nonce=4)),  # older than the good one before it
        "OrderBookTooFarAhead": world.signed(world.offer(nonce=6, start=world.day + 30 * 86_400 + 40 * 900)),
    }
    suspended = world.signed(world.offer(nonce=1, asset=world.suspended))
    zero_power = world.signed(world.offer(nonce=6, power_w=0))
    batch = [world.signed(good), *bad.values(), suspended, zero_power, world.signed(good)]  # the last: replayed
    expected = [None, *bad, "OrderBookAssetNotActive", "OrderBookInvalidPower", "OrderBookStaleNonce"]
    assert verdicts(world, batch, world.aggregator) == expected
    report = relay_offers(world.book, batch, batch_size=len(batch), in_nonce_order=False)
    assert [o.offer for o in report.outcomes] == [s.offer for s in batch]
    assert [None if o.accepted else type(o.reason).__name__ for o in report.outcomes] == expected
    suspended_reason = report.outcomes[-3].reason
    assert isinstance(suspended_reason, revert_errors.OrderBookAssetNotActive) and suspended_reason.status == 3
    assert report.transactions == 1 and report.accepted == 1


def test_a_strict_batch_reverts_with_the_bad_offers_reason(world: World) -> None:
    batch = [world.signed(world.offer(nonce=1)), world.signed(world.offer(nonce=2, price=0))]
    with pytest.raises(revert_errors.OrderBookZeroPrice):
        relay_offers(world.book, batch, strict=True)
    assert world.book.asset_nonce(world.active) == 0  # nothing of the batch stayed


def test_owners_relay_their_own_offers_and_strangers_cannot(world: World) -> None:
    owner = keys.signer(world.owner, world.conn)
    assert relay_offers(world.book.with_signer(owner), [world.signed(world.offer())]).accepted == 1  # type: ignore[attr-defined]
    other = relay_offers(world.book.with_signer(world.dso2), [world.signed(world.offer(nonce=2))])  # type: ignore[attr-defined]
    assert isinstance(other.skipped[0].reason, revert_errors.OrderBookNotRelayer)


def test_a_newer_offer_replaces_the_older_one_in_the_book(world: World) -> None:
    older, newer = world.offer(nonce=1, price=20_000), world.offer(nonce=2, price=18_000)
    other_window = world.offer(nonce=3, start=world.day + 80 * 900)
    report = relay_offers(world.book.with_signer(world.aggregator),  # type: ignore[attr-defined]
                          [world.signed(o) for o in (older, newer, other_window)])
    assert report.accepted == 3
    book = read_book(world.book, world.market, world.day)
    assert book.accepted == [older, newer, other_window]
    assert sorted(book.offers, key=lambda o: o.nonce) == [newer, other_window]


def test_a_batch_over_two_days_logs_a_run_per_day_and_each_book_adds_up(world: World) -> None:
    # one asset's nonces rising with its days: the relay groups the offers by day (two logs)
    day1 = [world.offer(nonce=n, start=world.day + (60 + 4 * n) * 900) for n in (1, 2)]
    day2 = [world.offer(nonce=n, start=world.day + 86_400 + (4 * n) * 900) for n in (3, 4)]
    report = relay_offers(world.book, [world.signed(o) for o in (day2[1], day1[0], day2[0], day1[1])])
    assert report.accepted == 4
    receipt = world.conn.w3.eth.get_transaction_receipt(report.outcomes[0].tx_hash)  # type: ignore[arg-type]
    runs = [e for e in world.book.events("OffersAccepted") if e.tx_hash == report.outcomes[0].tx_hash]
    assert len(runs) == 2 and len(receipt["logs"]) == 3  # two runs, one batch root
    for day, offers in ((world.day, day1), (world.day + 86_400, day2)):
        book = read_book(world.book, world.market, day)  # checked against bookDigest
        assert book.accepted == offers
        assert all(digest in book.proofs for digest in book.digests.values())
    # nonces falling with the days cannot be grouped: sent by nonce, the days interleave (four logs)
    late = world.offer(nonce=5, start=world.day + 86_400 + 40 * 900)
    early = world.offer(nonce=6, start=world.day + 90 * 900)
    mixed = [world.offer(nonce=7, start=world.day + 86_400 + 50 * 900), world.offer(nonce=8, start=world.day + 92 * 900)]
    report = relay_offers(world.book, [world.signed(o) for o in (mixed[1], early, mixed[0], late)])
    assert report.accepted == 4
    assert len([e for e in world.book.events("OffersAccepted") if e.tx_hash == report.outcomes[0].tx_hash]) == 4
    assert read_book(world.book, world.market, world.day).accepted == [*day1, early, mixed[1]]
    assert read_book(world.book, world.market, world.day + 86_400).accepted == [*day2, late, mixed[0]]


def test_offers_that_cannot_be_packed_are_refused_before_sending(world: World) -> None:
    signed = world.signed(world.offer())
    with pytest.raises(ValueError, match="65 bytes"):
        relay_offers(world.book, [SignedOffer(signed.offer, signed.signature[:64])])
    with pytest.raises(ValueError, match="does not fit"):
        relay_offers(world.book, [SignedOffer(world.offer(power_w=2**32), signed.signature)])
    assert world.book.asset_nonce(world.active) == 0


def test_requests_escrow_and_cancel(world: World) -> None:
    book, token = world.book, world.token
    before = token.balance_of(world.dso1.address)
    request = world.request()
    escrow = max_exposure(request.power_w, request.isps, world.params.isp_seconds, request.max_price)
    assert escrow == 400  # 20 kW for an hour at 200.00 per MWh: 4.00
    tx = book.post_request(structs.RequestParams.like(request), sender=world.dso1)
    request_id = tx.event("RequestPosted").args["requestId"]
    assert tx.event("RequestPosted").args["escrow"] == escrow
    assert token.balance_of(world.dso1.address) == before - escrow and token.balance_of(book.address) == escrow + 2 * SELLER_BOND
    odd = world.request(power_w=1, isps=1, max_price=1)  # 1 W for 15 minutes at 0.01 per MWh: rounded up to 1
    assert book.post_request(structs.RequestParams.like(odd), sender=world.dso1).event("RequestPosted").args["escrow"] == 1
    with pytest.raises(revert_errors.OrderBookNotBuyer):
        book.cancel_request(request_id, sender=world.dso2)
    book.cancel_request(request_id, sender=world.dso1)
    assert token.balance_of(world.dso1.address) == before - 1
    with pytest.raises(revert_errors.OrderBookRequestNotOpen):
        book.cancel_request(request_id, sender=world.dso1)
    with pytest.raises(revert_errors.OrderBookUnknownRequest):
        book.cancel_request(999, sender=world.dso1)
    late = book.post_request(structs.RequestParams.like(world.request(start=world.day + 4 * 900)), sender=world.dso1)
    world.conn.set_next_block_timestamp(world.day + 4 * 900 - 1800)
    with pytest.raises(revert_errors.OrderBookAfterGateClosure):
        book.cancel_request(late.event("RequestPosted").args["requestId"], sender=world.dso1, gas=300_000)
    book_state = read_book(world.book, world.market, world.day)
    assert set(book_state.requests) == {2, 3} and book_state.cancelled == {1}


def test_bad_requests(world: World) -> None:
    book = world.book
    with pytest.raises(revert_errors.ERC20InsufficientAllowance):
        book.post_request(structs.RequestParams.like(world.request()), sender=world.tso)  # no approval
    world.token.approve(book.address, 2**256 - 1, sender=world.dso2)
    with pytest.raises(revert_errors.ERC20InsufficientBalance):
        book.post_request(structs.RequestParams.like(world.request(zone=3)), sender=world.dso2)  # approved, but no money
    with pytest.raises(revert_errors.OrderBookZoneNotBuyable):
        book.post_request(structs.RequestParams.like(world.request()), sender=world.dso2)  # DSO1's feeder
    with pytest.raises(revert_errors.OrderBookNotSystemOperator):
        book.post_request(structs.RequestParams.like(world.request()), sender=world.aggregator)
    with pytest.raises(revert_errors.OrderBookZeroPrice):
        book.post_request(structs.RequestParams.like(world.request(max_price=0)), sender=world.dso1)
    with pytest.raises(revert_errors.OrderBookEscrowOverflow):
        book.post_request(structs.RequestParams.like(world.request(max_price=2**256 - 1)), sender=world.dso1)
    with pytest.raises(revert_errors.OrderBookEscrowOverflow):
        book.post_request(structs.RequestParams.like(world.request(max_price=2**128)), sender=world.dso1)
    with pytest.raises(revert_errors.OrderBookWindowNotAligned):
        book.post_request(structs.RequestParams.like(world.request(start=world.day + 1)), sender=world.dso1)
    with pytest.raises(revert_errors.OrderBookWindowInPast):
        book.post_request(structs.RequestParams.like(world.request(start=world.day - 4 * 86_400)), sender=world.dso1)
    with pytest.raises(revert_errors.OrderBookInvalidWindow):
        book.post_request(structs.RequestParams.like(world.request(isps=0)), sender=world.dso1)


def test_a_request_paid_with_a_permit(world: World) -> None:
    tso, token, book = world.tso, world.token, world.book
    request = world.request(market=world.market, zone=1, direction=1)  # the TSO buys in its own area
    escrow = max_exposure(request.power_w, request.isps, world.params.isp_seconds, request.max_price)
    deadline = world.conn.latest_timestamp() + 3600
    v, r, s = sign_permit(token, keys.dev_accounts()[1], book.address, escrow, deadline)
    tx = book.post_request_with_permit(structs.RequestParams.like(request), deadline, v, r, s, sender=tso)
    assert tx.event("RequestPosted").args["escrow"] == escrow == token.balance_of(book.address) - 2 * SELLER_BOND


def test_bonds_leave_only_after_a_notice(world: World) -> None:
    book, token, conn = world.book, world.token, world.conn
    aggregator = world.aggregator.address
    token.approve(book.address, 1000, sender=world.aggregator)
    book.post_bond(aggregator, 1000, sender=world.aggregator)
    assert book.bond_of(aggregator) == 1000
    with pytest.raises(revert_errors.OrderBookBondNotice):
        book.withdraw_bond(400, sender=world.aggregator)  # no notice given
    book.announce_bond_withdrawal(400, sender=world.aggregator)
    bond = BondState.from_word(book.bond_word(aggregator))
    assert bond.withdrawing == 400 and bond.notice_ends == conn.latest_timestamp() + book.bond_notice_seconds()
    assert bond_problem(bond) == "OrderBookSellerNotBonded"  # it sells nothing meanwhile
    with pytest.raises(revert_errors.OrderBookBondNotice):
        book.withdraw_bond(400, sender=world.aggregator)
    with pytest.raises(revert_errors.OrderBookNotSettlement):
        book.set_bond_lock(aggregator, 600, sender=world.dso2)
    conn.set_next_block_timestamp(bond.notice_ends)
    conn.mine()
    with pytest.raises(revert_errors.OrderBookBondLocked) as err:
        book.withdraw_bond(401, sender=world.aggregator)  # only what was announced
    assert err.value.available == 400
    book.withdraw_bond(400, sender=world.aggregator)
    assert book.bond_of(aggregator) == 600 and BondState.from_word(book.bond_word(aggregator)).notice_ends == 0


offer_changes = st.fixed_dictionaries({}, optional={
    "start": st.sampled_from([0, 100, -86_400 * 3, 86_400 - 900, 86_400, 95 * 900]),
    "isps": st.sampled_from([0, 1, 4, 96]),
    "direction": st.integers(0, 2),
    "power_w": st.sampled_from([0, 1, 5000, 10_000, 10_001]),
    "price": st.sampled_from([0, 1, 15_000, 2**96 - 1]),
    "mode": st.integers(0, 3),
    "min_power_w": st.sampled_from([0, 1, 5000, 10_000]),
    "baseline_method": st.integers(0, 2),
    "baseline": st.sampled_from([bytes(32), b"\x07" * 32]),
    "expiry": st.sampled_from([0, FOREVER]),
    "nonce": st.integers(0, 6),
    "asset": st.integers(0, 4),
    "portfolio": st.integers(0, 1),
    "market": st.integers(0, 3),
})


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_the_mirror_and_the_contract_agree_on_random_offers(world: World, data: st.DataObject) -> None:
    snapshot = world.conn.snapshot()
    try:
        batch = []
        for _ in range(data.draw(st.integers(1, 4), label="offers")):
            changes = data.draw(offer_changes, label="changes")
            if "start" in changes:
                changes["start"] += world.day
            offer = world.offer(**changes)
            key = data.draw(st.sampled_from([world.owner, world.owner2]), label="key")
            batch.append(world.signed(offer, key))
        expected = verdicts(world, batch, world.aggregator)
        report = relay_offers(world.book, batch, batch_size=len(batch), in_nonce_order=False)
        assert [None if o.accepted else type(o.reason).__name__ for o in report.outcomes] == expected
    finally:
        world.conn.revert(snapshot)


def test_an_owner_who_loses_its_credential_stops_offering(world: World, manifest: Manifest) -> None:
    roles = RoleRegistryClient(world.conn, manifest.address("RoleRegistry"), signer=world.deployer)
    roles.revoke_credential(world.owner.address, Role.PROSUMER.id)
    assert assets_of(world.assets, world.owner.address) == [world.active, world.suspended]
    assert suspend_uncredentialed_assets(Deployment(world.conn, manifest, world.aggregator), world.owner.address) == 1  # anyone may
    report = relay_offers(world.book, [world.signed(world.offer())])
    reason = report.skipped[0].reason
    assert isinstance(reason, revert_errors.OrderBookAssetNotActive) and reason.status == 3
    with pytest.raises(revert_errors.AssetOwnerWithoutRole):
        world.assets.reinstate_asset(world.active, sender=world.dso1)
    # a credentialed owner's assets are left alone
    assert world.assets.suspend_uncredentialed([world.pending], sender=world.aggregator).events == []


def test_a_signed_offer_is_checked_before_it_is_relayed(world: World, manifest: Manifest) -> None:
    """What the CLI's `offer submit` and the API's relay read: the wallet's {typedData, signature}."""
    offer = world.offer()
    item = {"typedData": offer.typed(world.domain).to_json(), "signature": "0x" + offer.sign(world.owner, world.domain).hex()}
    assert read_signed(item, world.domain, "offer 0") == world.signed(offer)
    elsewhere = replace(world.domain, verifying_contract=world.assets.address)
    with pytest.raises(SignedOfferError, match="not this order book"):
        read_signed(item, elsewhere, "offer 0")
    with pytest.raises(SignedOfferError, match="65 wanted"):
        read_signed({**item, "signature": item["signature"][:-2]}, world.domain, "offer 0")
    with pytest.raises(SignedOfferError, match="is not a signed offer"):
        read_signed({"typedData": item["typedData"]}, world.domain, "offer 0")
    assert next_nonce(Deployment(world.conn, manifest), world.active, 0) == world.book.asset_nonce(world.active) + 1
