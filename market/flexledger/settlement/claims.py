"""Pulling the money, as `flexledger claim` and the API do it for one account: with a day, its
settlements whose dispute window is over made final (anyone may) and the account's requests of
the day refunded when due; then whatever the account may claim withdrawn."""

from __future__ import annotations

from dataclasses import dataclass, field

from flexledger.chain.structs import Record
from flexledger.deployment import Deployment
from flexledger.settlement.day import (
    Finalised,
    day_context,
    dispute_ends,
    finalise_day,
    refund_requests,
    withdraw_claims,
)


@dataclass
class Claimed:
    account: str
    finalised: list[Finalised] = field(default_factory=list)
    waiting: list[tuple[Record, int]] = field(default_factory=list)  # still in its dispute window, until when
    refunded: list[tuple[int, int]] = field(default_factory=list)  # (request, amount)
    refunds_waiting: list[tuple[int, str]] = field(default_factory=list)  # (request, why not yet)
    settled: int = 0  # the day's settlements in force
    withdrawn: int = 0

    @property
    def anything(self) -> bool:
        return bool(self.finalised or self.refunded or self.withdrawn)


def claim(deployment: Deployment, market: int, day_start: int | None) -> Claimed:
    """Claim for the deployment's signer: the day's settlements and refunds when ``day_start`` is
    given, then its withdrawal (no transaction when there is nothing to withdraw)."""
    signer = deployment.sender()
    out = Claimed(signer.address)
    if day_start is not None:
        ctx = day_context(deployment, market, day_start)
        out.finalised, waiting = finalise_day(ctx, signer)
        out.waiting = [(r, dispute_ends(ctx, r)) for r in waiting]
        out.refunded, out.refunds_waiting = refund_requests(ctx, signer, signer.address)
        out.settled = len(ctx.records())
    out.withdrawn = withdraw_claims(deployment.settlement, signer)
    return out
