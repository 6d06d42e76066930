"""The demo's households: what each asset's meter would measure without any activation, and the
baseline its seller commits to with an offer.

Every meter of the demo measures a deterministic household (flexledger_edge's ``LoadProfile``:
a daily load shape, rooftop PV for a PV asset, seeded noise), whether it is simulated in-process
or an SDM630 on Modbus TCP (whose model runs the same profile). A seller forecasts its meter's
net consumption per ISP from that same profile, so its committed baseline is an honest forecast:
for a simulated meter it is exactly what the meter would have measured, for an SDM630 it is
within the register's whole-Wh resolution of it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from eth_account.signers.local import LocalAccount

from flexledger.rules.baselines import baseline_commitment
from flexledger.rules.orders import Offer
from flexledger.settlement.offer import Baseline
from flexledger_edge.drivers.simulated import LoadProfile, SimulatedMeter

PV = 1  # the demo's asset type code for PV


def profile(asset: int, kind: int) -> LoadProfile:
    return LoadProfile(base_load_w=400, pv_peak_w=3000 if kind == PV else 0, seed=asset)


def forecast_wh(asset: int, kind: int, isp_start: int, isp_seconds: int = 900) -> int:
    """The household's net consumption (import - export, whole Wh) in the ISP, as its meter counts it."""
    imported, exported = SimulatedMeter(profile(asset, kind), isp_seconds).isp_energy_wh(isp_start)
    return int(imported) - int(exported)


def forecast_baseline(asset: int, kind: int, start: int, isps: int, rng: random.Random,
                      isp_seconds: int = 900) -> tuple[bytes, Baseline]:
    """The commitment an offer carries and the baseline its seller keeps to reveal at settlement.

    The salt comes from the demo's seeded generator so that the book (and the clearing's
    tie-breaks, which follow offer digests) is the same on every run; a real seller draws it
    from ``secrets``, since a guessable salt would let anyone test forecasts against the hash."""
    net = [forecast_wh(asset, kind, start + k * isp_seconds, isp_seconds) for k in range(isps)]
    baseline = Baseline(net, rng.randbytes(32))
    return baseline_commitment(asset, start, baseline.net_wh, baseline.salt), baseline


@dataclass(frozen=True)
class Member:
    """A household in an aggregator's portfolio: its asset, meter, asset type and prequalified power."""

    asset: int
    meter: str
    kind: int
    power_w: int


@dataclass(frozen=True)
class KeptOffer:
    """An offer in force as its seller keeps it: the offer, its digest, the baseline to reveal,
    the seller's wallet (the owner's; for a portfolio offer the aggregator's), the asset's meter
    and type (a portfolio: its members instead), and the aggregator that relayed it."""

    offer: Offer
    digest: bytes
    baseline: Baseline
    owner: LocalAccount
    meter: str
    kind: int
    aggregator: str  # its account name in the demo
    members: tuple[Member, ...] = ()  # a portfolio offer's households
