"""The MQTT topics the agent speaks (version 1)."""

from __future__ import annotations


def readings_topic(meter: str) -> str:
    """Where a meter's signed readings go: the address in lowercase 0x-hex."""
    return f"flexledger/v1/readings/{meter.lower()}"


def orders_topic(asset_id: int) -> str:
    """Where activation orders for an asset arrive."""
    return f"flexledger/v1/orders/{asset_id}"


def acks_topic(asset_id: int) -> str:
    """Where the agent acknowledges an asset's orders."""
    return f"flexledger/v1/acks/{asset_id}"


def receipts_topic(meter: str) -> str:
    """Where the oracle acknowledges a meter's readings once it has committed them."""
    return f"flexledger/v1/receipts/{meter.lower()}"
