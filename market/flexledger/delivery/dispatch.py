"""Activation orders from a final clearing result, signed by the market's dispatcher.

The dispatcher is the key ``MarketRegistry.dispatcher(market)`` names (set by the market
authority). For each awarded asset offer it signs one :class:`ActivationOrder` per run of
consecutive ISPs awarded at the same power, in the registry's EIP-712 domain (read from the
contract, ERC-5267), and attaches the award's evidence (the offer and one ``isAwarded`` proof
per ISP) so that a gateway with a chain endpoint checks the award itself. An order id is
derived from (result, offer, first ISP), so publishing a result's orders again repeats the same
orders, which gateways answer once.

A portfolio's award is not split here: which member delivers what is its aggregator's
decision, and the aggregator's own dispatch is outside this module (such offers are returned
as ``undispatched``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from eth_abi import encode
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from flexledger.chain.connection import ChainConnection
from flexledger.clearing.commitment import AwardProof
from flexledger.errors import FlexledgerError
from flexledger.identity.eip712 import read_domain
from flexledger.rules.orders import Offer
from flexledger_edge.activation import (
    DIRECTIONS,
    DOMAIN_NAME,
    DOMAIN_VERSION,
    ActivationOrder,
    AwardEvidence,
    RegistryDomain,
)
from flexledger_edge.activation import AwardProof as OrderAwardProof
from flexledger_edge.topics import orders_topic


class DispatchError(FlexledgerError):
    """Orders cannot be signed: the dispatcher is not the one the market names, or the domain is not the registry's."""


@dataclass(frozen=True)
class SignedActivation:
    """One signed order, ready to publish on its asset's topic."""

    order: ActivationOrder
    payload: bytes

    @property
    def topic(self) -> str:
        return orders_topic(self.order.asset)


@dataclass
class Dispatch:
    """A result's orders, and the awarded offers not dispatched here (portfolios)."""

    orders: list[SignedActivation] = field(default_factory=list)
    undispatched: list[bytes] = field(default_factory=list)


def registry_domain(conn: ChainConnection, registry: str) -> RegistryDomain:
    """The MarketRegistry's signing domain, as the contract publishes it (ERC-5267)."""
    domain = read_domain(conn, registry)
    if (domain.name, domain.version) != (DOMAIN_NAME, DOMAIN_VERSION) or domain.chain_id is None \
            or domain.verifying_contract is None:
        raise DispatchError(f"{registry} publishes the EIP-712 domain {domain}, not the MarketRegistry's",
                            hint="check the MarketRegistry address in the manifest")
    return RegistryDomain(domain.chain_id, domain.verifying_contract)


def order_id(result_id: int, offer_digest: bytes, isp_start: int) -> bytes:
    """An order's id: one per (result, offer, first ISP), the same every time it is derived."""
    return keccak(encode(["string", "uint64", "bytes32", "uint64"],
                         ["flexledger activation", result_id, offer_digest, isp_start]))


def dispatch_result(result_id: int, offers: Mapping[bytes, Offer], awards: Sequence[AwardProof], *,
                    isp_seconds: int, dispatcher: LocalAccount, domain: RegistryDomain,
                    named_dispatcher: str) -> Dispatch:
    """Sign the orders that carry out a final result's awards (``awards`` from ``award_proofs``;
    ``offers`` by EIP-712 digest). ``named_dispatcher`` is what the registry names for the market:
    signing with another key would only make orders every gateway refuses."""
    if dispatcher.address != named_dispatcher:
        raise DispatchError(f"{dispatcher.address} is not the market's dispatcher ({named_dispatcher})",
                            hint="the market authority names it: MarketRegistry.setDispatcher")
    by_offer: dict[bytes, dict[int, AwardProof]] = defaultdict(dict)
    for award in awards:
        by_offer[award.offer_digest].setdefault(award.isp_start, award)  # levelW is the same for every award of an ISP
    out = Dispatch()
    for digest, by_isp in sorted(by_offer.items()):
        offer = offers[digest]
        if offer.asset == 0:
            out.undispatched.append(digest)
            continue
        isps = sorted(by_isp)
        runs: list[list[int]] = []
        for t in isps:
            if runs and t == runs[-1][-1] + isp_seconds and by_isp[t].level_w == by_isp[runs[-1][-1]].level_w:
                runs[-1].append(t)
            else:
                runs.append([t])
        evidence_offer = {k: v if isinstance(v, bytes) else int(v) for k, v in offer.message().items()}
        for run in runs:
            order = ActivationOrder(
                order_id=order_id(result_id, digest, run[0]), market=offer.market, asset=offer.asset,
                isp_start=run[0], isps=len(run), direction=DIRECTIONS[int(offer.direction)],
                power_w=by_isp[run[0]].level_w, expires_at=run[-1] + isp_seconds, result_id=result_id,
                offer_digest=digest,
            )
            evidence = AwardEvidence(evidence_offer, tuple(
                OrderAwardProof(p.chunk, p.request_id, p.isp_start, p.power_w, p.level_w, tuple(p.proof))
                for p in (by_isp[t] for t in run)))
            out.orders.append(SignedActivation(order, order.to_json(order.sign(bytes(dispatcher.key), domain), evidence)))
    return out
