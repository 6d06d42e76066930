"""The demo's clearing step: the demo day's gate closure passes (anvil time travel); the clearing
operator clears the day from chain data alone, DSO requests first, and commits the result to
ClearingCommitment, which checks every award; the challenge window passes, the day is finalised,
and the auditor re-runs the clearing and compares it with the result on chain, award by award."""

from __future__ import annotations

import time
from fractions import Fraction
from typing import Any

from eth_account.signers.local import LocalAccount
from rich import box
from rich.console import Console
from rich.table import Table

from flexledger.audit.clearing import audit_clearing
from flexledger.chain.transactions import Signer
from flexledger.clearing.commitment import commit
from flexledger.clearing.market_day import load_market_day
from flexledger.clearing.run import rule_problems
from flexledger.demo.money import eur
from flexledger.deployment import Deployment
from flexledger.optimiser import BuyerKind, clear
from flexledger.times import iso


def clearing_step(chain: Deployment, operator: LocalAccount, market: int, day: int,
                  console: Console) -> dict[str, Any]:
    started = time.perf_counter()
    conn = chain.conn
    loaded = load_market_day(chain, market, day)
    closure = loaded.params.gate_closure(day)
    conn.set_next_block_timestamp(closure + 1)
    conn.mine()
    console.print(f"time travel to {iso(closure + 1)}: the day's gate closure has passed, its book is final")
    inp = loaded.clearing
    result = clear(inp)
    problems = rule_problems(loaded, result.awards)
    s = result.stats
    console.print(f"cleared {len(inp.offers)} offers against {len(inp.requests)} requests from chain data alone: "
                  f"{len(result.awards)} awards, welfare {eur(result.welfare)} EUR, {s.status} (gap {s.gap:.2g}); "
                  f"model built in {s.build_seconds:.2f} s, solved in {s.solve_seconds:.2f} s")
    table = Table(title=f"what each request got, least and most over its ISPs ({inp.pricing.name})",
                  box=box.SIMPLE_HEAD)
    for column in ("request", "zone", "UTC", "kW", "got kW", "€/MWh"):
        table.add_column(column, justify="left" if column in ("request", "UTC") else "right", no_wrap=True)
    for r in inp.requests:
        mine = [a for a in result.awards if a.request_id == r.request_id]
        per_isp = [sum(a.power_w for a in mine if a.isp_start == r.start + k * inp.isp_seconds) for k in range(r.isps)]
        energy = sum(a.power_w for a in mine)
        average = Fraction(sum(a.power_w * a.price for a in mine), energy) if energy else Fraction(0)  # per MWh
        table.add_row(f"{r.request_id} {'TSO' if r.kind is BuyerKind.TSO else 'DSO'}", str(r.zone),
                      f"{iso(r.start)[11:16]}-{iso(r.start + r.isps * inp.isp_seconds)[11:16]}", f"{r.power_w / 1000:,.0f}",
                      f"{min(per_isp) / 1000:,.0f}-{max(per_isp) / 1000:,.0f}", eur(average))
    console.print(table)

    signer = Signer(operator, conn)
    conn.request("anvil_setBalance", [signer.address, hex(10**20)])
    operating = chain.signed_by(signer)
    clearing = operating.clearing
    posted = commit(operating, market, day, result.awards, loaded.book)
    result_id, gas, chunks, ends = posted.result_id, posted.gas_used, posted.chunks, posted.state.challenge_ends
    dso, tso = clearing.welfare(result_id)
    console.print(f"committed as result {result_id} in {chunks} chunk(s): the contract checked all "
                  f"{len(result.awards)} awards and counts welfare {eur(dso + tso)} EUR (DSO {eur(dso)}, "
                  f"TSO {eur(tso)}); {gas:,} gas, {gas // max(len(result.awards), 1):,} per award")
    conn.set_next_block_timestamp(ends + 1)
    conn.mine()
    clearing.finalise(market, day)
    console.print(f"time travel to {iso(ends + 1)}: no better result was posted in the challenge window; "
                  f"result {result_id} is final and its awards are activation orders")
    audit = audit_clearing(chain, market, day)
    verdict = "MATCH" if audit.matches else "DIFFERENCES: " + "; ".join((audit.differences + audit.infeasible)[:3])
    console.print(f"auditor: re-ran the clearing from chain data and compared {len(audit.rerun.awards)} awards: "
                  f"[{'green' if audit.matches else 'red'}]{verdict}[/]")
    return {"offers": len(inp.offers), "requests": len(inp.requests), "awards": len(result.awards),
            "welfare": result.welfare, "status": s.status, "gap": s.gap, "feasible": not problems,
            "result_id": result_id, "commit_gas": gas, "gas_per_award": gas // max(len(result.awards), 1),
            "chain_welfare": dso + tso, "audit": "MATCH" if audit.matches else "DIFFERENCES",
            "seconds": round(time.perf_counter() - started, 2)}
