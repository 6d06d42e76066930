"""The market roles, and their ids on chain (``keccak256`` of the name, as RoleRegistry has them)."""

from __future__ import annotations

from enum import Enum

from eth_utils import keccak

from flexledger.errors import FlexledgerError


class UnknownRoleError(FlexledgerError):
    """A role name that is not one of the market roles."""


class Role(Enum):
    DSO = "DSO"
    TSO = "TSO"
    AGGREGATOR = "AGGREGATOR"
    PROSUMER = "PROSUMER"
    ORACLE = "ORACLE"
    AUDITOR = "AUDITOR"
    METER = "METER"

    @property
    def id(self) -> bytes:
        """The role's bytes32 id on chain."""
        return keccak(text=self.value)

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise UnknownRoleError(
                f"unknown role {text!r}", hint="use one of " + ", ".join(r.value for r in cls)
            ) from None

    @classmethod
    def from_id(cls, role_id: bytes) -> Role:
        for role in cls:
            if role.id == role_id:
                return role
        raise UnknownRoleError(f"no market role has the id 0x{role_id.hex()}")
