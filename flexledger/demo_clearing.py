"""The demo's clearing step: the demo day cleared from chain data alone, DSO requests first."""

from __future__ import annotations

import time
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from flexledger.chain.connection import ChainConnection
from flexledger.chain.manifest import Manifest
from flexledger.market_day import load_market_day
from flexledger.optimiser import BuyerKind, clear
from flexledger.rules.clearing import violations
from flexledger.times import iso


def clearing_step(conn: ChainConnection, manifest: Manifest, market: int, day: int, console: Console) -> dict[str, Any]:
    started = time.perf_counter()
    loaded = load_market_day(conn, manifest, market, day)
    inp = loaded.clearing
    result = clear(inp)
    problems = violations(inp.offers, inp.requests, result.awards, parent=inp.parent, lights=inp.lights,
                          isp_seconds=inp.isp_seconds)
    s = result.stats
    console.print(f"cleared {len(inp.offers)} offers against {len(inp.requests)} requests from chain data alone: "
                  f"{len(result.awards)} awards, welfare {result.welfare / 100:,.2f} EUR, {s.status} (gap {s.gap:.2g}); "
                  f"model built in {s.build_seconds:.2f} s, solved in {s.solve_seconds:.2f} s")
    table = Table(title=f"what each request got, least and most over its ISPs ({inp.pricing.name})",
                  box=box.SIMPLE_HEAD)
    for column in ("request", "zone", "UTC", "kW", "got kW", "€/MWh"):
        table.add_column(column, justify="left" if column in ("request", "UTC") else "right", no_wrap=True)
    for r in inp.requests:
        mine = [a for a in result.awards if a.request_id == r.request_id]
        per_isp = [sum(a.power_w for a in mine if a.isp_start == r.start + k * inp.isp_seconds) for k in range(r.isps)]
        energy = sum(a.power_w for a in mine)
        average = sum(a.power_w * a.price for a in mine) / energy / 100 if energy else 0.0
        table.add_row(f"{r.request_id} {'TSO' if r.kind is BuyerKind.TSO else 'DSO'}", str(r.zone),
                      f"{iso(r.start)[11:16]}-{iso(r.start + r.isps * inp.isp_seconds)[11:16]}", f"{r.power_w / 1000:,.0f}",
                      f"{min(per_isp) / 1000:,.0f}-{max(per_isp) / 1000:,.0f}", f"{average:,.2f}")
    console.print(table)
    return {"offers": len(inp.offers), "requests": len(inp.requests), "awards": len(result.awards),
            "welfare": result.welfare, "status": s.status, "gap": s.gap, "feasible": not problems,
            "seconds": round(time.perf_counter() - started, 2)}
