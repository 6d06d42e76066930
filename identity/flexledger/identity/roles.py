"""The market roles, and their ids on chain (``keccak256`` of the name, as RoleRegistry has them).

The id is derived from the name rather than numbered, so the Solidity constants, this enum and
any outside tool agree without a shared table.
"""

from __future__ import annotations

from enum import Enum

from eth_utils import keccak

from flexledger.errors import FlexledgerError


class UnknownRoleError(FlexledgerError):
    """A role name (or id) that is not one of the market roles."""


class Role(Enum):
    """A market role; a party holds it through a credential anchored in the RoleRegistry."""

    DSO = "DSO"
    TSO = "TSO"
    AGGREGATOR = "AGGREGATOR"
    PROSUMER = "PROSUMER"
    ORACLE = "ORACLE"
    AUDITOR = "AUDITOR"
    METER = "METER"
    CLEARING = "CLEARING"  # posts market days' clearing results (ClearingCommitment)

    def __str__(self) -> str:
        return self.value

    @property
    def id(self) -> bytes:
        """The role's bytes32 id on chain: ``keccak256(bytes(name))``."""
        return keccak(text=self.value)

    @classmethod
    def parse(cls, text: str | Role) -> Role:
        """The role named ``text``, in any letter case (``dso``, ``Dso``, ``DSO``)."""
        if isinstance(text, Role):
            return text
        try:
            return cls[str(text).strip().upper()]
        except KeyError:
            raise UnknownRoleError(
                f"unknown role {text!r}: not a market role", hint="use one of " + ", ".join(r.value for r in cls)
            ) from None

    @classmethod
    def from_id(cls, role_id: bytes) -> Role:
        """The role whose on-chain id is ``role_id``."""
        for role in cls:
            if role.id == bytes(role_id):
                return role
        raise UnknownRoleError(
            f"no market role has the id 0x{bytes(role_id).hex()}",
            hint="role ids are keccak256 of one of " + ", ".join(r.value for r in cls),
        )
