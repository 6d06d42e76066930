"""The auditor: re-check a market day from public chain data alone.

``audit_clearing`` rebuilds the day's book from events (checked against the book's digest),
re-runs the clearing with the optimiser, re-checks the committed result's feasibility with the
Python rules (an award of an offer the commitment refuses at the gate closure included:
``refused_at_closure``), and compares the result in force with the re-run award by award.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from flexledger.clearing.commitment import (
    CommittedResult,
    day_state,
    find_superseded,
    read_result,
    welfare_value,
)
from flexledger.clearing.market_day import MarketDay, load_market_day
from flexledger.deployment import Deployment
from flexledger.optimiser import ClearingResult, clear
from flexledger.optimiser.results import Award
from flexledger.rules.clearing import ranks_higher, violations
from flexledger.rules.orders import overlapping_pairs


@dataclass
class ClearingAudit:
    market: int
    day: int
    result_id: int  # 0: no result on chain
    final: bool
    committed: CommittedResult | None
    rerun: ClearingResult
    differences: list[str] = field(default_factory=list)
    infeasible: list[str] = field(default_factory=list)

    @property
    def matches(self) -> bool:
        return self.result_id != 0 and not self.differences and not self.infeasible


def compare_awards(committed: list[Award], rerun: list[Award]) -> list[str]:
    """Every award that differs between two results, one line each (empty when they agree)."""
    def keyed(awards: list[Award]) -> dict[tuple[int, int, str], tuple[int, int]]:
        out: dict[tuple[int, int, str], tuple[int, int]] = {}
        for a in awards:
            power, price = out.get((a.request_id, a.isp_start, a.offer_key), (0, a.price))
            out[(a.request_id, a.isp_start, a.offer_key)] = (power + a.power_w, price)
        return out

    ours, theirs = keyed(rerun), keyed(committed)
    lines = []
    for key in sorted(set(ours) | set(theirs)):
        request, isp, offer = key
        where = f"request {request}, ISP {isp}, offer {offer[:12]}"
        if key not in theirs:
            lines.append(f"{where}: re-run awards {ours[key][0]} W at {ours[key][1]}, the result on chain nothing")
        elif key not in ours:
            lines.append(f"{where}: the result on chain awards {theirs[key][0]} W at {theirs[key][1]}, the re-run nothing")
        elif ours[key] != theirs[key]:
            lines.append(f"{where}: on chain {theirs[key][0]} W at {theirs[key][1]}, re-run {ours[key][0]} W at {ours[key][1]}")
    return lines


def refused_at_closure(awards: list[Award], refused: dict[str, str]) -> list[str]:
    """One line per awarded offer that the commitment refuses as judged at the day's gate closure
    (``MarketDay.refused``: membership, roles, mappings and a portfolio's power then). A result on
    chain holds one only if the contract let it through: the re-run never awards it."""
    return [f"offer {key[:12]} is awarded, but as of the day's gate closure the commitment refuses it "
            f"({refused[key]}; DESIGN \"Money safety\")" for key in sorted({a.offer_key for a in awards} & set(refused))]


def audit_clearing(
    deployment: Deployment, market: int, day: int, *, time_limit: float = 60.0,
    progress: Callable[[str], None] | None = None, loaded: MarketDay | None = None,
) -> ClearingAudit:
    say = progress or (lambda _msg: None)
    deployment.manifest.verify(deployment.conn)  # the operator's manifest is evidence to check, not a premise
    loaded = loaded or load_market_day(deployment, market, day, time_limit=time_limit, progress=progress)
    inp = loaded.clearing
    say("re-running the clearing")
    rerun = clear(inp)
    state = day_state(deployment, market, day)
    current, final = state.current, state.finalised
    if current == 0:
        return ClearingAudit(market, day, 0, False, None, rerun, ["no clearing result is in force for this day"])
    say(f"reading result {current} from the chain")
    committed = read_result(deployment, current, loaded.book)
    audit = ClearingAudit(market, day, current, final, committed, rerun)
    if committed.book_digest != loaded.book.digest:
        audit.differences.append(f"the result was computed on book 0x{committed.book_digest.hex()[:16]}, "
                                 f"the day's book is 0x{loaded.book.digest.hex()[:16]}")
    audit.infeasible = violations(inp.offers, inp.requests, committed.awards, parent=inp.parent, lights=inp.lights,
                                  isp_seconds=inp.isp_seconds)
    audit.infeasible += refused_at_closure(committed.awards, loaded.refused)
    offer_of = {"0x" + d.hex(): o for o, d in loaded.book.digests.items()}
    awarded = {offer_of[a.offer_key] for a in committed.awards if a.offer_key in offer_of}
    for older, newer in overlapping_pairs(sorted(awarded, key=lambda o: o.nonce), inp.isp_seconds):
        audit.infeasible.append(f"offers 0x{loaded.book.digests[older].hex()[:10]} and 0x{loaded.book.digests[newer].hex()[:10]} "
                                f"of {'asset ' + str(older.asset) if older.asset else 'portfolio ' + str(older.portfolio)} "
                                "are both awarded in a common ISP: one meter sold twice (rule 3)")
    for s in find_superseded(deployment.clearing, current, loaded.book):
        audit.infeasible.append(f"offer 0x{loaded.book.digests[s.older].hex()[:10]} was awarded, but the book replaced "
                                f"it with nonce {s.newer.nonce} (rule 3; `flexledger challenge --superseded` voids it)")
    award_lines = compare_awards(committed.awards, rerun.awards)
    on_chain, ours = (committed.dso_value, committed.tso_value), welfare_value(rerun.awards, loaded.book)
    audit.differences += award_lines + compare_welfare(on_chain, ours, rerun.stats.optimal)
    if award_lines and on_chain == ours:
        audit.differences.append(f"welfare (DSO, TSO, in W x price) {ours} on both sides: an allocation of the same "
                                 "rank, not the re-run's (ties are the clearing operator's, README \"## Clearing\")")
    return audit


def compare_welfare(on_chain: tuple[int, int], rerun: tuple[int, int], proven: bool) -> list[str]:
    """The two results' (DSO, TSO) welfare under the chain's ranking, one line if they differ."""
    if on_chain == rerun:
        return []
    where = f"welfare (DSO, TSO, in W x price): on chain {on_chain}, re-run {rerun}"
    if ranks_higher(rerun, on_chain):
        return [f"{where}: the re-run ranks higher (a challenge with it would replace the result)"]
    return [f"{where}: the result on chain ranks higher" +
            (" - the re-run did not reach a proven optimum" if not proven else " than a proven optimum: report this")]
