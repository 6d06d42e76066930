"""The bond a claim against an oracle carries (an omission claim, a baseline challenge): the
contract takes it with ``transferFrom``, so its caller approves it first."""

from __future__ import annotations

from flexledger.chain.bindings import SettlementTokenClient


def approve_bond(token: SettlementTokenClient, owner: str, spender: str, bond: int) -> None:
    """Approve ``spender`` for ``bond`` when ``owner``'s allowance is short of it (none for no bond)."""
    if bond and token.allowance(owner, spender) < bond:
        token.approve(spender, bond)
