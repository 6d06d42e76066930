"""The demo's standard baselines on the attack day: one offer names the oracle's standard
(ROLLING_AVERAGE) baseline instead of committing its own, and the oracle's baselines are
challenged twice, on the demo's chain, through the code the CLI runs.

- The oracle stakes in the market (the market now requires it). It holds three similar days of
  history for two meters and anchors their baselines of the ISP before the gate closure: the
  second meter's honestly; the seller's with a fourth day it has no reading of (invented, high),
  so the seller looks as if it delivered in full.
- The auditor, recomputing what the oracle serves, finds that day without an anchored reading and
  challenges it (`challenge-baseline`, a bond). A watcher challenges a day of the honest baseline
  too: the oracle's service loop answers it with the day's anchored reading (`oracle run`'s
  ``answer_challenges``), the challenge fails and its bond pays the oracle.
- The seller's offer is settled on the anchored (inflated) baseline (`settle`); nobody answers the
  invented day, so after the answer window anyone upholds it (`uphold-baseline`): the rule without
  that day is in force, the oracle is slashed once, to the auditor, whose bond comes back; the
  offer is re-settled on the correction within its dispute window (`resettle-baseline`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from rich.console import Console
from sqlalchemy import Engine

from flexledger.baselines.challenges import answer_challenges
from flexledger.baselines.disputes import (
    BaselineChallenged,
    MarketOnChain,
    challenge_standard_baseline,
    resettle_on_correction,
    revealed_inputs,
    uphold_standard_challenge,
)
from flexledger.book.order_book import SignedOffer, relay_offers
from flexledger.chain import structs
from flexledger.chain.bindings import (
    MeterOracleClient,
)
from flexledger.chain.connection import ChainConnection
from flexledger.chain.transactions import Signer
from flexledger.demo.money import eur
from flexledger.deployment import Deployment
from flexledger.identity.eip712 import read_domain
from flexledger.oracle.anchoring import anchor_isp, proof_for
from flexledger.oracle.baselines import anchor_baselines, baseline_proof_for
from flexledger.oracle.ingest import ingest
from flexledger.oracle.store import session
from flexledger.oracle.verify import Verifier
from flexledger.rules.baselines import MIN_DAYS, BaselineInputs, rolling_inputs
from flexledger.rules.lights import Direction
from flexledger.rules.market import DAY, MarketParams
from flexledger.rules.orders import BaselineMethod, Mode, Offer, RequestParams, max_exposure
from flexledger.settlement.day import awarded_offers, day_context, settle_day
from flexledger.settlement.offer import StandardBaselines
from flexledger.settlement.records import record_money
from flexledger.times import iso
from flexledger_edge.reading import MeterSigner, OracleDomain

STAKE = 100_000  # what the market requires of its oracles: 1,000.00 EUR, slashed once per wrong baseline
QUARTER = 48  # the offer's ISP: 12:00, clear of the other attacks' afternoon
PRICE = 29_000


@dataclass(frozen=True)
class StandardSeller:
    """The prosumer whose offer names the standard baseline: its asset, wallet, meter, power and
    zone, and the aggregator that relays for it."""

    asset: int
    owner: LocalAccount
    meter: LocalAccount
    power_w: int
    zone: int
    relayer: Signer


@dataclass
class StandardStage:
    """The standard-baseline step between its phases: what was set up before the gate closure."""

    chain: Deployment
    params: MarketParams
    market: int
    day: int
    isp: int
    engine: Engine
    verifier: Verifier
    oracle: Signer
    seller: tuple[int, LocalAccount]  # the asset whose baseline the oracle inflates, its meter
    offer: Offer
    invented: BaselineChallenged
    inflated_wh: int
    true_wh: int
    out: dict[str, Any]

    @property
    def conn(self) -> ChainConnection:
        return self.chain.conn


def _keep(conn: ChainConnection, engine: Engine, verifier: Verifier, market: int, oracle: str,
          meter: LocalAccount, isp: int, import_wh: int, received: int) -> None:
    """The meter signs its reading of ``isp`` and the oracle's store keeps it, as received at ``received``."""
    signed = MeterSigner(meter.key, OracleDomain(conn.chain_id, oracle)).sign_new(
        isp_start=isp, sequence=1, import_wh=import_wh, export_wh=0)
    with session(engine) as s:
        verdict = ingest(s, verifier, market, signed.to_json(), received)
    if verdict != "stored":
        raise RuntimeError(f"the oracle did not keep a reading of {meter.address} for {iso(isp)}: {verdict}")


def stage_standard(chain: Deployment, authority: Signer, accounts: dict[str, LocalAccount],
                   signer_of: Callable[[LocalAccount], Signer], oracle: MeterOracleClient, market: int, day: int,
                   engine: Engine, verifier: Verifier, seller: StandardSeller, honest: tuple[int, LocalAccount],
                   buyer: Signer, console: Console) -> StandardStage:
    """Before the attack day's gate closure: the oracle's stake and history, the seller's offer
    naming the standard baseline and the DSO's request for it, the baselines anchored (one
    inflated by an invented day), both challenges filed and the honest one answered. ``honest``:
    the asset and meter whose baseline the oracle anchors honestly."""
    asset, owner, meter, power = seller.asset, seller.owner, seller.meter, seller.power_w
    conn = chain.conn
    params = chain.params(market)
    isp = day + QUARTER * params.isp_seconds
    oracle_signer = oracle.signer
    assert oracle_signer is not None
    oracle_account = oracle_signer.account
    token = chain.token

    # the market requires a stake of its oracles from now on: the oracle posts it
    oracle.set_required_stake(market, STAKE, sender=authority)
    token.mint(oracle_account.address, STAKE, sender=authority)
    token.approve(oracle.address, STAKE, sender=oracle_signer)
    oracle.stake(market, STAKE)

    # the two meters' history at that time of day on the three most recent similar days, kept as
    # it arrived and anchored; the seller's meter used about its award's energy then
    energy = power * params.isp_seconds // 3600
    # the oracle anchors the day's baselines 10 minutes before its gate closure: only similar days
    # whose ISP has ended by then can have an anchored reading (at 12:00, yesterday's has not when
    # the gate closes the evening before; which days these are depends on the demo's date and hour)
    anchored_at = params.gate_closure(day) - 600
    similar = [k for k in rolling_inputs({isp - k * DAY: 0 for k in range(1, 22)}, isp).days()
               if isp - k * DAY + params.isp_seconds + 30 < anchored_at]
    history = {meter.address: [energy + 40, energy - 40, energy], honest[1].address: [620, 600, 640]}
    for n, k in enumerate(similar[:MIN_DAYS]):
        t = isp - k * DAY
        advance_to(conn, t + params.isp_seconds + 30)  # the ISP has ended: its readings are in, and anchored
        for m in (meter, honest[1]):
            _keep(conn, engine, verifier, market, oracle.address, m, t, history[m.address][n], t + params.isp_seconds + 30)
        anchor_isp(engine, oracle, market, t)

    # the seller offers its asset for the ISP on the standard baseline; its DSO asks for it
    book = chain.order_book
    request = RequestParams(market, seller.zone, isp, 1, int(Direction.UP), power, 30_000)
    escrow = max_exposure(request.power_w, request.isps, params.isp_seconds, request.max_price)
    token.mint(buyer.address, escrow, sender=authority)
    token.approve(book.address, escrow, sender=buyer)
    book.post_request(structs.RequestParams.like(request), sender=buyer)
    offer = Offer(market, asset, 0, isp, 1, int(Direction.UP), power, PRICE, int(Mode.DIVISIBLE), 0,
                  int(BaselineMethod.ROLLING_AVERAGE), bytes(32), day + DAY, int(book.asset_nonce(asset)) + 1)
    signed = SignedOffer(offer, offer.sign(owner, read_domain(conn, book.address)))
    relayed = relay_offers(book.with_signer(seller.relayer), [signed])  # type: ignore[arg-type]
    assert relayed.accepted == 1, [o.reason for o in relayed.outcomes]

    # in the day before the gate closure the oracle anchors the ISP's baselines: the honest meter's
    # from its history; the seller's with a fourth similar day it holds no reading of, invented high
    advance_to(conn, anchored_at)
    honest_inputs = BaselineInputs.of([(k, v) for k, v in zip(similar, history[honest[1].address], strict=False)])
    true_days = list(zip(similar, history[meter.address], strict=False))
    inflated = BaselineInputs.of([*true_days, (similar[MIN_DAYS], 5 * energy)])
    anchor_baselines(engine, oracle, market, isp, inputs={meter.address: inflated, honest[1].address: honest_inputs})
    view = MarketOnChain(chain, market)
    answer, _inputs = revealed_inputs(view, engine, meter.address, isp)
    true_wh = sum(history[meter.address]) // MIN_DAYS
    console.print(f"the oracle staked {eur(STAKE)} EUR and anchored the standard baselines of "
                  f"{iso(isp)[11:16]}: asset {asset}'s is {answer['baselineWh']} Wh, averaging a day "
                  f"({iso(isp - similar[MIN_DAYS] * DAY)[:10]}) it holds no reading of; its history says "
                  f"{true_wh} Wh. Asset {asset}'s owner offers {power / 1000:,.1f} kW on the standard baseline")

    # the auditor, recomputing the baselines from what the oracle serves, challenges the invented
    # day; a watcher challenges a day of the honest baseline, and the oracle's service loop answers
    out: dict[str, Any] = {"isp": iso(isp)[11:16], "asset": asset, "stake": STAKE}
    auditor, watcher = signer_of(accounts["auditor"]), signer_of(accounts["aggregator 2"])
    disputes = chain.signed_by(oracle_signer).baseline_disputes
    bond = int(disputes.challenge_bond())
    for who in (auditor, watcher):
        conn.request("anvil_setBalance", [who.address, hex(10**20)])
        token.mint(who.address, bond, sender=authority)
    invented = challenge_standard_baseline(view, auditor, engine, asset, isp)
    console.print(f"the auditor challenged the day {invented.days_back} days before (its {invented.net} Wh has no "
                  f"anchored reading), posting a {eur(bond)} EUR bond; answers taken until "
                  f"{iso(invented.answer_by)}")
    honest_day = honest_inputs.days()[0]
    challenge_standard_baseline(view, watcher, engine, honest[0], isp, days_back=honest_day)
    before = int(token.balance_of(oracle_account.address))
    answered = answer_challenges(engine, disputes, oracle, market)  # what `oracle run` does every round
    gained = int(token.balance_of(oracle_account.address)) - before
    out["answered"] = {"asset": honest[0], "days_back": honest_day, "challenger": "aggregator 2", "bond": bond,
                       "answered": [a["daysBack"] for a in answered] == [honest_day], "oracle_gained": gained,
                       "stake_after": int(oracle.stake_of(market, oracle_account.address).amount)}
    console.print(f"aggregator 2 challenged the day {honest_day} days before of asset {honest[0]}'s honest baseline: "
                  f"the oracle's service loop answered it with that day's anchored reading; the challenge failed "
                  f"and its {eur(bond)} EUR bond paid the oracle (+{eur(gained)} EUR)")
    return StandardStage(chain, params, market, day, isp, engine, verifier, oracle_signer, (asset, meter),
                         offer, invented, int(answer["baselineWh"]), true_wh, out)


def settle_standard(stage: StandardStage, anyone: Signer, console: Console) -> None:
    """After the ISP: the seller's meter signed half the energy it was awarded below its true
    baseline; the oracle anchors it and anyone settles the day (`flexledger settle`): the offer is
    paid on the anchored, inflated baseline, while the challenge is still open."""
    asset, meter = stage.seller
    measured = stage.true_wh - stage.offer.power_w * stage.params.isp_seconds // 3600 // 2
    oracle = stage.chain.signed_by(stage.oracle).oracle
    _keep(stage.conn, stage.engine, stage.verifier, stage.market, oracle.address, meter, stage.isp, measured,
          stage.conn.latest_timestamp())
    anchor_isp(stage.engine, oracle, stage.market, stage.isp)
    ctx = day_context(stage.chain, stage.market, stage.day)
    standard = StandardBaselines(lambda m, t: baseline_proof_for(stage.engine, stage.market, m, t),
                                 stage.params.isp_seconds)
    outcomes = settle_day(ctx, anyone, baselines=lambda _offer: None,
                          reading=lambda m, t: proof_for(stage.engine, m, t), standard=standard)
    settled = next(o for o in outcomes if o.offer.offer.asset == asset and o.status == "settled")
    assert settled.record is not None
    stage.out["before"] = record_money(settled.record)
    console.print(f"asset {asset}'s offer settled on the anchored baseline ({stage.inflated_wh} Wh; the meter "
                  f"measured {measured} Wh): paid {eur(stage.out['before']['payment'])} EUR, penalty "
                  f"{eur(stage.out['before']['penalty'])} EUR")


def correct_standard(stage: StandardStage, anyone: Signer, console: Console) -> dict[str, Any]:
    """After the answer window, nobody having answered the invented day: anyone upholds the
    challenge (the oracle slashed once, to the auditor, the bond back) and re-settles the offer on
    the correction within its dispute window. What the summary shows."""
    asset, _meter = stage.seller
    conn, out = stage.conn, stage.out
    token, disputes = stage.chain.token, stage.chain.baseline_disputes
    auditor = str(disputes.challenge_of(
        stage.market, stage.isp, stage.seller[1].address, stage.invented.days_back).challenger)
    before = int(token.balance_of(auditor))
    advance_to(conn, stage.invented.answer_by + 1)
    view = MarketOnChain(stage.chain, stage.market)
    upheld = uphold_standard_challenge(view, anyone, stage.engine, asset, stage.isp, stage.invented.days_back)
    ctx = day_context(stage.chain, stage.market, stage.day)
    digest = next(item.digest for item in awarded_offers(ctx) if item.offer.asset == asset)
    resettled = resettle_on_correction(ctx, anyone, digest, stage.isp)
    oracle = stage.chain.oracle
    out.update({"days_back": stage.invented.days_back, "net": stage.invented.net, "challenger": "auditor",
                "bond": stage.invented.bond, "baseline_was": stage.inflated_wh, "baseline_now": upheld.baseline_wh,
                "slashed": upheld.slashed, "challenger_gained": int(token.balance_of(auditor)) - before,
                "faults": int(disputes.faults_of(
                    stage.oracle.address)),
                "stake_left": int(oracle.stake_of(stage.market, stage.oracle.address).amount),
                "after": record_money(resettled.after)})
    console.print(f"nobody answered the invented day: the challenge was upheld after the window, asset {asset}'s "
                  f"baseline is {upheld.baseline_wh} Wh (was {stage.inflated_wh}); the oracle was slashed "
                  f"{eur(upheld.slashed)} EUR to the auditor, whose {eur(stage.invented.bond)} EUR bond "
                  f"came back; anyone re-settled the offer on it (`resettle-baseline`): paid "
                  f"{eur(out['before']['payment'])} -> "
                  f"{eur(out['after']['payment'])} EUR, penalty {eur(out['before']['penalty'])} -> "
                  f"{eur(out['after']['penalty'])} EUR")
    return out


def advance_to(conn: ChainConnection, t: int) -> None:
    """Move the demo chain's time to ``t`` (never back)."""
    if t > conn.latest_timestamp():
        conn.set_next_block_timestamp(t)
        conn.mine()
