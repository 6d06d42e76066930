"""The money of a market day's settlements, followed from public chain data (the settlement
auditor's second half, see ``flexledger.audit.settlement``).

What the rules say each party paid and received, from the day's lines recomputed by the rules,
is held against what the chain shows: the contracts' events (``SettlementFinalised``,
``EscrowPaid``, ``BondDrawn``, ``Refunded``, ``Withdrawn``), the settlement token's ERC-20
``Transfer`` events from and to the OrderBook and the Settlement, and the contracts' state.

- A finalisation credits the seller its claims (paid out of the escrow to the Settlement) and
  draws each uncovered penalty from the seller's bond for the line's buyer, in line order, each
  draw ``min(uncovered, bond left)`` (the bond left follows from the seller's ``BondPosted``,
  ``BondWithdrawn`` and ``BondDrawn`` events before it); what the bond cannot cover is a debt.
- A refund returns ``escrow - sum(claims)`` of the request (``flexledger.rules.settlement``:
  the penalties withheld from payments stay in the escrow, so they go back with it).
- A withdrawal moves what the Settlement says (``Withdrawn``) to the account, and, over all
  days, each party's ``claimable`` is its credits less its withdrawals; the Settlement's token
  balance is the sum of what everyone may still claim and of the debt repayments held for
  creditors.
- Debts, over all days, replayed in chain order as the Settlement must hold them: a finalisation
  records each line's ``uncovered - drawn`` as owed to that line's buyer; an indebted seller's
  claims repay ``min(claimed, debt)`` at once (``DebtRepaid`` in the same call), so it is credited
  only the rest; ``payDebt`` repays at most the debt (``DebtRepaid`` with the tokens moved in); a
  ``DebtCollected`` takes ``min(owed to that buyer, repaid and held)`` (first come first served).
  A repayment above the debt left (a debt repaid twice), a collection above what was owed or held,
  a ``left`` that is not the debt left, ``debtOf`` / ``repaidOf`` / ``owedTo`` against the replay,
  and the OrderBook's indebted flag (and its last ``SellerDebtChanged``) against a debt left are
  differences.

Figures are token base units (cents).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from flexledger.book.order_book import Book
from flexledger.chain.bindings import SettlementTokenClient
from flexledger.chain.events import DecodedEvent
from flexledger.chain.structs import Line, Record, Request
from flexledger.deployment import Deployment
from flexledger.rules.market import MarketParams
from flexledger.rules.orders import BondState, max_exposure
from flexledger.rules.settlement import bond_draw
from flexledger.settlement.records import line_penalty, settled_key

Position = tuple[int, int]  # (block, log index): the chain's order of events


@dataclass
class Money:
    """One party's figures of the day (base units)."""

    escrowed: int = 0  # buyer: put in escrow for the day's requests
    paid: int = 0  # buyer: its escrows' payments to sellers (claims); seller: drawn from its bond
    received: int = 0  # seller: claims credited; buyer: penalties drawn from sellers' bonds
    penalties: int = 0  # seller: penalties charged (withheld from payments, drawn from the bond, or debt)
    refunded: int = 0  # buyer: escrow returned
    withdrawn: int = 0  # withdrawn from the Settlement (any day's claims: withdrawals are not per day)
    debt: int = 0  # seller: penalties its bond could not cover
    repaid: int = 0  # seller: its debts repaid, from its claims or by anyone (all days)
    collected: int = 0  # buyer: debts collected from sellers (all days)

    def to_json(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class PartyMoney:
    """What the rules say a party paid and received (``rules``) against what the token's Transfer
    events and the contracts' events and state show (``chain``)."""

    address: str
    roles: set[str] = field(default_factory=set)
    rules: Money = field(default_factory=Money)
    chain: Money = field(default_factory=Money)

    @property
    def role(self) -> str:
        return "+".join(sorted(self.roles))

    @property
    def matches(self) -> bool:
        return self.rules == self.chain

    def to_json(self) -> dict[str, Any]:
        return {"address": self.address, "role": self.role, "rules": self.rules.to_json(),
                "chain": self.chain.to_json(), "match": self.matches}


@dataclass
class MoneyInputs:
    deployment: Deployment
    book: Book
    params: MarketParams
    result_id: int
    lines: dict[tuple[int, bytes], list[Line]]  # the records in force, recomputed by the rules
    records: dict[tuple[int, bytes], Record]  # the records in force, as logged
    request: Callable[[int], Request]


@dataclass
class MoneyAudit:
    parties: dict[str, PartyMoney] = field(default_factory=dict)
    differences: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    final: int = 0


def _topic(value: int | str | bytes) -> str:
    if isinstance(value, str):
        return "0x" + bytes.fromhex(value.removeprefix("0x")).rjust(32, b"\0").hex()
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return "0x" + value.to_bytes(32, "big").hex()


def _pos(e: DecodedEvent) -> Position:
    return (e.block_number, e.log_index)


def _by_tx(events: list[DecodedEvent]) -> dict[str, list[DecodedEvent]]:
    out: dict[str, list[DecodedEvent]] = defaultdict(list)
    for e in sorted(events, key=_pos):
        out[e.tx_hash].append(e)
    return out


def _segment(events: list[DecodedEvent], tx_hash: str, after: int, before: int) -> list[DecodedEvent]:
    """The events of ``tx_hash`` logged between two log indexes (one call's share of a transaction)."""
    return [e for e in events if e.tx_hash == tx_hash and after < e.log_index < before]


class _Chain:
    """The events the money audit reads, each kind read once."""

    def __init__(self, inp: MoneyInputs) -> None:
        self.conn = inp.deployment.conn
        self.settlement = inp.deployment.settlement
        self.orders = inp.deployment.order_book
        # the token Settlement pays in, as it names it (the manifest does not vouch for it)
        self.token = inp.deployment.at(SettlementTokenClient, self.settlement.token())
        s, b = self.settlement.address, self.orders.address
        self.finalised = sorted(self.settlement.events("SettlementFinalised"), key=_pos)
        self.settled = sorted(self.settlement.events("OfferSettled"), key=_pos)
        self.withdrawn = sorted(self.settlement.events("Withdrawn"), key=_pos)
        self.drawn = sorted(self.orders.events("BondDrawn", topics=[None, _topic(s)]), key=_pos)
        self.from_book = sorted(self.token.events("Transfer", topics=[_topic(b)]), key=_pos)
        self.from_settlement = sorted(self.token.events("Transfer", topics=[_topic(s)]), key=_pos)
        self.records: dict[tuple[int, bytes], list[tuple[Position, Record]]] = defaultdict(list)
        for e in self.settled:
            record: Record = e.args["record"]
            self.records[settled_key(record)].append((_pos(e), record))
        self._bonds: dict[str, list[tuple[Position, int]]] = {}
        self.drawn_at = {_pos(e) for e in self.drawn}  # draws for penalties: the bond paying, not leaving
        self.repaid = sorted(self.settlement.events("DebtRepaid"), key=_pos)
        self.collected = sorted(self.settlement.events("DebtCollected"), key=_pos)
        self.to_settlement = sorted(self.token.events("Transfer", topics=[None, _topic(s)]), key=_pos)

    def bond_events(self, seller: str) -> list[tuple[Position, int]]:
        """The seller's bond changes in chain order (+ posted, - withdrawn or drawn)."""
        if seller not in self._bonds:
            topic = [_topic(seller)]
            changes = [(_pos(e), int(e.args["amount"])) for e in self.orders.events("BondPosted", topics=topic)]
            changes += [(_pos(e), -int(e.args["amount"])) for e in self.orders.events("BondWithdrawn", topics=topic)]
            changes += [(_pos(e), -int(e.args["amount"])) for e in self.orders.events("BondDrawn", topics=topic)]
            self._bonds[seller] = sorted(changes)
        return self._bonds[seller]

    def bond_before(self, seller: str, at: Position) -> int:
        return sum(amount for pos, amount in self.bond_events(seller) if pos < at)


def audit_money(inp: MoneyInputs) -> MoneyAudit:
    out = MoneyAudit()
    chain = _Chain(inp)

    def party(address: str, role: str) -> PartyMoney:
        p = out.parties.setdefault(address, PartyMoney(address))
        p.roles.add(role)
        return p

    for info in inp.book.requests.values():
        party(str(info["buyer"]), "buyer")
    for record in inp.records.values():
        party(record.seller, "seller")
    _escrows(inp, chain, party, out)
    claims_of = _finalisations(inp, chain, party, out)
    _refunds(inp, chain, party, out, claims_of)
    ledger = _debts(inp, chain, out)
    _withdrawals(inp, chain, out, ledger)
    _bonds_left_while_pending(inp, chain, out)
    return out


def _bonds_left_while_pending(inp: MoneyInputs, chain: _Chain, out: MoneyAudit) -> None:
    """DESIGN (money safety): a seller's bond covers its penalties from the moment its awards are
    final until their settlements are. Flag every bond withdrawal of a seller of the day after
    its result came into force and before the seller's last settlement of the day was final."""
    closed = [_pos(e) for e in inp.deployment.clearing.events("ResultClosed", topics=[_topic(inp.result_id)])]
    if not closed:
        return
    final_at: dict[str, Position | None] = {}
    finalised = {(int(f.args["resultId"]), bytes(f.args["offerDigest"])): _pos(f) for f in chain.finalised}
    for key, record in inp.records.items():
        at = finalised.get(key)
        last = final_at.get(record.seller, (0, 0))
        final_at[record.seller] = None if at is None or last is None else max(at, last)
    for seller, until in sorted(final_at.items()):
        for pos, amount in chain.bond_events(seller):
            if amount < 0 and closed[0] < pos and (until is None or pos < until) and pos not in chain.drawn_at:
                out.differences.append(f"seller {seller}: {-amount} of its bond left at block {pos[0]} while its "
                                       "penalties of the day were pending")


def _escrows(inp: MoneyInputs, chain: _Chain, party: Callable[[str, str], PartyMoney], out: MoneyAudit) -> None:
    """Each request's escrow: the rules' maximum exposure, the amount logged, the tokens moved in."""
    posted = chain.orders.events("RequestPosted", topics=[None, _topic(inp.book.market), _topic(inp.book.day_start)])
    to_book = _by_tx(chain.token.events("Transfer", topics=[None, _topic(chain.orders.address)]))
    by_tx: dict[str, int] = defaultdict(int)
    for e in posted:
        request_id = int(e.args["requestId"])
        if request_id not in inp.book.requests:
            continue  # cancelled: its escrow went back at once, outside settlement
        p = inp.book.requests[request_id]["params"]
        buyer = party(str(e.args["buyer"]), "buyer")
        buyer.rules.escrowed += max_exposure(p.power_w, p.isps, inp.params.isp_seconds, p.max_price)
        buyer.chain.escrowed += int(e.args["escrow"])
        by_tx[e.tx_hash] += int(e.args["escrow"])
        paid = sum(int(t.args["value"]) for t in to_book.get(e.tx_hash, [])
                   if str(t.args["from"]).lower() == str(e.args["buyer"]).lower())
        if paid < by_tx[e.tx_hash]:
            out.differences.append(f"request {request_id}: escrow {e.args['escrow']} logged, but the transaction "
                                   f"moved {paid} from its buyer to the OrderBook")


def _finalisations(inp: MoneyInputs, chain: _Chain, party: Callable[[str, str], PartyMoney],
                   out: MoneyAudit) -> dict[int, int]:
    """Each final settlement of the day; returns the claims the rules pay out of each request."""
    claims_of: dict[int, int] = defaultdict(int)
    escrow_paid = _by_tx(chain.orders.events("EscrowPaid", topics=[None, _topic(chain.settlement.address)]))
    for f in chain.finalised:
        key = (int(f.args["resultId"]), bytes(f.args["offerDigest"]))
        if key[0] != inp.result_id:
            continue
        record = inp.records.get(key)
        if record is None:
            out.differences.append(f"offer 0x{key[1].hex()[:10]} was finalised but has no record")
            continue
        out.final += 1
        lines = inp.lines[key]
        where = f"offer 0x{key[1].hex()[:10]} finalised in {f.tx_hash}"
        earlier = [g.log_index for g in chain.finalised if g.tx_hash == f.tx_hash and g.log_index < f.log_index]
        after = max(earlier, default=-1)
        seller = party(record.seller, "seller")
        claimed, from_bond, debt = int(f.args["claimed"]), int(f.args["fromBond"]), int(f.args["debt"])
        # escrow paid for the claims, line by line
        paid = _segment(escrow_paid.get(f.tx_hash, []), f.tx_hash, after, f.log_index)
        expected = [(ln.request_id, ln.claim) for ln in lines if ln.claim]
        seen = [(int(e.args["requestId"]), int(e.args["amount"])) for e in paid]
        if seen != expected:
            out.differences.append(f"{where}: escrow paid {seen}, the rules' claims are {expected}")
        for request_id, amount in seen:
            party(inp.request(request_id).buyer, "buyer").chain.paid += amount
        # bond draws, one per line with an uncovered penalty, in line order
        draws = _segment(chain.drawn, f.tx_hash, after, f.log_index)
        owed = [ln for ln in lines if ln.uncovered]
        if len(draws) != len(owed):
            out.differences.append(f"{where}: {len(draws)} bond draws for {len(owed)} uncovered penalties")
        rules_drawn = 0
        for ln, e in zip(owed, draws, strict=False):
            want = bond_draw(ln.uncovered, chain.bond_before(record.seller, _pos(e)))
            got = int(e.args["amount"])
            if got != want:
                out.differences.append(f"{where}: drew {got} from the bond for request {ln.request_id}, the rules "
                                       f"{want} (uncovered {ln.uncovered})")
            buyer = party(inp.request(ln.request_id).buyer, "buyer")
            buyer.rules.received += want
            buyer.chain.received += got
            rules_drawn += want
        rules_claimed = sum(ln.claim for ln in lines)
        for ln in lines:
            claims_of[ln.request_id] += ln.claim
            party(inp.request(ln.request_id).buyer, "buyer").rules.paid += ln.claim
        seller.rules.received += rules_claimed
        seller.rules.paid += rules_drawn
        seller.rules.penalties += sum(line_penalty(ln) for ln in lines)
        seller.rules.debt += sum(ln.uncovered for ln in lines) - rules_drawn
        seller.chain.received += claimed
        seller.chain.paid += from_bond
        seller.chain.penalties += sum(ln.payment for ln in record.lines) - claimed + from_bond + debt
        seller.chain.debt += debt
        if (claimed, from_bond) != (rules_claimed, rules_drawn):
            out.differences.append(f"{where}: claimed {claimed} and drew {from_bond} from the bond, the rules "
                                   f"{rules_claimed} and {rules_drawn}")
        moved = sum(int(t.args["value"]) for t in _segment(chain.from_book, f.tx_hash, after, f.log_index)
                    if str(t.args["to"]).lower() == chain.settlement.address.lower())
        if moved != claimed + from_bond:
            out.differences.append(f"{where}: the token moved {moved} from the OrderBook to the Settlement, "
                                   f"the event says {claimed} + {from_bond}")
    final_keys = {(int(f.args["resultId"]), bytes(f.args["offerDigest"])) for f in chain.finalised}
    pending = sum(1 for k in inp.records if k not in final_keys)
    if pending:
        out.notes.append(f"{pending} settlement(s) not final yet: their money has not moved")
    return claims_of


def _refunds(inp: MoneyInputs, chain: _Chain, party: Callable[[str, str], PartyMoney], out: MoneyAudit,
             claims_of: dict[int, int]) -> None:
    """Each refund: the escrow less the claims paid out of it, returned to the buyer."""
    if not inp.book.requests:
        return
    ids = sorted(inp.book.requests)
    refunded = chain.settlement.events("Refunded", topics=[[_topic(i) for i in ids]])
    not_refunded = set(ids) - {int(e.args["requestId"]) for e in refunded}
    for e in sorted(refunded, key=_pos):
        request_id = int(e.args["requestId"])
        info = inp.book.requests[request_id]
        p = info["params"]
        buyer = party(str(info["buyer"]), "buyer")
        rules = max_exposure(p.power_w, p.isps, inp.params.isp_seconds, p.max_price) - claims_of[request_id]
        amount = int(e.args["amount"])
        buyer.rules.refunded += rules
        buyer.chain.refunded += amount
        if amount != rules:
            out.differences.append(f"request {request_id}: refunded {amount}, the rules {rules}")
        later = [g.log_index for g in refunded if g.tx_hash == e.tx_hash and g.log_index > e.log_index]
        moved = sum(int(t.args["value"]) for t in _segment(chain.from_book, e.tx_hash, e.log_index, min(later, default=2**62))
                    if str(t.args["to"]).lower() == str(info["buyer"]).lower())
        if moved != amount:
            out.differences.append(f"request {request_id}: the refund moved {moved} tokens to the buyer, the event "
                                   f"says {amount}")
    for request_id in sorted(not_refunded):
        left = int(chain.orders.escrow_left(request_id))
        info = inp.book.requests[request_id]
        p = info["params"]
        expected = max_exposure(p.power_w, p.isps, inp.params.isp_seconds, p.max_price) - claims_of[request_id]
        if left != expected:  # the escrow less the claims of the final settlements, pending ones or not
            out.differences.append(f"request {request_id}: {left} left in escrow, the rules {expected}")
    if not_refunded:
        out.notes.append(f"{len(not_refunded)} request(s) not refunded yet")


def _withdrawals(inp: MoneyInputs, chain: _Chain, out: MoneyAudit, ledger: DebtLedger) -> None:
    """Withdrawals against the token's transfers, and every party's claimable over all days."""
    for e in chain.withdrawn:
        account = str(e.args["account"])
        p = out.parties.get(account)
        if p is None:
            continue
        moved = sum(int(t.args["value"]) for t in chain.from_settlement
                    if t.tx_hash == e.tx_hash and t.log_index > e.log_index
                    and str(t.args["to"]).lower() == account.lower())
        p.rules.withdrawn += int(e.args["amount"])
        p.chain.withdrawn += moved
    credits = _credits(inp, chain)
    for seller, repaid in ledger.from_claims.items():  # an indebted seller's claims went to its debt
        credits[seller] -= repaid
    withdrawn: dict[str, int] = defaultdict(int)
    for e in chain.withdrawn:
        withdrawn[str(e.args["account"])] += int(e.args["amount"])
    # every party's state read in JSON-RPC batches: hundreds of parties, one round trip per 500
    everyone = sorted(set(out.parties) | set(credits))
    claimables = dict(zip(everyone, (int(v) for v in chain.settlement.call_many(
        "claimable(address)", [(a,) for a in everyone])), strict=True))
    sellers = [a for a, p in sorted(out.parties.items()) if "seller" in p.roles]
    bonds_of = dict(zip(sellers, (int(v) for v in chain.orders.call_many(
        "bondOf(address)", [(a,) for a in sellers])), strict=True))
    for address, p in sorted(out.parties.items()):
        claimable = claimables[address]
        if claimable != credits[address] - withdrawn[address]:
            out.differences.append(f"{address}: may claim {claimable}, but was credited {credits[address]} and "
                                   f"withdrew {withdrawn[address]} (all days)")
        if "seller" in p.roles:
            bond = bonds_of[address]
            logged = sum(amount for _pos_, amount in chain.bond_events(address))
            if bond != logged:
                out.differences.append(f"{address}: bond {bond} by the contract, {logged} by its events")
    held = int(chain.token.balance_of(chain.settlement.address))
    owed = sum(claimables[a] for a in credits) + sum(ledger.held.values())
    if held < owed:
        out.differences.append(f"the Settlement holds {held} tokens, but owes {owed} in claims and debt "
                               "repayments held for creditors")
    elif held > owed:  # tokens sent to it directly: nobody's claim, nobody short
        out.notes.append(f"the Settlement holds {held - owed} tokens more than it owes in claims")


def _record_before(chain: _Chain, f: DecodedEvent) -> Record | None:
    """The record a finalisation made final: its offer's latest ``OfferSettled`` before it."""
    key = (int(f.args["resultId"]), bytes(f.args["offerDigest"]))
    found = None
    for pos, record in chain.records.get(key, []):
        if pos < _pos(f):
            found = record
    return found


def _credits(inp: MoneyInputs, chain: _Chain) -> dict[str, int]:
    """What every account was credited by every finalisation (all days): the seller its claims,
    each line's buyer what was drawn from the bond for it."""
    credits: dict[str, int] = defaultdict(int)
    for f in chain.finalised:
        record = _record_before(chain, f)
        if record is None:
            continue
        credits[record.seller] += int(f.args["claimed"])
        earlier = [g.log_index for g in chain.finalised if g.tx_hash == f.tx_hash and g.log_index < f.log_index]
        draws = _segment(chain.drawn, f.tx_hash, max(earlier, default=-1), f.log_index)
        for ln, e in zip([ln for ln in record.lines if ln.uncovered], draws, strict=False):
            credits[inp.request(ln.request_id).buyer] += int(e.args["amount"])
    return credits


@dataclass
class DebtLedger:
    """Every seller's debts replayed from the events (all days), as the Settlement must hold them."""

    debt: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # not yet repaid
    held: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # repaid, not yet collected
    owed: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))  # (seller, buyer)
    from_claims: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # repaid out of claims


def _debts(inp: MoneyInputs, chain: _Chain, out: MoneyAudit) -> DebtLedger:
    """Replay the debts: recorded at finalisations, repaid (claims first, or ``payDebt``), collected."""
    ledger = DebtLedger()
    kinds = [(_pos(e), 0, e) for e in chain.finalised] + [(_pos(e), 1, e) for e in chain.repaid]
    kinds += [(_pos(e), 2, e) for e in chain.collected]
    expect: tuple[str, str, int] | None = None  # (tx, seller, amount) its claims must repay next
    for _at, kind, e in sorted(kinds, key=lambda k: k[0]):
        if expect is not None and not (kind == 1 and e.tx_hash == expect[0]
                                       and str(e.args["seller"]).lower() == expect[1].lower()):
            out.differences.append(f"{expect[1]}: its claims should have repaid {expect[2]} of its debt in "
                                   f"{expect[0]}, no repayment was logged")
            ledger.debt[expect[1]] -= expect[2]
            expect = None
        if kind == 0:
            expect = _debt_recorded(inp, chain, out, ledger, e)
        elif kind == 1:
            seller, amount, left = str(e.args["seller"]), int(e.args["amount"]), int(e.args["left"])
            owed = ledger.debt[seller]
            if expect is not None:  # the finalisation's claims, repaying first
                if amount != expect[2]:
                    out.differences.append(f"{seller}: its claims repaid {amount} of its debt in {e.tx_hash}, the "
                                           f"rules {expect[2]} (min of the claims and the {owed} owed)")
                ledger.from_claims[seller] += amount
                expect = None
            else:  # payDebt: the payer's tokens came in with it
                moved = sum(int(t.args["value"]) for t in chain.to_settlement
                            if t.tx_hash == e.tx_hash and t.log_index > e.log_index)
                if moved != amount:
                    out.differences.append(f"{seller}: {amount} of its debt repaid in {e.tx_hash}, but {moved} "
                                           "tokens came in")
            if amount > owed:
                out.differences.append(f"{seller}: {amount} of its debt repaid at block {e.block_number}, but only "
                                       f"{owed} was owed (repaid twice?)")
            if left != owed - amount:
                out.differences.append(f"{seller}: {left} of its debt left after a repayment at block "
                                       f"{e.block_number}, the replay {owed - amount}")
            ledger.debt[seller] = owed - amount
            ledger.held[seller] += amount
            if seller in out.parties:
                out.parties[seller].rules.repaid += amount
                out.parties[seller].chain.repaid += amount
        else:
            _debt_collected(chain, out, ledger, e)
    if expect is not None:
        out.differences.append(f"{expect[1]}: its claims should have repaid {expect[2]} of its debt in {expect[0]}, "
                               "no repayment was logged")
        ledger.debt[expect[1]] -= expect[2]
    _debts_against_state(chain, out, ledger)
    return ledger


def _debt_recorded(inp: MoneyInputs, chain: _Chain, out: MoneyAudit, ledger: DebtLedger,
                   f: DecodedEvent) -> tuple[str, str, int] | None:
    """A finalisation's new debts, per buyer; returns what its claims must repay at once."""
    record = _record_before(chain, f)
    if record is None:
        return None
    earlier = [g.log_index for g in chain.finalised if g.tx_hash == f.tx_hash and g.log_index < f.log_index]
    draws = _segment(chain.drawn, f.tx_hash, max(earlier, default=-1), f.log_index)
    recorded = 0
    for ln, e in zip([ln for ln in record.lines if ln.uncovered], draws, strict=False):
        unpaid = ln.uncovered - int(e.args["amount"])
        if unpaid:
            ledger.owed[(record.seller, inp.request(ln.request_id).buyer)] += unpaid
            recorded += unpaid
    if recorded != int(f.args["debt"]):
        out.differences.append(f"offer 0x{record.offer_digest.hex()[:10]} finalised in {f.tx_hash}: debt {f.args['debt']} "
                               f"logged, its lines leave {recorded} unpaid by the bond")
    ledger.debt[record.seller] += recorded
    repay = min(int(f.args["claimed"]), ledger.debt[record.seller])
    return (f.tx_hash, record.seller, repay) if repay else None


def _debt_collected(chain: _Chain, out: MoneyAudit, ledger: DebtLedger, e: DecodedEvent) -> None:
    seller, buyer, amount = str(e.args["seller"]), str(e.args["buyer"]), int(e.args["amount"])
    owed, held = ledger.owed[(seller, buyer)], ledger.held[seller]
    rules = min(owed, held)
    if amount != rules:
        out.differences.append(f"{buyer} collected {amount} of {seller}'s debt at block {e.block_number}, but was "
                               f"owed {owed} of which {held} was repaid and held: the rules {rules}")
    moved = sum(int(t.args["value"]) for t in chain.from_settlement
                if t.tx_hash == e.tx_hash and t.log_index > e.log_index and str(t.args["to"]).lower() == buyer.lower())
    if moved != amount:
        out.differences.append(f"{buyer} collected {amount} of {seller}'s debt in {e.tx_hash}, but {moved} tokens "
                               "were sent to it")
    ledger.owed[(seller, buyer)] = owed - amount
    ledger.held[seller] = held - amount
    if buyer in out.parties:
        out.parties[buyer].rules.collected += rules
        out.parties[buyer].chain.collected += amount


def _debts_against_state(chain: _Chain, out: MoneyAudit, ledger: DebtLedger) -> None:
    """``debtOf``, ``repaidOf`` and ``owedTo`` as the contract holds them, against the replay."""
    sellers = sorted(set(ledger.debt) | set(ledger.held) | {s for s, _b in ledger.owed})
    if not sellers:
        return
    pairs = sorted(ledger.owed)
    values = [int(v) for v in chain.settlement.call_many("debtOf(address)", [(s,) for s in sellers])]
    values += [int(v) for v in chain.settlement.call_many("repaidOf(address)", [(s,) for s in sellers])]
    owed_to = [int(v) for v in chain.settlement.call_many("owedTo(address,address)", pairs)] if pairs else []
    for i, seller in enumerate(sellers):
        debt, held = values[i], values[len(sellers) + i]
        if debt != ledger.debt[seller]:
            out.differences.append(f"{seller}: owes {debt} by the contract, {ledger.debt[seller]} by its "
                                   "finalisations and repayments")
        if held != ledger.held[seller]:
            out.differences.append(f"{seller}: {held} of its repaid debt held for creditors by the contract, "
                                   f"{ledger.held[seller]} by its repayments and collections")
    # the OrderBook's flag: a seller with debt does not sell, and one whose debt is repaid may again
    words = [int(v) for v in chain.orders.call_many("bondWord(address)", [(s,) for s in sellers])]
    flags = {str(e.args["seller"]).lower(): bool(e.args["indebted"])  # the last one per seller counts
             for e in sorted(chain.orders.events("SellerDebtChanged"), key=_pos)}
    for seller, word in zip(sellers, words, strict=True):
        indebted = BondState.from_word(word).indebted
        last = flags.get(seller.lower(), False)
        if indebted != (ledger.debt[seller] > 0) or last != indebted:
            out.differences.append(f"{seller}: the OrderBook holds it {'in' if indebted else 'out of'} debt (last "
                                   f"SellerDebtChanged: {last}), but it owes {ledger.debt[seller]}")
    for (seller, buyer), value in zip(pairs, owed_to, strict=True):
        if value != ledger.owed[(seller, buyer)]:
            out.differences.append(f"{seller} owes {buyer} {value} by the contract, {ledger.owed[(seller, buyer)]} "
                                   "by its debts recorded and collected")
