"""Signing and sending transactions from a local key, with nonces kept locally.

Keeping the nonce here (instead of asking the node each time) lets many transactions be sent
without waiting for each receipt, which is what makes bulk work fast on a JSON-RPC node.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes

from .connection import ChainConnection
from .errors import InsufficientFundsError

FEE_CACHE_SECONDS = 2.0


class Signer:
    """A local account that signs and sends transactions on one connection."""

    def __init__(self, account: LocalAccount, conn: ChainConnection) -> None:
        self.account = account
        self.conn = conn
        self._nonce: int | None = None
        self._lock = threading.Lock()
        self._fees: tuple[float, dict[str, int]] | None = None
        conn.register_signer(self)

    @property
    def address(self) -> str:
        return str(self.account.address)

    def forget_nonce(self) -> None:
        with self._lock:
            self._nonce = None

    def _next_nonce(self) -> int:
        with self._lock:
            if self._nonce is None:
                self._nonce = int(self.conn.w3.eth.get_transaction_count(self.account.address, "pending"))
            nonce = self._nonce
            self._nonce += 1
            return nonce

    def fees(self) -> dict[str, int]:
        """EIP-1559 fee fields, refreshed every few seconds (a zero base fee is fine: QBFT)."""
        now = time.monotonic()
        if self._fees is None or now - self._fees[0] > FEE_CACHE_SECONDS:
            block = self.conn.w3.eth.get_block("latest")
            base = int(block.get("baseFeePerGas", 0))
            tip = int(self.conn.w3.eth.max_priority_fee) if base else 0
            self._fees = (now, {"maxFeePerGas": 2 * base + tip, "maxPriorityFeePerGas": tip})
        return self._fees[1]

    def replace(self, tx_hash: str, *, bump: float = 2.0) -> HexBytes:
        """Send the pending transaction ``tx_hash`` again under its own nonce, with the same bytes and
        gas and fees ``bump`` times higher (at least the current ones, and above the old by one wei: a
        node takes a replacement only at a higher fee, geth from +10%). Of the two, one is mined:
        a transaction stuck under a rise of the base fee leaves the pool without being sent twice."""
        old = self.conn.w3.eth.get_transaction(HexBytes(tx_hash))
        current = self.fees()
        fees = {name: max(int(int(old[name]) * bump), int(old[name]) + 1, current[name])
                for name in ("maxFeePerGas", "maxPriorityFeePerGas")}
        fees["maxFeePerGas"] = max(fees["maxFeePerGas"], fees["maxPriorityFeePerGas"])
        tx: dict[str, Any] = {"chainId": self.conn.chain_id, "nonce": int(old["nonce"]), "gas": int(old["gas"]),
                              "value": int(old["value"]), "data": bytes(old["input"]), "to": old["to"], **fees}
        signed = self.account.sign_transaction(tx)
        return HexBytes(self.conn.w3.eth.send_raw_transaction(signed.raw_transaction))

    def send(self, to: str | None, data: bytes, *, gas: int, value: int = 0) -> HexBytes:
        """Sign and send; returns the transaction hash without waiting."""
        tx: dict[str, Any] = {
            "chainId": self.conn.chain_id,
            "nonce": self._next_nonce(),
            "gas": gas,
            "value": value,
            "data": data,
            **self.fees(),
        }
        if to is not None:
            tx["to"] = to
        signed = self.account.sign_transaction(tx)
        try:
            return HexBytes(self.conn.w3.eth.send_raw_transaction(signed.raw_transaction))
        except Exception as exc:
            self.forget_nonce()  # the node did not take this nonce: ask it again next time
            if "insufficient funds" in str(exc).lower():
                raise self._insufficient(tx) from None
            raise

    def _insufficient(self, tx: dict[str, Any]) -> InsufficientFundsError:
        balance = int(self.conn.w3.eth.get_balance(self.account.address))
        needed = int(tx["gas"]) * int(tx["maxFeePerGas"]) + int(tx["value"])
        return InsufficientFundsError(self.account.address, balance, needed, dev_chain=self.conn.is_local_dev_chain())
