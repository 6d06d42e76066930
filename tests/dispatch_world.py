"""Activation orders signed as the market's dispatcher signs them, for the edge agent's tests (not fixtures)."""

from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_utils import keccak

from flexledger_edge.activation import ActivationOrder, AwardEvidence, RegistryDomain

CHAIN_ID = 31337
REGISTRY = "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0"
DISPATCHER_KEY = bytes.fromhex("d1" * 32)
DISPATCHER = Account.from_key(DISPATCHER_KEY).address
ORDER_NOW = 1_700_000_000 - 1_700_000_000 % 900  # an ISP boundary


def signed_order(key: bytes = DISPATCHER_KEY, *, registry: str = REGISTRY, chain_id: int = CHAIN_ID,
                 award: AwardEvidence | None = None, **change: Any) -> bytes:
    """A dispatcher-signed activation order's MQTT payload (fields changed by ``change`` before signing;
    ``signature`` in ``change`` replaces the signature after)."""
    fields: dict[str, Any] = {
        "order_id": keccak(text="o-1"), "market": 1, "asset": 7, "isp_start": ORDER_NOW + 900, "isps": 2,
        "direction": "UP", "power_w": 2000, "expires_at": ORDER_NOW + 3 * 900, "result_id": 1,
        "offer_digest": keccak(text="offer"),
    }
    forged = change.pop("signature", None)
    fields.update(change)
    order = ActivationOrder(**fields)
    signature = order.sign(key, RegistryDomain(chain_id, registry))
    return order.to_json(forged if forged is not None else signature, award)
