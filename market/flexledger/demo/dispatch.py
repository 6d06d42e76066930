"""The demo's dispatch: the market authority names a dispatcher key in MarketRegistry, which signs
the final result's awards as activation orders (EIP-712, the registry's domain read from the
contract). The SDM630 gateways of the metering step take theirs over MQTT and check each one
against the chain before their devices act (:mod:`flexledger.demo.metering`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console

from flexledger.clearing.commitment import AwardProof
from flexledger.delivery.dispatch import SignedActivation, dispatch_result, registry_domain
from flexledger.demo.households import KeptOffer
from flexledger.deployment import Deployment
from flexledger.identity import keys


def dispatch_step(authority: Deployment, market: int, result_id: int,
                  awards: Sequence[AwardProof], kept: Mapping[bytes, KeptOffer], isp_seconds: int,
                  console: Console) -> tuple[dict[str, Any], dict[int, list[SignedActivation]]]:
    """Name a dispatcher for the market and sign the result's orders; the orders by asset."""
    dispatcher = keys.new_account()
    markets = authority.markets
    gas = markets.set_dispatcher(market, dispatcher.address).gas_used
    done = dispatch_result(result_id, {d: k.offer for d, k in kept.items()}, awards, isp_seconds=isp_seconds,
                           dispatcher=dispatcher, domain=registry_domain(authority.conn, markets.address),
                           named_dispatcher=markets.dispatcher(market))
    by_asset: dict[int, list[SignedActivation]] = defaultdict(list)
    for signed in done.orders:
        by_asset[signed.order.asset].append(signed)
    console.print(f"the market authority named dispatcher {dispatcher.address[:10]}… in MarketRegistry ({gas:,} gas); "
                  f"it signed {len(done.orders)} activation orders (EIP-712) for {len(by_asset)} awarded assets; "
                  f"{len(done.undispatched)} portfolio award(s) are split by their aggregator instead")
    return {"dispatcher": dispatcher.address, "orders": len(done.orders), "assets": len(by_asset),
            "portfolios": len(done.undispatched), "set_dispatcher_gas": gas}, dict(by_asset)
