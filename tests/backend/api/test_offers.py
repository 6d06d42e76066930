"""The offer intake: typed data to sign, signed offers checked at once (each fault a 4xx with the
OrderBook's reason, nothing queued), queued by digest, and their status by party."""

from __future__ import annotations

import time
from typing import Any

from api_world import Api, assert_problem
from eth_utils import keccak
from sqlalchemy import create_engine, func, select

from flexledger.identity import keys
from flexledger.relay.tables import QueuedOffer
from flexledger.rules.orders import Offer


def queued(api: Api) -> int:
    with create_engine(api.database_url).connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(QueuedOffer)) or 0)


def test_typed_data_is_the_offer_the_cli_prints(api: Api) -> None:
    chain = api.chain
    start = chain.day + 68 * 900
    response = api.client.get("/v1/offers/typed-data", params={
        "market": chain.market, "asset": chain.active, "start": str(start), "power": 5000, "price": 15_000, "isps": 4,
        "baselineHash": "0x" + keccak(text="baseline").hex()})
    assert response.status_code == 200, response.text
    typed = response.json()
    offer = Offer.from_message(typed["message"])
    assert offer == chain.offer(expiry=offer.expiry)  # the next nonce (1), the minimum by mode, ...
    assert typed["domain"]["verifyingContract"] == chain.deployment.order_book.address
    # signed in a wallet from exactly this JSON, it is accepted at intake
    signed = chain.signed(offer)
    body = {"typedData": typed, "signature": "0x" + signed.signature.hex()}
    assert api.client.post("/v1/offers", json=body, headers=api.auth(chain.aggregator.account)).status_code == 202


def test_terms_no_offer_has_are_422(api: Api) -> None:
    base = {"start": "2030-01-01T00:00:00Z", "power": 1, "price": 1}
    for extra in ({"asset": 1, "portfolio": 1, "baselineMethod": "ROLLING_AVERAGE"}, {"asset": 1},
                  {"asset": 1, "baselineHash": "0x12"}, {"asset": 2**64}, {"asset": 1, "start": "yesterday"},
                  {"asset": 1, "direction": "SIDEWAYS"}):
        assert_problem(api.client.get("/v1/offers/typed-data", params={**base, **extra}), 422)


def test_good_offers_are_queued_once_by_digest(api: Api) -> None:
    chain = api.chain
    headers = api.auth(chain.aggregator.account)
    offers = [chain.signed(chain.offer(nonce=1)), chain.signed(chain.offer(nonce=1, asset=chain.second)),
              chain.signed(chain.offer(nonce=1, asset=chain.theirs), chain.owner2)]
    response = api.client.post("/v1/offers", json=[chain.wire(s) for s in offers], headers=headers)
    assert response.status_code == 202, response.text
    statuses = response.json()["offers"]
    separator = chain.deployment.book_separator
    assert [s["digest"] for s in statuses] == ["0x" + s.offer.digest(separator).hex() for s in offers]
    assert {s["status"] for s in statuses} == {"queued"}
    assert [s["signer"] for s in statuses] == [chain.owner.address, chain.owner.address, chain.owner2.address]
    again = api.client.post("/v1/offers", json=chain.wire(offers[0]), headers=headers)
    body = assert_problem(again, 409)
    assert body["offers"][0]["code"] == "duplicate"
    # the status: for the submitter and the signer, nobody else
    digest = statuses[0]["digest"]
    assert api.client.get(f"/v1/offers/{digest}", headers=headers).json()["status"] == "queued"
    assert api.client.get(f"/v1/offers/{digest}", headers=api.auth(chain.owner)).status_code == 200
    assert_problem(api.client.get(f"/v1/offers/{digest}", headers=api.auth(chain.owner2)), 404)
    assert_problem(api.client.get(f"/v1/offers/{digest}"), 401)
    assert queued(api) == 3


def test_each_bad_offer_is_refused_with_the_contracts_reason_and_nothing_is_queued(api: Api) -> None:
    chain = api.chain
    headers = api.auth(chain.aggregator.account)
    now = chain.conn.latest_timestamp()
    good = chain.wire(chain.signed(chain.offer()))
    other_domain = chain.wire(chain.signed(chain.offer(nonce=2)))
    other_domain["typedData"]["domain"]["chainId"] = 1
    bad: dict[str, dict[str, Any]] = {
        "OrderBookInvalidSignature": {**chain.wire(chain.signed(chain.offer(nonce=2))), "signature": "0x" + "01" * 65},
        "OrderBookNotSeller": chain.wire(chain.signed(chain.offer(nonce=2), chain.owner2)),  # not the asset's owner
        "OrderBookAfterGateClosure": chain.wire(chain.signed(chain.offer(nonce=2, start=(now // 900 + 2) * 900))),
        "OrderBookInvalidPower": chain.wire(chain.signed(chain.offer(nonce=2, power_w=10_001))),
        "OrderBookOfferExpired": chain.wire(chain.signed(chain.offer(nonce=2, expiry=now - 1))),
        "OrderBookWindowNotAligned": chain.wire(chain.signed(chain.offer(nonce=2, start=chain.day + 100))),
    }
    for code, item in bad.items():
        body = assert_problem(api.client.post("/v1/offers", json=[good, item], headers=headers), 422)
        assert body["offers"] == [{"index": 1, "code": code, "reason": code}], code
    for item in (other_domain, {**chain.wire(chain.signed(chain.offer(nonce=2))), "signature": "0x1234"}, {"typedData": {"primaryType": "Offer"},
                                                                 "signature": "0x"}):
        body = assert_problem(api.client.post("/v1/offers", json=[good, item], headers=headers), 422)
        assert body["offers"][0]["code"] == "not_an_offer"
    assert_problem(api.client.post("/v1/offers", json=[good, good], headers=headers), 409)  # a duplicate in one list
    assert_problem(api.client.post("/v1/offers", json=[], headers=headers), 422)
    assert queued(api) == 0
    # and the good one alone goes in
    assert api.client.post("/v1/offers", json=good, headers=headers).status_code == 202


def test_a_nonce_waiting_in_the_queue_counts(api: Api) -> None:
    chain = api.chain
    headers = api.auth(chain.aggregator.account)
    assert api.client.post("/v1/offers", json=chain.wire(chain.signed(chain.offer(nonce=3))),
                           headers=headers).status_code == 202
    stale = chain.wire(chain.signed(chain.offer(nonce=2, price=14_000)))
    body = assert_problem(api.client.post("/v1/offers", json=stale, headers=headers), 422)
    assert body["offers"][0]["code"] == "OrderBookStaleNonce"


def test_a_prosumer_submits_only_its_own_offers(api: Api) -> None:
    chain = api.chain
    own = chain.wire(chain.signed(chain.offer()))
    others = chain.wire(chain.signed(chain.offer(asset=chain.theirs), chain.owner2))
    assert_problem(api.client.post("/v1/offers", json=others, headers=api.auth(chain.owner)), 403)
    assert api.client.post("/v1/offers", json=own, headers=api.auth(chain.owner)).status_code == 202
    stranger = keys.new_account()  # no role at all
    assert_problem(api.client.post("/v1/offers", json=own, headers=api.auth(stranger)), 403)


def test_an_offer_list_over_the_limit_is_refused(api: Api) -> None:
    chain = api.chain
    item = chain.wire(chain.signed(chain.offer()))
    started = time.monotonic()
    response = api.client.post("/v1/offers", json=[item] * 1001, headers=api.auth(chain.aggregator.account))
    assert response.status_code in (413, 422) and time.monotonic() - started < 30
