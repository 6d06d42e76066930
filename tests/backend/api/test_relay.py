"""The relayer, end to end: offers queued through the API are accepted on chain in batches; one the
chain refuses by then is skipped with its reason; a node refusing a batch, and a relayer killed
before, during or after broadcasting, leave every offer accepted or skipped exactly once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from api_world import Api
from sqlalchemy import create_engine, select
from sqlalchemy.orm import sessionmaker

import flexledger.relay.relayer as relayer_module
from flexledger.book.order_book import SignedOffer
from flexledger.chain.errors import TransactionError
from flexledger.chain.transactions import Signer
from flexledger.relay.relayer import Relayer
from flexledger.relay.tables import QueuedOffer
from flexledger.rules.orders import unpack_accepted


class Killed(BaseException):
    """The relayer's process dying: no handler of the relayer catches it."""


@pytest.fixture
def relayer(api: Api) -> Relayer:
    return Relayer(sessionmaker(create_engine(api.database_url), expire_on_commit=False), api.chain.deployment)


def submit(api: Api, count: int, *, first_nonce: int = 1) -> list[str]:
    chain = api.chain
    offers = [chain.signed(chain.offer(nonce=first_nonce + i, start=chain.day + (40 + 4 * i) * 900))
              for i in range(count)]
    response = api.client.post("/v1/offers", json=[chain.wire(s) for s in offers],
                               headers=api.auth(chain.aggregator.account))
    assert response.status_code == 202, response.text
    return [o["digest"] for o in response.json()["offers"]]


def rows(relayer: Relayer) -> dict[str, QueuedOffer]:
    with relayer.sessions() as session:
        return {r.digest: r for r in session.scalars(select(QueuedOffer))}


def accepted_on_chain(api: Api) -> list[str]:
    """Every offer digest the book accepted, once per acceptance."""
    separator = api.chain.deployment.book_separator
    return ["0x" + offer.digest(separator).hex()
            for event in api.chain.deployment.order_book.events("OffersAccepted")
            for _seller, offer in unpack_accepted(bytes(event.args["offers"]))]


def test_queued_offers_are_accepted_on_chain_in_batches(api: Api, relayer: Relayer) -> None:
    digests = submit(api, 5)
    relayer.batch = 3
    assert relayer.step() == 3 and relayer.step() == 2 and relayer.step() == 0
    assert api.chain.deployment.order_book.asset_nonce(api.chain.active) == 5
    states = rows(relayer)
    assert {states[d].status for d in digests} == {"accepted"}
    assert len({states[d].tx_hash for d in digests}) == 2  # two transactions
    assert sorted(accepted_on_chain(api)) == sorted(digests)
    status = api.client.get(f"/v1/offers/{digests[0]}", headers=api.auth(api.chain.owner)).json()
    assert status["status"] == "accepted" and status["txHash"] == states[digests[0]].tx_hash


def test_an_offer_the_chain_refuses_by_then_is_skipped_with_its_reason(api: Api, relayer: Relayer) -> None:
    digests = submit(api, 2)
    api.chain.deployment.signed_by(api.chain.dso).assets.suspend_asset(api.chain.active)
    assert relayer.step() == 2
    states = rows(relayer)
    assert [(states[d].status, states[d].reason) for d in digests] == [("skipped", "OrderBookAssetNotActive")] * 2


def _crash(monkeypatch: pytest.MonkeyPatch, when: str) -> None:
    """Make relay_offers die ``before`` broadcasting, ``unrecorded`` (broadcast, its hash not yet
    written) or ``unreceipted`` (hash written, before the receipt is read)."""
    real = relayer_module.relay_offers

    def dying(book: Any, offers: list[SignedOffer], *, on_sent: Callable[[str, list[SignedOffer]], None],
              **kwargs: Any) -> Any:
        if when == "before":
            raise Killed

        def sent(tx_hash: str, batch: list[SignedOffer]) -> None:
            if when == "unreceipted":
                on_sent(tx_hash, batch)
            raise Killed

        return real(book, offers, on_sent=sent, **kwargs)

    monkeypatch.setattr(relayer_module, "relay_offers", dying)


@pytest.mark.parametrize("when", ["before", "unrecorded", "unreceipted"])
def test_a_relayer_killed_mid_batch_resumes_without_sending_twice(api: Api, relayer: Relayer, when: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    digests = submit(api, 3)
    with monkeypatch.context() as patch:
        _crash(patch, when)
        with pytest.raises(Killed):
            relayer.step()
    expected = {"before": "sending", "unrecorded": "sending", "unreceipted": "sent"}[when]
    assert {r.status for r in rows(relayer).values()} == {expected}
    restarted = Relayer(relayer.sessions, api.chain.deployment)
    restarted.reconcile()
    while restarted.step():
        pass
    states = rows(restarted)
    assert {states[d].status for d in digests} == {"accepted"}
    assert sorted(accepted_on_chain(api)) == sorted(digests)  # each accepted once
    assert api.chain.deployment.order_book.asset_nonce(api.chain.active) == 3


def test_a_batch_the_node_refuses_is_tried_again(api: Api, relayer: Relayer, monkeypatch: pytest.MonkeyPatch) -> None:
    digests = submit(api, 2)
    calls = {"n": 0}
    real = relayer_module.relay_offers

    def refusing(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise TransactionError("the node refused the transaction (nonce too low)")
        return real(*args, **kwargs)

    monkeypatch.setattr(relayer_module, "relay_offers", refusing)
    assert relayer.step() == 2  # refused: back in the queue
    assert {r.status for r in rows(relayer).values()} == {"queued"}
    assert relayer.step() == 2
    assert {rows(relayer)[d].status for d in digests} == {"accepted"}


def test_a_batch_refused_every_time_ends_skipped(api: Api, relayer: Relayer, monkeypatch: pytest.MonkeyPatch) -> None:
    submit(api, 1)

    def refusing(*_args: Any, **_kwargs: Any) -> Any:
        raise TransactionError("the node refused the transaction")

    monkeypatch.setattr(relayer_module, "relay_offers", refusing)
    for _ in range(relayer_module.MAX_ATTEMPTS):
        relayer.step()
    (row,) = rows(relayer).values()
    assert row.status == "skipped" and str(row.reason).startswith("relay failed: the node refused")
    assert relayer.step() == 0


def test_a_dropped_batch_is_sent_again(api: Api, relayer: Relayer, monkeypatch: pytest.MonkeyPatch) -> None:
    digests = submit(api, 2)
    conn = api.chain.conn
    conn.request("evm_setAutomine", [False])
    try:
        with monkeypatch.context() as patch:
            _crash(patch, "unreceipted")  # the hash recorded, the transaction still in the pool
            with pytest.raises(Killed):
                relayer.step()
        (tx_hash,) = {r.tx_hash for r in rows(relayer).values()}
        conn.request("anvil_dropTransaction", [tx_hash])  # the node forgets it
    finally:
        conn.request("evm_setAutomine", [True])
    restarted = Relayer(relayer.sessions, api.chain.deployment)
    restarted.reconcile()
    assert {r.status for r in rows(restarted).values()} == {"queued"}
    assert restarted.step() == 2
    states = rows(restarted)
    assert {states[d].status for d in digests} == {"accepted"}  # (the same hash again: same nonce, same bytes)
    assert sorted(accepted_on_chain(api)) == sorted(digests)


def test_a_stuck_batch_is_sent_again_at_a_higher_fee(api: Api, relayer: Relayer,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    digests = submit(api, 2)
    conn = api.chain.conn
    conn.request("evm_setAutomine", [False])  # nothing is mined: the batch waits in the pool
    try:
        with monkeypatch.context() as patch:
            _crash(patch, "unreceipted")
            with pytest.raises(Killed):
                relayer.step()
        (stuck,) = {r.tx_hash for r in rows(relayer).values()}
        real_replace = Signer.replace

        def replace_then_mine(signer: Signer, tx_hash: str, **kwargs: Any) -> Any:
            replacement = real_replace(signer, tx_hash, **kwargs)
            conn.request("evm_setAutomine", [True])
            conn.mine()
            return replacement

        monkeypatch.setattr(Signer, "replace", replace_then_mine)
        restarted = Relayer(relayer.sessions, api.chain.deployment, pending_wait=0.3, stuck_after=0.5)
        restarted.reconcile()
    finally:
        conn.request("evm_setAutomine", [True])
    states = rows(restarted)
    assert {states[d].status for d in digests} == {"accepted"}
    replacement = states[digests[0]].tx_hash
    assert replacement != stuck
    sent = conn.w3.eth.get_transaction(replacement)
    assert sent["maxPriorityFeePerGas"] > 0 and sent["blockNumber"] is not None
    assert sorted(accepted_on_chain(api)) == sorted(digests)  # once: the stuck one never made it


def test_the_relayer_loop_relays_what_arrives_until_stopped(api: Api, relayer: Relayer) -> None:
    stop = threading.Event()
    loop = threading.Thread(target=relayer.run, args=(stop,), kwargs={"interval": 0.05})
    loop.start()  # as `flexledger api serve` runs it, beside the API
    try:
        digests = submit(api, 3)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and {rows(relayer)[d].status for d in digests} != {"accepted"}:
            time.sleep(0.05)
    finally:
        stop.set()
        loop.join(timeout=30)
    assert not loop.is_alive()
    assert {rows(relayer)[d].status for d in digests} == {"accepted"}


def test_a_batch_that_went_out_despite_an_error_is_found_accepted(api: Api, relayer: Relayer,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    digests = submit(api, 2)
    real = relayer_module.relay_offers

    def lost_answer(book: Any, offers: list[SignedOffer], *, on_sent: Any, **kwargs: Any) -> Any:
        def sent(_tx_hash: str, _batch: list[SignedOffer]) -> None:
            raise TransactionError("the node's answer was lost")  # broadcast, but the relayer never heard

        return real(book, offers, on_sent=sent, **kwargs)

    monkeypatch.setattr(relayer_module, "relay_offers", lost_answer)
    monkeypatch.setattr(relayer_module, "MAX_ATTEMPTS", 1)  # would give up at once, were they not found
    assert relayer.step() == 2
    assert {rows(relayer)[d].status for d in digests} == {"accepted"}
    assert sorted(accepted_on_chain(api)) == sorted(digests)
