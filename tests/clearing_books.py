"""Random small market days for the clearing's differential and property tests: 5-40 offers,
1-8 requests, a zone tree of depth 2-4, lights, blocks, every mode and both pricing rules."""

from __future__ import annotations

import random

from flexledger.optimiser import BuyerKind, ClearingInput, OfferIn, RequestIn
from flexledger.rules.lights import Colour, Direction, Light
from flexledger.rules.market import PricingRule
from flexledger.rules.orders import Mode

DAY = 1_800_000_000 - 1_800_000_000 % 86_400
ISP = 900


def random_book(rng: random.Random) -> ClearingInput:
    """5-40 offers, 1-8 requests, a zone tree of depth 2-4, lights, blocks, every mode and both
    pricing rules; prices on a coarse grid so that equal margins and prices at the maximum occur."""
    depth = rng.randint(2, 4)
    parent = {1: 0}
    level = [1]
    for _ in range(depth - 1):
        level = [z for z0 in level for z in range(len(parent) + 1, len(parent) + 1 + rng.randint(1, 2))
                 if not parent.update({z: z0})]
    zones = sorted(parent)
    isps = 4
    offers = []
    for k in range(rng.randint(5, 40)):
        length = rng.choice((1, 1, 1, 2, 3))
        mode = rng.choice(list(Mode))
        power = rng.choice((rng.randint(1, 10) * 1000, rng.randint(1, 9_999)))
        minimum = {Mode.DIVISIBLE: 0, Mode.MIN_QUANTITY: rng.randint(1, power), Mode.ALL_OR_NOTHING: power}[mode]
        assets = tuple(sorted(rng.sample(range(1, 13), rng.choice((1, 1, 1, 2)))))
        offers.append(OfferIn(f"{k:04x}", rng.choice(zones), DAY + rng.randint(0, isps - length) * ISP, length,
                              Direction.UP if rng.random() < 0.8 else Direction.DOWN, power,
                              rng.randint(1, 10) * 10, mode, minimum, assets))
    requests = []
    for r in range(rng.randint(1, 8)):
        length = rng.randint(1, isps)
        requests.append(RequestIn(r + 1, rng.choice(list(BuyerKind)), rng.choice(zones),
                                  DAY + rng.randint(0, isps - length) * ISP, length,
                                  Direction.UP if rng.random() < 0.8 else Direction.DOWN,
                                  rng.choice((rng.randint(1, 20) * 1000, rng.randint(1, 19_999))), rng.randint(1, 12) * 10))
    lights = {}
    for _ in range(rng.randint(0, 6)):
        light = rng.choice([Light(Colour.RED), Light(Colour.YELLOW, 0), Light(Colour.YELLOW, rng.randint(1, 8_000)),
                            Light(Colour.YELLOW, rng.randint(1, 8) * 1000)])
        lights[(rng.choice(zones), DAY + rng.randint(0, isps - 1) * ISP,
                Direction.UP if rng.random() < 0.8 else Direction.DOWN)] = light
    return ClearingInput(offers, requests, parent, lights, isp_seconds=ISP,
                         pricing=rng.choice(list(PricingRule)), time_limit=60)
