"""The clearing's money summary (``clearing.run.volumes``), as the CLI prints it and the API serves
it, needs no chain: awards, energy and money per request zone and direction."""

from __future__ import annotations

from flexledger.clearing.run import volumes
from flexledger.optimiser import BuyerKind, ClearingInput, RequestIn
from flexledger.optimiser.results import Award
from flexledger.rules.lights import Direction


def test_volumes_per_zone_and_direction() -> None:
    inp = ClearingInput([], [RequestIn(1, BuyerKind.DSO, 7, 0, 2, Direction.UP, 10_000, 9_000),
                             RequestIn(2, BuyerKind.TSO, 3, 0, 1, Direction.DOWN, 5_000, 9_000)], {7: 3, 3: 0})
    awards = [Award(1, 0, "0xa", 4_000, 6_000), Award(1, 900, "0xb", 8_000, 7_000), Award(2, 0, "0xc", 2_000, 5_000)]
    assert volumes(inp, awards) == [
        # 2 kW for 15 minutes: 500 Wh at 50 EUR/MWh (5,000 cents) is 2.5 cents, rounded down
        {"zone": 3, "direction": "DOWN", "awards": 1, "energy_wh": 500, "paid": 2},
        # 1,000 Wh at 60 EUR/MWh (6 cents) and 2,000 Wh at 70 EUR/MWh (14 cents)
        {"zone": 7, "direction": "UP", "awards": 2, "energy_wh": 3_000, "paid": 20},
    ]
