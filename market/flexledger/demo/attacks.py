"""The demo's attacks: after the demo day is settled, a dishonest seller, its gateway and a late
operator try what the outside review (issue 16) showed possible, on the demo's own chain, market,
parties and assets, against the real contracts. Each is refused, and the summary says by what.

One prosumer, whose bond the demo day left whole, sells again for a later market day (the
"attack day"; the demo day's gate closed long ago):
- it offers its asset twice for overlapping windows; the operator's result awarding both is
  refused (`ClearingOffersOverlap`: one meter's delivery is never paid twice);
- the operator commits a result for a market day that has already begun: refused
  (`ClearingDayBegun`: sellers must know their activations before delivery);
- it delivers nothing, then its gateway (where the meter's key sits) signs a second reading for
  one ISP and disputes with it: the meter has signed twice, the ISP's delivery is void and the
  meter is marked (`MeterEquivocated`), so the penalty stands;
- its penalty exceeds its bond: the rest is a debt to the DSO, and its next offer is skipped
  (`OrderBookSellerNotBonded`) until the debt is repaid (its aggregator pays, the DSO collects).
On the same day another prosumer sells on the oracle's standard baseline, which the oracle
inflates with an invented day (``demo_baselines``: challenged, upheld, re-settled; an honest
baseline's challenge answered). The attack day's settlement is then audited like the demo day's,
its standard baseline recomputed from the oracle's store.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from rich.console import Console

from flexledger.audit.baselines import store_evidence
from flexledger.audit.settlement import audit_settlement
from flexledger.book.order_book import SignedOffer, relay_offers
from flexledger.chain import structs
from flexledger.chain.bindings import (
    ClearingCommitmentClient,
    OrderBookClient,
    SettlementClient,
    SettlementTokenClient,
)
from flexledger.chain.connection import ChainConnection
from flexledger.chain.errors import ContractCustomError
from flexledger.chain.transactions import Signer
from flexledger.clearing.commitment import day_state, post_result
from flexledger.clearing.market_day import load_market_day
from flexledger.demo.baselines import (
    StandardSeller,
    advance_to,
    correct_standard,
    settle_standard,
    stage_standard,
)
from flexledger.demo.households import KeptOffer
from flexledger.demo.money import eur
from flexledger.deployment import Deployment
from flexledger.identity.eip712 import read_domain
from flexledger.optimiser import clear
from flexledger.optimiser.results import Award
from flexledger.oracle.anchoring import anchor_isp, proof_for
from flexledger.oracle.ingest import ingest
from flexledger.oracle.store import open_store, session
from flexledger.oracle.verify import Verifier
from flexledger.rules.baselines import baseline_commitment
from flexledger.rules.lights import Direction
from flexledger.rules.market import DAY, MarketParams
from flexledger.rules.orders import (
    BaselineMethod,
    BondState,
    Mode,
    Offer,
    RequestParams,
    bond_problem,
    max_exposure,
)
from flexledger.settlement.day import day_context, dispute_offer, finalise_day
from flexledger.settlement.debts import collect_debt, pay_debt
from flexledger.settlement.offer import Baseline, settle_input, settle_offer
from flexledger.times import iso
from flexledger_edge.reading import MeterSigner, OracleDomain

ISPS = 8  # the attack day's offer: two hours from 17:15, at most its asset's power
PRICE = 29_000  # below the request's 30,000 per MWh: the optimiser awards it


@dataclass
class _World:
    conn: ChainConnection
    params: MarketParams
    market: int
    book: OrderBookClient
    clearing: ClearingCommitmentClient
    settlement: SettlementClient
    token: SettlementTokenClient
    operator: Signer
    anyone: Signer

    def at(self, t: int) -> None:
        advance_to(self.conn, t)


def _refused(exc: ContractCustomError) -> str:
    return exc.NAME


def attacks_step(chain: Deployment, authority: Signer, accounts: dict[str, LocalAccount],
                 market: int, meters: list[tuple[int, LocalAccount, int]], kept: dict[bytes, KeptOffer],
                 modbus: int, console: Console) -> dict[str, Any]:
    """Stage the attacks; returns each one's readable line (``refused``) and the attack day's audit."""
    conn = chain.conn
    params = chain.params(market)
    signers: dict[str, Signer] = {authority.address: authority}

    def signer_of(account: LocalAccount) -> Signer:
        """One signer per account: each counts its own nonces, so two would collide."""
        if account.address not in signers:
            signers[account.address] = Signer(account, conn)
        return signers[account.address]

    w = _World(conn, params, market, chain.order_book, chain.clearing, chain.settlement, chain.token,
               signer_of(accounts["clearing operator"]), authority)  # anyone: the authority pays its gas
    started = time.perf_counter()
    refused: list[str] = []
    out: dict[str, Any] = {"refused": refused}

    # a late result: the market day now under way has no result; its first one comes too late
    begun = params.day_start(conn.latest_timestamp())
    try:
        opened = w.clearing.open(market, begun, sender=w.operator)
        w.clearing.close(int(opened.event("ResultOpened").args["resultId"]), sender=w.operator)
        refused.append(f"ACCEPTED: a first result for {iso(begun)[:10]} committed after the day began")
    except ContractCustomError as exc:
        refused.append(f"refused: the operator's first result for {iso(begun)[:10]}, committed after that day began "
                       f"(the day is void, its escrows go back whole) ({_refused(exc)})")
    console.print(refused[-1])

    seller, asset, meter, power = _pick_seller(w, meters[modbus:], kept)
    # another prosumer offers on the oracle's standard baseline, and another meter has one too
    std_owner, std_asset, std_meter, std_power = _pick_seller(w, meters[modbus:], kept, avoid=seller.address)
    honest = next((a, m) for a, m, _kind in sorted(meters[modbus:], key=lambda m: m[0]) if a not in (asset, std_asset))
    aggregator = kept_aggregator(kept, asset)
    relayer = signer_of(accounts[aggregator])  # the prosumer pays no gas: its aggregator sends for it
    zone = int(chain.assets.asset(asset).zone)
    dso = signer_of(_operator_of(chain, zone, accounts))
    day = params.day_start(conn.latest_timestamp()) + 2 * DAY
    start = day + 69 * 900  # 17:15
    out["day"] = iso(day)[:10]
    console.print(f"the attack day {iso(day)[:10]}: the owner of asset {asset} (bond "
                  f"{eur(w.book.bond_of(seller.address))} EUR) sells again through {aggregator}, "
                  f"{_name(accounts, dso.address)} buys")

    # the DSO's request, its escrow through an approval
    request = RequestParams(market, zone, start - 900, ISPS + 2, int(Direction.UP), power, 30_000)
    escrow = max_exposure(request.power_w, request.isps, params.isp_seconds, request.max_price)
    w.token.mint(dso.address, escrow, sender=authority)
    w.token.approve(w.book.address, escrow, sender=dso)
    request_id = int(w.book.post_request(structs.RequestParams.like(request), sender=dso).event("RequestPosted").args["requestId"])

    # two offers of one asset over overlapping windows: the newer replaces the older in the book
    domain = read_domain(conn, w.book.address)
    nonce = int(w.book.asset_nonce(asset))
    baseline = Baseline([power // 4 + 500] * ISPS, keccak(text=f"attack {asset}"))
    commitment = baseline_commitment(asset, start, baseline.net_wh, baseline.salt)
    expiry = day + DAY
    older = Offer(market, asset, 0, start - 900, 4, int(Direction.UP), power, PRICE, int(Mode.DIVISIBLE), 0,
                  int(BaselineMethod.COMMITTED), commitment, expiry, nonce + 1)
    newer = Offer(market, asset, 0, start, ISPS, int(Direction.UP), power, PRICE, int(Mode.DIVISIBLE), 0,
                  int(BaselineMethod.COMMITTED), commitment, expiry, nonce + 2)
    relayed = relay_offers(w.book.with_signer(relayer), [SignedOffer(o, o.sign(seller, domain)) for o in (older, newer)])  # type: ignore[arg-type]
    assert relayed.accepted == 2, [o.reason for o in relayed.outcomes]

    # the oracle's store, from the standard baselines' history on to the attack day's readings
    folder = Path(tempfile.mkdtemp(prefix="flexledger-demo-attacks-"))
    engine = open_store(f"sqlite:///{folder / 'oracle.db'}")
    oracle = chain.signed_by(signer_of(accounts["oracle"])).oracle
    verifier = Verifier(read_domain(conn, oracle.address).separator(), lambda _meter: None)
    std_zone = int(chain.assets.asset(std_asset)[1])
    std_seller = StandardSeller(std_asset, std_owner, std_meter, std_power, std_zone,
                                signer_of(accounts[kept_aggregator(kept, std_asset)]))
    standard = stage_standard(chain, authority, accounts, signer_of, oracle, market, day, engine, verifier,
                              std_seller, honest, signer_of(_operator_of(chain, std_zone, accounts)), console)

    # after the gate closure: a result awarding both is refused; the optimiser's awards the newer only
    w.at(params.gate_closure(day) + 1)
    loaded = load_market_day(chain, market, day)
    digests = loaded.book.digests
    both = [Award(request_id, older.start + i * 900, "0x" + digests[older].hex(), power // 2, PRICE) for i in range(4)]
    both += [Award(request_id, newer.start + i * 900, "0x" + digests[newer].hex(), power // 2, PRICE) for i in range(ISPS)]
    try:
        post_result(w.clearing, w.operator, market, day, both, loaded.book, params.isp_seconds)
        refused.append("ACCEPTED: a result paying one meter's delivery to two overlapping offers")
    except ContractCustomError as exc:
        refused.append(f"refused: asset {asset} offered twice for overlapping windows "
                       f"({iso(older.start)[11:16]} x4 and {iso(newer.start)[11:16]} x{ISPS}), a result awarding both "
                       f"({_refused(exc)}; the book keeps only the newer in force)")
    console.print(refused[-1])
    result = clear(loaded.clearing)
    result_id, _gas, _chunks = post_result(w.clearing, w.operator, market, day, result.awards, loaded.book,
                                           params.isp_seconds)
    w.at(day_state(chain, market, day).challenge_ends + 1)
    w.clearing.finalise(market, day, sender=w.anyone)

    # delivery: none; the meter signs what it measured, the oracle keeps and anchors it
    signer = MeterSigner(meter.key, OracleDomain(conn.chain_id, oracle.address))
    isps = [newer.start + i * params.isp_seconds for i in range(ISPS)]
    w.at(isps[-1] + params.isp_seconds + 120)

    def keep(isp: int, sequence: int, import_wh: int) -> str:
        signed = signer.sign_new(isp_start=isp, sequence=sequence, import_wh=import_wh, export_wh=0)
        with session(engine) as s:
            return ingest(s, verifier, market, signed.to_json(), conn.latest_timestamp())

    for isp, net in zip(isps, baseline.net_wh, strict=True):
        keep(isp, 1, net)
        anchor_isp(engine, oracle, market, isp)
    digest = digests[newer]
    settle_offer(w.settlement, w.anyone, settle_input(w.clearing, result_id, newer, digest, baseline, meter.address,
                                                      lambda m, t: proof_for(engine, m, t)))
    settle_standard(standard, w.anyone, console)

    # the gateway signs a second reading of the first ISP, as if delivered in full, and disputes
    keep(isps[0], 2, 500)
    ctx = day_context(chain, market, day)
    disputed = dispute_offer(ctx, relayer, digest, isps[0], engine)
    if disputed.equivocation:
        refused.append(f"refused: the seller's gateway signed a second reading of asset {asset}'s meter for "
                       f"{iso(isps[0])[11:16]} and disputed with it: the meter signed twice, the ISP's delivery is "
                       "void and the meter marked (MeterEquivocated); the penalty stands")
    else:
        refused.append(f"ACCEPTED: a second reading of asset {asset}'s meter corrected its settlement")
    console.print(refused[-1])
    out["baselines"] = correct_standard(standard, w.anyone, console)

    # final: the penalty beyond the bond is a debt; the indebted seller's next offer is skipped
    w.at(conn.latest_timestamp() + params.dispute_window_seconds + 1)
    finalised, _records = finalise_day(ctx, w.anyone)
    debt = sum(f.debt for f in finalised)
    out["debt"] = debt
    later = params.day_start(conn.latest_timestamp()) + 2 * DAY
    again = Offer(market, asset, 0, later + 69 * 900, 1, int(Direction.UP), power, PRICE, int(Mode.DIVISIBLE), 0,
                  int(BaselineMethod.COMMITTED), commitment, later + DAY, nonce + 3)
    (outcome,) = relay_offers(w.book.with_signer(relayer), [SignedOffer(again, again.sign(seller, domain))]).outcomes  # type: ignore[arg-type]
    if outcome.reason is not None:
        refused.append(f"refused: the owner of asset {asset}, owing {eur(debt)} EUR its bond could not "
                       f"cover, offered for {iso(later)[:10]} "
                       f"({getattr(outcome.reason, 'NAME', '') or type(outcome.reason).__name__})")
    else:
        refused.append(f"ACCEPTED: an offer from a seller owing {eur(debt)} EUR")
    console.print(refused[-1])

    # its aggregator repays the debt (a permit for the Settlement); the DSO collects it
    if debt:
        w.token.mint(relayer.address, debt, sender=authority)
        paid = pay_debt(w.settlement, w.token, relayer, seller.address, debt)
        collected = collect_debt(w.settlement, dso, seller.address)
        out["repaid"], out["collected"] = paid.paid, collected
        console.print(f"{aggregator} repaid the {eur(paid.paid)} EUR debt "
                      f"(Settlement.payDebt, through a permit) and {_name(accounts, dso.address)} collected "
                      f"{eur(collected)} EUR (collectDebt); the seller may sell again once it bonds")
    audit = audit_settlement(chain, market, day, store_evidence(engine, market))
    engine.dispose()
    out["audit"] = "MATCH" if audit.matches else f"{len(audit.differences)} DIFFERENCES"
    out["audit_differences"] = audit.differences
    console.print(f"the attack day's settlement re-checked by the auditor (debt recorded, repaid and collected): "
                  f"{out['audit']}")
    for d in audit.differences:
        console.print(f"  [red]{d}[/]")
    out["seconds"] = round(time.perf_counter() - started, 1)
    return out


def kept_aggregator(kept: dict[bytes, KeptOffer], asset: int) -> str:
    return next(k.aggregator for k in kept.values() if k.offer.asset == asset)


def _pick_seller(w: _World, meters: list[tuple[int, LocalAccount, int]], kept: dict[bytes, KeptOffer], *,
                 avoid: str | None = None) -> tuple[LocalAccount, int, LocalAccount, int]:
    """A prosumer (not ``avoid``) whose asset offered on the demo day and whose bond may still sell."""
    owner_of = {k.offer.asset: (k.owner, k.offer.power_w) for k in kept.values() if k.offer.asset}
    for asset, meter, _kind in sorted(meters, key=lambda m: m[0]):
        if asset in owner_of and owner_of[asset][0].address != avoid:
            owner, power = owner_of[asset]
            if bond_problem(BondState.from_word(w.book.bond_word(owner.address))) is None:
                return owner, asset, meter, power
    raise RuntimeError("no bonded prosumer left for the attack day")


def _operator_of(chain: Deployment, zone: int, accounts: dict[str, LocalAccount]) -> LocalAccount:
    grid = chain.zones
    by_address = {str(a.address): a for a in accounts.values()}
    while zone:
        parent, _depth, operator, *_rest = grid.zone(zone)
        if str(operator) in by_address:
            return by_address[str(operator)]
        zone = int(parent)
    raise RuntimeError("no demo party operates the asset's zone")


def _name(accounts: dict[str, LocalAccount], address: str) -> str:
    return next((n for n, a in accounts.items() if a.address == address), address)
