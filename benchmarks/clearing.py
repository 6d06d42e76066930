"""Seconds to clear a market day (model building and solving apart) and the optimality gap, for
1,000, 10,000 and 100,000 offers over 96 ISPs, a thousand zones in four levels (a TSO area, 9 DSO
perimeters, 90 substations, 900 feeders) and a mix of every utilisation mode and block offers.

Run: .venv/bin/python benchmarks/clearing.py [--dense] [--seed N[,N...]] [--backend highs|pyomo] [OFFERS...]
(or `make bench`). With several seeds each day is cleared once per seed and the worst time is kept.
Targets (clearing issue): 10,000 offers in at most 3 s, 100,000 in at most 60 s, on this 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import time

from _common import report  # benchmarks/ is on sys.path when a script runs

from flexledger.optimiser import BuyerKind, ClearingInput, OfferIn, RequestIn, clear
from flexledger.rules.clearing import violations
from flexledger.rules.lights import Colour, Direction, Light
from flexledger.rules.orders import Mode

DAY = 1_800_028_800 - 1_800_028_800 % 86_400
ISP = 900
SIZES = (1_000, 10_000, 100_000)


def grid() -> tuple[dict[int, int], list[int], list[int], list[int]]:
    parent = {1: 0}
    perimeters = list(range(2, 11))
    substations = list(range(11, 101))
    feeders = list(range(101, 1001))
    for p in perimeters:
        parent[p] = 1
    for i, s in enumerate(substations):
        parent[s] = perimeters[i // 10]
    for i, f in enumerate(feeders):
        parent[f] = substations[i // 10]
    return parent, perimeters, substations, feeders


def book(n: int, seed: int = 1, *, dense: bool = False) -> ClearingInput:
    """A synthetic day. ``dense``: every substation and the TSO buy in every ISP, so every offer
    can trade (the hardest case for the model; real congestion is seldom all day)."""
    rng = random.Random(seed)
    parent, perimeters, substations, feeders = grid()
    offers = []
    for k in range(n):
        kind = rng.random()
        isps = rng.choice((2, 3, 4)) if kind >= 0.8 else 1
        start = DAY + rng.randrange(0, 97 - isps) * ISP
        power = rng.randrange(2_000, 50_000, 500)
        mode = Mode.DIVISIBLE if kind < 0.55 else Mode.MIN_QUANTITY if kind < 0.7 else Mode.ALL_OR_NOTHING if kind < 0.8 \
            else rng.choice(list(Mode))
        minimum = {Mode.DIVISIBLE: 0, Mode.MIN_QUANTITY: power // 2, Mode.ALL_OR_NOTHING: power}[mode]
        offers.append(OfferIn(f"{k:08x}", rng.choice(feeders), start, isps, Direction(int(rng.random() < 0.2)), power,
                              rng.randrange(5_000, 30_000, 50), mode, minimum))
    # requests sized to the offers: each substation and perimeter has congestion in two windows,
    # the TSO buys balancing power at the area in eight
    scale = n / 100_000
    requests = []
    for zone, count, size in ((s, 2, 400_000) for s in substations):
        for _ in range(count):
            isps = rng.randrange(4, 17)
            requests.append(RequestIn(len(requests) + 1, BuyerKind.DSO, zone, DAY + rng.randrange(0, 97 - isps) * ISP, isps,
                                      Direction.UP, max(10_000, int(size * scale * rng.uniform(0.5, 1.5))),
                                      rng.randrange(15_000, 40_000, 100)))
    for zone in perimeters:
        for _ in range(2):
            isps = rng.randrange(4, 17)
            requests.append(RequestIn(len(requests) + 1, BuyerKind.DSO, zone, DAY + rng.randrange(0, 97 - isps) * ISP,
                                      isps, Direction(int(rng.random() < 0.3)), max(50_000, int(3_000_000 * scale)),
                                      rng.randrange(15_000, 40_000, 100)))
    if dense:
        for zone in substations:
            for d in Direction:
                requests.append(RequestIn(len(requests) + 1, BuyerKind.DSO, zone, DAY, 96, d,
                                          max(10_000, int(300_000 * scale)), rng.randrange(15_000, 40_000, 100)))
        for d in Direction:
            requests.append(RequestIn(len(requests) + 1, BuyerKind.TSO, 1, DAY, 96, d, max(100_000, int(40_000_000 * scale)),
                                      rng.randrange(10_000, 35_000, 100)))
    for _ in range(8):
        isps = rng.randrange(1, 5)
        requests.append(RequestIn(len(requests) + 1, BuyerKind.TSO, 1, DAY + rng.randrange(0, 97 - isps) * ISP, isps,
                                  Direction(int(rng.random() < 0.5)), max(100_000, int(40_000_000 * scale)),
                                  rng.randrange(10_000, 35_000, 100)))
    lights: dict[tuple[int, int, Direction], Light] = {}
    for zone in substations + perimeters:
        for q in rng.sample(range(96), 10):
            for d in Direction:
                lights[(zone, DAY + q * ISP, d)] = Light(Colour.RED) if rng.random() < 0.3 else \
                    Light(Colour.YELLOW, rng.randrange(10_000, 500_000, 10_000))
    return ClearingInput(offers, requests, parent, lights, isp_seconds=ISP, time_limit=600)


def _cpu() -> float:
    """CPU seconds of this process and of its finished children (the clearing's worker
    processes): on a shared machine a steadier figure than the wall clock."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("offers", nargs="*", type=int, help=f"book sizes (default: {', '.join(map(str, SIZES))})")
    parser.add_argument("--dense", action="store_true", help="every substation and the TSO buy in every ISP")
    parser.add_argument("--seed", default="1", help="the book's seed, or several separated by commas (worst kept)")
    parser.add_argument("--backend", choices=("highs", "pyomo"), default=None,
                        help="the model's build (default: the optimiser's)")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seed.split(",")]
    figures = {}
    for n in args.offers or list(SIZES):
        for seed in seeds:
            inp = book(n, seed, dense=args.dense)
            load = os.getloadavg()[0]
            started, cpu_before = time.perf_counter(), _cpu()
            result = clear(inp, backend=args.backend)
            total, cpu = time.perf_counter() - started, _cpu() - cpu_before
            s = result.stats
            problems = violations(inp.offers, inp.requests, result.awards, parent=inp.parent, lights=inp.lights,
                                  isp_seconds=ISP)
            target = {10_000: 3, 100_000: 60}.get(n)
            verdict = "" if target is None else f" (target {target} s: {'met' if total <= target else 'MISSED'})"
            print(f"  {n:>7,} offers, seed {seed}: {total:6.2f} s{verdict} ({cpu:.2f} s of CPU); building {s.build_seconds:.2f} s, solving "
                  f"{s.solve_seconds:.2f} s, gap {s.gap:.2g}, optimal: {s.optimal}, {s.components} components, "
                  f"{s.variables:,} variables ({s.binaries:,} binary), {len(result.awards):,} awards, welfare {result.welfare:,}, "
                  f"feasible: {not problems}, load {load:.1f}")
            if str(n) in figures and figures[str(n)]["seconds"] >= total:
                continue
            figures[str(n)] = {"seconds": round(total, 2), "cpu_seconds": round(cpu, 2), "build_seconds": round(s.build_seconds, 2),
                               "solve_seconds": round(s.solve_seconds, 2), "gap": s.gap, "optimal": s.optimal,
                               "awards": len(result.awards), "components": s.components, "variables": s.variables,
                               "binaries": s.binaries, "welfare": result.welfare, "feasible": not problems,
                               "seed": seed, "load": round(load, 1)}
    report("clearing", {"dense": args.dense, "seeds": seeds, "backend": args.backend or "default", "offers": figures,
                        "targets": {"10000": 3, "100000": 60}})


if __name__ == "__main__":
    main()
