"""A contract's refusal in plain words, for the CLI and the API alike.

The words come from the contracts: each custom error's NatSpec ``@notice`` says what the refusal
means and its ``@custom:hint`` what to do (``flexledger compile`` carries both into
:mod:`flexledger.chain.revert_errors`). Here its arguments are written as people read them: role
ids as role names, Unix seconds as ISO 8601 times in UTC, packed lights as colours and watts,
powers and energies with their units.
"""

from __future__ import annotations

import re
from typing import Any

from flexledger.chain.errors import ContractCustomError
from flexledger.identity.roles import Role, UnknownRoleError
from flexledger.rules.lights import Light, LightError
from flexledger.times import iso

# uint64 arguments that hold a time (ispStart, gateClosure, noticeEnds, answerBy, validUntil, day, ...)
_TIME = re.compile(r"(^|_)(start|end|ends|day|closure|at|by|until|from|expiry|deadline|time|opens|closes)$")
_PLAUSIBLE_TIME = range(10**9, 10**11)  # 2001 .. 5138: anything else is an id or a count
GENERIC_HINT = "nothing was changed on chain; correct what the message names and send it again"
# The errors of OpenZeppelin's contracts, whose NatSpec we do not write: (notice, hint), arguments
# by their Python names (``sender`` is ``sender_``).
LIBRARY_ERRORS = {
    "ERC20InsufficientBalance": (
        "`sender_` holds `balance` of the settlement token and needs `needed` (base units)",
        "get settlement tokens to that account first (on a development chain: `flexledger token mint ADDRESS AMOUNT`)",
    ),
    "ERC20InsufficientAllowance": (
        "`spender` may take `allowance` of the settlement token and needs `needed` (base units)",
        "sign a permit (or approve) for at least that amount and send it again",
    ),
    "ERC2612ExpiredSignature": ("the permit expired at `deadline`", "sign a new permit with a later deadline"),
    "ERC2612InvalidSigner": ("the permit is signed by `signer`, not by the owner `owner`",
                             "the token's owner signs its own permit"),
    "InvalidAccountNonce": ("the signature used an old nonce of `account` (its current one is `current_nonce`)",
                            "sign again: the nonce is read when signing"),
    "ECDSAInvalidSignature": ("the signature does not recover to any address", "sign again with the right key"),
    "AccessControlUnauthorizedAccount": ("`account` lacks the role `needed_role`",
                                         "only the account holding that role may do this"),
}


def show(name: str, abi_type: str, value: Any) -> str:
    """One argument of a contract error as people read it."""
    if abi_type == "bytes32" and name.endswith("role"):  # role, needed_role
        try:
            return Role.from_id(value).value
        except UnknownRoleError:
            return "0x" + bytes(value).hex()
    if abi_type == "uint32" and (name == "light" or name.endswith("_light")):
        try:
            return str(Light.unpack(value))
        except (LightError, ValueError):
            return f"0x{value:08x} (not a light)"
    if abi_type == "uint64" and _TIME.search(name) and value in _PLAUSIBLE_TIME:
        return iso(value)
    if abi_type == "bool":
        return f"{name.replace('_', ' ')}: {'yes' if value else 'no'}"
    if abi_type.startswith("uint") and name.endswith("_wh"):
        return f"{value:,} Wh"
    if abi_type.startswith("uint") and name.endswith("_w"):
        return f"{value:,} W"
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return str(value)


def plain(error: ContractCustomError) -> tuple[str, str]:
    """The refusal's message and what to do, in words (the error's name and raw arguments kept at
    the end, for a search in the contracts or a report)."""
    where = f"{error.contract}.{error.function}" if error.contract and error.function else "the contract"
    notice, hint = LIBRARY_ERRORS.get(error.NAME, (None, None))
    explained = error.explain(show, notice)
    raw = f"{error.NAME}(" + ", ".join(f"{k}={show(k, t, v)}" for (k, v), t in
                                      zip(error.arguments.items(), error.ARG_TYPES, strict=True)) + ")"
    message = f"{where} refused: {explained} [{raw}]" if explained else f"{where} refused: {raw}"
    return message, error.hint or hint or GENERIC_HINT
