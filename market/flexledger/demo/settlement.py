"""The demo's settlement step: the day ends (anvil time travel); anyone (here an aggregator)
settles every awarded offer with its seller's revealed baseline, the awards' proofs and the
meters' anchored readings; a prosumer disputes the reading the demo corrupted in the oracle's
store, with the one its meter signed; the dispute window passes; every settlement is made final,
the buyers' escrows refunded, and every claim withdrawn. The demo then checks every base unit
itself (each line against the rules, each balance against the records) and runs the auditor.

The portfolio offer is settled in the same batches: its delivery is its members' meters summed
(DeliveryMeter), its seller, paid and bonded, the aggregator.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from rich import box
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy.engine import Engine

from flexledger.audit.settlement import audit_settlement
from flexledger.book.order_book import read_book
from flexledger.chain.bindings import (
    OrderBookClient,
    ReadingDisputesClient,
    SettlementClient,
)
from flexledger.chain.client import TxResult, wait_all
from flexledger.chain.connection import ChainConnection
from flexledger.chain.structs import ReadingDisputesDisputeIn, Record, SettleIn
from flexledger.chain.transactions import Signer
from flexledger.clearing.commitment import award_proofs
from flexledger.demo.delivery import Behaviour, Delivery, DeliveryPlan
from flexledger.demo.households import forecast_wh
from flexledger.demo.ledger import (
    Moves,
    RequestTerms,
    differences,
    expected_lines,
    expected_moves,
    flows,
    request_terms,
)
from flexledger.demo.money import eur
from flexledger.demo.portfolio import overriding
from flexledger.demo.proofs import ReadingProofs
from flexledger.deployment import Deployment
from flexledger.errors import FlexledgerError
from flexledger.rules.market import DAY, MarketParams
from flexledger.rules.settlement import to_money
from flexledger.settlement.day import portfolio_members
from flexledger.settlement.offer import (
    SettledOffer,
    finalise_offers,
    settle_input_from,
    settle_offers,
)
from flexledger.settlement.records import (
    SettlementInput,
    decode_members,
    line_penalty,
    reading_net_wh,
)
from flexledger.times import iso
from flexledger_edge.reading import SignedReading

GAS_MONEY = hex(10**17)  # 0.1 ether of the development chain: a prosumer's gas for a dispute and a withdrawal
BUYERS = ("DSO north", "DSO south", "TSO")
WITHDRAW_GAS = 100_000  # withdraw measures about 40,000: a fixed limit spares an estimate per transaction


@dataclass
class _Settled:
    delivery: Delivery
    settle_in: SettleIn
    record: Record  # in force (a dispute replaces it)
    net: list[int]  # the net consumption the record counts per ISP: anchored, or as a dispute corrected it
    gas: int


def _day_requests(book: OrderBookClient, market: int, day: int) -> dict[int, RequestTerms]:
    return {request_id: request_terms(book, request_id) for request_id in read_book(book, market, day).requests}


def settlement_step(chain: Deployment, accounts: dict[str, LocalAccount], market: int,
                    day: int, result_id: int, plan: DeliveryPlan, store: Engine, fault: dict[str, Any],
                    console: Console) -> dict[str, Any]:
    started = time.perf_counter()
    conn = chain.conn
    params = chain.params(market)
    keeper = Signer(accounts["aggregator 1"], conn)  # anyone may settle, finalise and refund
    settlement = chain.signed_by(keeper).settlement
    book, token = chain.order_book, chain.token
    conn.set_next_block_timestamp(day + DAY + 60)
    conn.mine()
    first_block = int(conn.w3.eth.block_number) + 1
    final_at = chain.clearing.day_state(market, day).challenge_ends
    console.print(f"time travel to {iso(day + DAY + 60)}: the day is over; its settlement window is open until "
                  f"{iso(params.settlement_closes(day, final_at))} (a dispute window after the day's end or its "
                  "result's finality, the later)")
    requests = _day_requests(book, market, day)
    buyers = {str(accounts[name].address): name for name in BUYERS}
    watched = [*buyers, str(book.address), str(settlement.address)]  # balances read directly, besides the events
    before = {a: token.balance_of(a) for a in watched}

    settled = _settle_all(chain, settlement, keeper, result_id, plan, store, market, console)
    lines = sum(len(s.record.lines) for s in settled.values())
    gas = sum(s.gas for s in settled.values())
    console.print(f"aggregator 1 settled {len(settled)} awarded offers ({lines} award-ISP lines) in batches "
                  f"(Settlement.settleMany), from public data and the sellers' revealed baselines: "
                  f"{gas // max(lines, 1):,} gas per line")
    problems = [f"offer 0x{digest.hex()[:10]}: the contract's lines differ from the rules'"
                for digest, s in settled.items() if not _as_rules_say(s, params, requests)]
    shown = _representatives(plan, settled, params, requests)
    disputes = chain.reading_disputes
    dispute = _dispute(conn, settlement, disputes, plan, settled, fault, console) if plan.disputed in settled else {}
    if dispute:
        disputed = settled[plan.disputed]  # type: ignore[index]
        shown.append(("corrected", disputed, *_figures(disputed, params, requests)))
        if not _as_rules_say(disputed, params, requests):
            problems.append("the disputed offer's corrected lines differ from the rules'")
    console.print(_table(shown))
    checked = _check_behaviours(settled, params, requests)
    problems += checked.pop("problems")

    ends = max([s.record.settled_at for s in settled.values()] + [day + DAY]) + params.dispute_window_seconds
    conn.set_next_block_timestamp(ends + 1)
    conn.mine()
    order = sorted(settled)
    records = [settled[d].record for d in order]
    # the draws each finalisation will make depend on the bonds left: read the bonds of those who owe penalties
    bonds = {r.seller: book.bond_of(r.seller) for r in records if any(ln.uncovered for ln in r.lines)}
    moves = expected_moves(records, requests, bonds, str(book.address))
    refunds, withdrawn = _finalise_and_pay(conn, settlement, keeper, settled, order, requests, moves, accounts, buyers,
                                           console)
    finalised = settlement.events("SettlementFinalised", from_block=first_block)
    claimed, drawn, debt = (sum(int(e.args[k]) for e in finalised) for k in ("claimed", "fromBond", "debt"))
    console.print(f"time travel to {iso(ends + 1)}: the dispute windows are over; {len(finalised)} settlements made "
                  f"final in batches (Settlement.finaliseMany): {eur(claimed)} EUR credited to sellers, "
                  f"{eur(drawn)} EUR of penalties drawn from bonds for the buyers, {eur(debt)} EUR owed beyond "
                  f"them; {len(refunds)} requests refunded ({eur(sum(refunds.values()))} EUR back to the buyers); "
                  f"{withdrawn} parties withdrew their claims (the prosumers' gas: development-chain ether from "
                  "anvil_setBalance)")

    moved = flows((str(e.args["from"]), str(e.args["to"]), int(e.args["value"]))
                  for e in token.events("Transfer", from_block=first_block))
    drawn_from: dict[str, int] = defaultdict(int)
    for e in book.events("BondDrawn", from_block=first_block):
        drawn_from[str(e.args["seller"])] += int(e.args["amount"])
    problems += differences(moves, moved, drawn_from)
    after = {a: token.balance_of(a) for a in watched}
    problems += [f"{a}: balance moved {after[a] - before[a]}, its Transfer events say {moved.get(a, 0)}"
                 for a in watched if after[a] - before[a] != moved.get(a, 0)]
    table, paid = _money_table(requests, buyers, refunds, before, after)
    console.print(table)
    console.print(f"the {len({r.seller for r in records})} awarded sellers (prosumers, and aggregators for portfolios) "
                  f"received {eur(moves.claims)} EUR in claims; {eur(moves.drawn)} EUR of penalties came out of "
                  "their bonds")
    portfolio = {}
    for d in plan.portfolios:  # the demo has one
        portfolio = _portfolio(settled[d.kept.digest], params, requests, moves, moved, console)
        if not portfolio["seller_is_aggregator"] or portfolio["withdrawn"] != portfolio["claimed"]:
            problems.append(f"portfolio {portfolio['id']}: its seller or its money is not its aggregator's")
    verdict = ("every line as the rules say, every balance change as the records say" if not problems
               else "; ".join(problems[:3]))
    console.print(f"the demo's own check of {lines} lines and {len(moved)} balance changes (the token's Transfer "
                  f"events; {len(watched)} balances read too): [{'green' if not problems else 'red'}]{verdict}[/]")
    audit = _audit(chain, market, day, moves, refunds, requests, buyers, console)
    return {"offers": len(settled), "lines": lines, "gas_per_line": gas // max(lines, 1), **checked, **audit,
            "dispute": dispute, "portfolio": portfolio, "claims": claimed, "bond_draws": drawn, "debts": debt,
            "refunds": sum(refunds.values()), "paid": paid, "prosumers": moves.claims, "checked": not problems, "problems": problems,
            "seconds": round(time.perf_counter() - started, 1)}


def _settle_all(chain: Deployment, settlement: SettlementClient, keeper: Signer,
                result_id: int, plan: DeliveryPlan, store: Engine, market: int,
                console: Console) -> dict[bytes, _Settled]:
    """Every awarded offer settled with its seller's baseline, the awards' and the readings' proofs."""
    awards = award_proofs(chain.clearing, result_id)
    proofs = ReadingProofs(store, market)
    order = sorted(plan.deliveries)
    members = {d.kept.digest: portfolio_members(chain, d.kept.offer) for d in plan.portfolios}
    inputs = [settle_input_from(result_id, d.kept.offer, digest, awards, d.kept.baseline, d.kept.meter, proofs,
                                members=members.get(digest, ()))
              for digest, d in ((g, plan.deliveries[g]) for g in order)]
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("aggregator 1 settles every awarded offer (anyone may)", total=len(inputs))
        done = settle_offers(settlement, keeper, inputs, progress=lambda n: progress.advance(task, n))
    for digest, s in zip(order, done, strict=True):
        if s.record.offer_digest != digest:  # the batches' records come back in the order of their inputs
            raise FlexledgerError(f"the settlement of offer 0x{digest.hex()[:10]} came back as "
                                  f"0x{s.record.offer_digest.hex()[:10]}")
    separator = chain.book_separator
    return {digest: _Settled(plan.deliveries[digest], s_in, s.record, SettlementInput.from_struct(s_in, separator).net_wh(),
                             s.gas_used)
            for digest, s_in, s in zip(order, inputs, done, strict=True)}


def _portfolio(s: _Settled, params: MarketParams, requests: dict[int, RequestTerms], moves: Moves,
               moved: dict[str, int], console: Console) -> dict[str, Any]:
    """The portfolio offer's outcome: each member's delivery (its forecast less its anchored
    reading), the sum the settlement counted, and what its aggregator was paid and withdrew."""
    kept = s.delivery.kept
    awarded, delivered, paid, penalty = _figures(s, params, requests)
    kind = {m.asset: m.kind for m in kept.members}
    direction = -s.delivery.sign  # +1 for UP: delivered is the forecast less the measured
    by_member: dict[int, int] = defaultdict(int)
    for isp, encoded in zip(s.settle_in.isps, s.settle_in.members, strict=True):
        for m in decode_members(encoded):
            forecast = forecast_wh(m.asset, kind[m.asset], isp.awards[0].isp_start)
            by_member[m.asset] += direction * (forecast - reading_net_wh(m.reading))
    seller = s.record.seller
    failing = overriding(kept.members).asset
    shown = [f"{wh / 1000:,.2f} kWh (asset {a}" + (", whose prosumer overrode: 40 % of its share)" if a == failing
                                                     else ")") for a, wh in by_member.items()]
    met = "the award met" if delivered >= awarded else "SHORT of the award"
    isps = [isp.awards[0].isp_start for isp in s.settle_in.isps]
    console.print(f"portfolio {kept.offer.portfolio} of {kept.aggregator}, {iso(isps[0])[11:16]}-"
                  f"{iso(isps[-1] + params.isp_seconds)[11:16]}: awarded {awarded / 3.6e6:,.2f} kWh; its members' "
                  f"meters delivered {', '.join(shown[:-1])} and {shown[-1]}: {delivered / 3.6e6:,.2f} kWh summed "
                  f"by DeliveryMeter against the summed baseline, {met}; paid {eur(paid)} EUR, penalty "
                  f"{eur(penalty)} EUR; the record's seller is {kept.aggregator}, who withdrew its claim of "
                  f"{eur(moved.get(seller, 0))} EUR")
    return {"id": kept.offer.portfolio, "aggregator": kept.aggregator, "members": list(by_member),
            "member_delivered_wh": dict(by_member), "overriding": failing, "awarded_wh": awarded // 3600,
            "delivered_wh": delivered // 3600, "paid": paid, "penalty": penalty,
            "full_payment": sum(to_money(line.awarded_ws, kept.offer.price) for _l, line in
                                expected_lines(s.settle_in, s.net, params, requests)),
            "seller_is_aggregator": seller == str(kept.owner.address), "as_rules_say": _as_rules_say(s, params, requests),
            "claimed": moves.claimed_by.get(seller, 0), "withdrawn": moved.get(seller, 0)}


def _finalise_and_pay(conn: ChainConnection, settlement: SettlementClient, keeper: Signer,
                      settled: dict[bytes, _Settled], order: list[bytes], requests: dict[int, RequestTerms],
                      moves: Moves, accounts: dict[str, LocalAccount], buyers: dict[str, str],
                      console: Console) -> tuple[dict[int, int], int]:
    """Finality for every settlement, the buyers' refunds, and every claim withdrawn by its owner;
    returns the refunds and how many parties withdrew."""
    owners = {str(s.delivery.kept.owner.address): s.delivery.kept.owner for s in settled.values()}
    parties = {str(a.address) for a in accounts.values()}  # the aggregator of the portfolio has gas of its own
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("settlements made final (anyone may)", total=len(order))
        finalise_offers(settlement, keeper, [SettledOffer(settled[d].record, 0) for d in order],
                        progress=lambda n: progress.advance(task, n))
        refunds = {r: int(settlement.refund(r).event("Refunded").args["amount"]) for r in sorted(requests)}
        # who may withdraw follows from the records: sellers their claims, buyers the penalties drawn for them
        claimants = [(a, owners[a]) for a in sorted(owners) if moves.claimed_by.get(a)]
        claimants += [(a, accounts[name]) for a, name in buyers.items() if moves.drawn_for.get(a)]
        task = progress.add_task("sellers and buyers withdraw what they may", total=len(claimants))
        pending: list[TxResult] = []
        for address, account in claimants:
            if address in owners and address not in parties:
                conn.request("anvil_setBalance", [address, GAS_MONEY])
            pending.append(settlement.withdraw(sender=Signer(account, conn), wait=False, gas=WITHDRAW_GAS))
            progress.advance(task)
        wait_all(conn, pending)
    return refunds, len(claimants)


def _as_rules_say(s: _Settled, params: MarketParams, requests: dict[int, RequestTerms]) -> bool:
    return [line for line, _f in expected_lines(s.settle_in, s.net, params, requests)] == list(s.record.lines)


def _figures(s: _Settled, params: MarketParams, requests: dict[int, RequestTerms]) -> tuple[int, int, int, int]:
    """(awarded W*s, delivered W*s, payment, penalty) of a settled offer, all its lines together."""
    figures = [f for _line, f in expected_lines(s.settle_in, s.net, params, requests)]
    return (sum(f.awarded_ws for f in figures), sum(f.delivered_ws for f in figures),
            sum(ln.payment for ln in s.record.lines), sum(line_penalty(ln) for ln in s.record.lines))


Row = tuple[str, _Settled, int, int, int, int]


def _representatives(plan: DeliveryPlan, settled: dict[bytes, _Settled], params: MarketParams,
                     requests: dict[int, RequestTerms]) -> list[Row]:
    """A few settled offers to show: one of each behaviour, one read over Modbus, the disputed one."""
    picks: list[tuple[str, bytes]] = []
    by_asset = sorted(settled, key=lambda d: settled[d].delivery.kept.offer.asset)  # the same ones on every run
    for behaviour in Behaviour:
        found = next((d for d in by_asset if settled[d].delivery.behaviour is behaviour and d != plan.disputed
                      and settled[d].delivery.kept.offer.asset not in plan.always_full | {0}), None)
        if found is not None:
            picks.append((behaviour.value, found))
    modbus = next((d for d in by_asset if settled[d].delivery.kept.offer.asset in plan.always_full), None)
    if modbus is not None:
        picks.append(("full, Modbus", modbus))
    picks += [("portfolio", d.kept.digest) for d in plan.portfolios
              if d.kept.digest in settled]
    if plan.disputed in settled:
        picks.append(("disputed", plan.disputed))
    return [(label, settled[d], *_figures(settled[d], params, requests)) for label, d in picks]


def _table(rows: list[Row]) -> Table:
    table = Table(title="a few settled offers: kWh and EUR over all their awards and ISPs (the disputed one as "
                        "anchored, then as corrected)", box=box.SIMPLE_HEAD, pad_edge=False)  # fits 80 columns
    for column in ("offer", "asset", "UTC", "awarded", "delivered", "paid", "penalty"):
        table.add_column(column, justify="left" if column in ("offer", "UTC") else "right", no_wrap=True)
    for label, s, awarded, delivered, paid, penalty in rows:
        isps = [isp.awards[0].isp_start for isp in s.settle_in.isps]
        kept = s.delivery.kept
        assets = f"{len(kept.members)} members" if kept.members else str(kept.offer.asset)  # their ids: too wide
        table.add_row(label, assets, f"{iso(isps[0])[11:16]}-{iso(isps[-1] + 900)[11:16]}",
                      f"{awarded / 3.6e6:,.2f}", f"{delivered / 3.6e6:,.2f}", eur(paid), eur(penalty))
    return table


def _check_behaviours(settled: dict[bytes, _Settled], params: MarketParams,
                      requests: dict[int, RequestTerms]) -> dict[str, Any]:
    """Count what each offer did, as its settlement shows it: in full (nothing short beyond the
    tolerance), short (some energy penalised: the penalty itself may round to nothing on a tiny
    award), over (more delivered than awarded, nothing penalised)."""
    counts = {b: 0 for b in Behaviour}
    problems = []
    for digest, s in settled.items():
        figures = [f for _line, f in expected_lines(s.settle_in, s.net, params, requests)]
        penalised = sum(f.penalised_ws for f in figures)
        behaviour = s.delivery.behaviour
        ok = {Behaviour.FULL: penalised == 0, Behaviour.SHORT: penalised > 0,
              Behaviour.OVER: penalised == 0 and sum(f.delivered_ws for f in figures) > sum(f.awarded_ws for f in figures),
              }[behaviour]
        if ok:
            counts[behaviour] += 1
        else:
            problems.append(f"offer 0x{digest.hex()[:10]} was to deliver {behaviour.value}, its settlement disagrees")
    return {"full": counts[Behaviour.FULL], "short": counts[Behaviour.SHORT], "over": counts[Behaviour.OVER],
            "problems": problems}


def _dispute(conn: ChainConnection, settlement: SettlementClient, disputes: ReadingDisputesClient, plan: DeliveryPlan,
             settled: dict[bytes, _Settled], fault: dict[str, Any], console: Console) -> dict[str, Any]:
    """The prosumer shows the reading its meter signed for the ISP whose stored value was corrupted:
    the anchored leaf carries the meter's signature of the true values, not of the altered ones,
    so ReadingDisputes upholds it against the oracle (any stake slashed goes to the buyer, never
    to the disputing seller)."""
    s = settled[plan.disputed]  # type: ignore[index]
    signed: SignedReading = fault["signed"]
    index = next(i for i, isp in enumerate(s.settle_in.isps) if isp.awards[0].isp_start == fault["isp_start"])
    anchored = s.settle_in.isps[index].reading
    oracle = anchored.anchor.oracle
    faults_before = disputes.faults_of(oracle)
    prosumer = Signer(s.delivery.kept.owner, conn)
    conn.request("anvil_setBalance", [prosumer.address, GAS_MONEY])
    r = signed.reading
    before = s.record
    no_member = 0  # an asset offer
    signed_in = ReadingDisputesDisputeIn(index, r.sequence, r.import_wh, r.export_wh, signed.signature, no_member)
    tx = disputes.dispute(s.settle_in, before, signed_in, sender=prosumer)
    block = tx.block_number or conn.w3.eth.block_number
    s.record = next(e for e in settlement.events("OfferSettled", from_block=block, to_block=block)
                    if e.tx_hash == tx.tx_hash).args["record"]
    s.net[index] = r.import_wh - r.export_wh
    faults = disputes.faults_of(oracle) - faults_before
    paid = (sum(ln.payment for ln in before.lines), sum(ln.payment for ln in s.record.lines))
    penalty = (sum(line_penalty(ln) for ln in before.lines), sum(line_penalty(ln) for ln in s.record.lines))
    console.print(f"the owner of asset {s.delivery.kept.offer.asset} disputes {iso(fault['isp_start'])[11:16]} with the "
                  f"reading its meter signed ({r.import_wh:,} Wh in, {r.export_wh:,} Wh out; anchored: "
                  f"{anchored.import_wh:,} in, {anchored.export_wh:,} out): upheld, paid {eur(paid[0])} -> {eur(paid[1])} EUR, "
                  f"penalty {eur(penalty[0])} -> {eur(penalty[1])} EUR; the oracle {oracle[:10]}… that anchored "
                  f"the root now has {disputes.faults_of(oracle)} fault(s) in ReadingDisputes.faultsOf "
                  f"({tx.gas_used:,} gas)")
    return {"upheld": s.record != before, "faults": faults, "asset": s.delivery.kept.offer.asset,
            "paid_before": paid[0], "paid_after": paid[1], "penalty_before": penalty[0], "penalty_after": penalty[1]}


def _money_table(requests: dict[int, RequestTerms], buyers: dict[str, str], refunds: dict[int, int],
                 before: dict[str, int], after: dict[str, int]) -> tuple[Table, dict[str, int]]:
    """Euros moved per buyer: its escrow, what came back (refund, penalties) and what it paid net."""
    table = Table(title="euros moved by the settlement, per buyer", box=box.SIMPLE_HEAD)
    for column in ("buyer", "escrow", "refunded", "penalties in", "net paid"):
        table.add_column(column, justify="left" if column == "buyer" else "right", no_wrap=True)
    paid: dict[str, int] = {}
    for address, name in buyers.items():
        escrow = sum(q.escrow for q in requests.values() if q.buyer == address)
        refunded = sum(refunds[r] for r, q in requests.items() if q.buyer == address)
        received = after[address] - before[address]  # refunds and penalties, once everything is withdrawn
        paid[name] = escrow - received
        table.add_row(name, eur(escrow), eur(refunded), eur(received - refunded), eur(escrow - received))
    return table, paid


def _audit(chain: Deployment, market: int, day: int, moves: Moves, refunds: dict[int, int],
           requests: dict[int, RequestTerms], buyers: dict[str, str], console: Console) -> dict[str, Any]:
    """The auditor's verdict, from public chain data only (never the oracle's store or the demo's
    notes), and whether its per-party figures are the demo's own."""
    started = time.perf_counter()
    audit = audit_settlement(chain, market, day)
    ours: dict[str, tuple[int, ...]] = {
        name: (sum(q.escrow for q in requests.values() if q.buyer == address),
               sum(refunds[r] for r, q in requests.items() if q.buyer == address), moves.drawn_for.get(address, 0))
        for address, name in buyers.items()}
    theirs: dict[str, tuple[int, ...]] = {
        name: (m.rules.escrowed, m.rules.refunded, m.rules.received) for address, name in buyers.items()
        if (m := audit.parties.get(address)) is not None}
    sellers = [m.rules for a, m in audit.parties.items() if a in moves.claimed_by]
    ours["prosumers"] = (moves.claims, moves.drawn)
    theirs["prosumers"] = (sum(m.received for m in sellers), sum(m.paid for m in sellers))
    disagree = [f"the auditor's {name}: {theirs.get(name)}, the demo's: {mine}" for name, mine in ours.items()
                if theirs.get(name) != mine]
    verdict = "MATCH" if audit.matches else "DIFFERENCES: " + "; ".join(audit.differences[:3])
    agreement = "are the demo's own" if not disagree else "differ: " + "; ".join(disagree)
    console.print(f"auditor: recomputed the day's {audit.offers_settled} settlements ({audit.lines} lines, "
                  f"{audit.disputes} dispute(s)) from calldata, events and proofs, and followed the money of "
                  f"{len(audit.parties)} parties in {time.perf_counter() - started:.1f} s: "
                  f"[{'green' if audit.matches else 'red'}]{verdict}[/]; its figures per buyer and for the "
                  f"sellers {agreement}")
    return {"audit": "MATCH" if audit.matches else "DIFFERENCES", "audit_differences": audit.differences,
            "audit_agrees": not disagree, "audit_parties": len(audit.parties)}
