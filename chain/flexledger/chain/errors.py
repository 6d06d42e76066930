"""Errors of the chain toolkit, modelled on web3.py's hierarchy.

Contract reverts are :class:`ContractRevertError`; a Solidity custom error becomes an instance
of its own generated subclass of :class:`ContractCustomError` (see
:mod:`flexledger.chain.revert_errors`), carrying the error's arguments by name.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from flexledger.errors import FlexledgerError
from flexledger.redaction import redact_url, scrub_urls


class ChainError(FlexledgerError):
    """Anything that went wrong between flexledger and an EVM chain or its toolchain."""


class ToolMissingError(ChainError):
    """A tool of the pinned toolchain (anvil, forge, solc, node) is not installed."""

    def __init__(self, tool: str, message: str) -> None:
        super().__init__(message, hint="run `make install` (or `npm ci`) in the project folder")
        self.tool = tool


class CompileError(ChainError):
    """solc rejected the sources; ``messages`` are solc's own, with file and line."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__(
            "Solidity compilation failed:\n" + "\n".join(m.rstrip() for m in messages),
            hint="fix the source at the file and line solc names, then compile again",
        )
        self.messages = messages


class ArtifactError(ChainError):
    """A compiled artifact is missing or does not match the sources it claims to come from."""


class RpcUnreachableError(ChainError):
    """Nothing answered JSON-RPC at the configured URL."""

    def __init__(self, url: str, reason: str = "") -> None:
        detail = f": {scrub_urls(reason, url)}" if reason else ""
        super().__init__(
            f"no EVM node answers at {redact_url(url)}{detail}",
            hint=(
                "start the local chain with `flexledger node start`, or set FLEXLEDGER_RPC_URL "
                "(or rpc_url in the config file) to a node that is running"
            ),
        )
        self.url = redact_url(url)


class NodeError(ChainError):
    """The local node could not be started, found or stopped."""


class ManifestError(ChainError):
    """The deployment manifest is missing, unreadable or does not describe the connected chain."""


class ManifestChainMismatchError(ManifestError):
    """The manifest was written for another chain than the one the RPC URL leads to."""

    def __init__(self, path: str, manifest_chain_id: int, node_chain_id: int, rpc_url: str) -> None:
        super().__init__(
            f"the manifest {path} is for chain id {manifest_chain_id}, "
            f"but the node at {redact_url(rpc_url)} is chain id {node_chain_id}",
            hint="point FLEXLEDGER_RPC_URL at the chain the manifest describes, "
            "or run `flexledger deploy` on this chain to write a new manifest",
        )
        self.manifest_chain_id = manifest_chain_id
        self.node_chain_id = node_chain_id


class ManifestVerificationError(ManifestError):
    """A manifest's contracts are not the compiled ones, or not wired to each other: nothing it names
    can be trusted, so nothing is audited through it."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(
            "the manifest does not describe the market's contracts: " + "; ".join(problems),
            hint="get the deployment's manifest from the market operator again (or `flexledger deploy` on a "
            "development chain); compare each address with the chain's own records",
        )
        self.problems = problems


class DevKeyRefusedError(ChainError):
    """A well-known development key was about to be used on a chain that is not a local dev chain."""


class TransactionError(ChainError):
    """A transaction could not be sent or was not mined successfully."""


class InsufficientFundsError(TransactionError):
    """The sending account cannot pay for the transaction's gas (and value)."""

    def __init__(self, address: str, balance: int, needed: int, *, dev_chain: bool) -> None:
        super().__init__(
            f"the account {address} cannot pay for its transaction: it holds {balance / 10**18:.6g} ETH and "
            f"the transaction may cost up to {needed / 10**18:.6g} ETH in gas and value",
            hint=(f"give it ether: `flexledger dev fund {address}` on this development chain" if dev_chain else
                  f"send ether to {address} from a funded account of this chain, then run the command again"),
        )
        self.address = address
        self.balance = balance
        self.needed = needed


class ContractRevertError(TransactionError):
    """A contract call or transaction reverted."""

    def __init__(
        self, message: str, *, data: bytes = b"", contract: str | None = None, function: str | None = None
    ) -> None:
        super().__init__(message)
        self.data = data
        self.contract = contract
        self.function = function


class RevertReasonError(ContractRevertError):
    """A revert with a plain string (``Error(string)``); flexledger's contracts never do this."""

    def __init__(self, reason: str, **kwargs: Any) -> None:
        super().__init__(f"reverted: {reason}", **kwargs)
        self.reason = reason


class PanicError(ContractRevertError):
    """A Solidity panic (``Panic(uint256)``): an assertion, overflow or division by zero."""

    CODES: ClassVar[Mapping[int, str]] = {
        0x01: "assertion failed",
        0x11: "arithmetic overflow or underflow",
        0x12: "division or modulo by zero",
        0x21: "invalid enum value",
        0x22: "invalid storage byte array",
        0x31: "pop on an empty array",
        0x32: "array index out of bounds",
        0x41: "out of memory",
        0x51: "call to an invalid internal function",
    }

    def __init__(self, code: int, **kwargs: Any) -> None:
        super().__init__(f"panic 0x{code:02x}: {self.CODES.get(code, 'unknown panic')}", **kwargs)
        self.code = code


class UnknownRevertError(ContractRevertError):
    """A revert whose data matches no error in any known ABI (or carries no data at all)."""


class ContractCustomError(ContractRevertError):
    """A Solidity custom error. Each error of each ABI has a generated subclass of this."""

    NAME: ClassVar[str] = ""
    SIGNATURE: ClassVar[str] = ""
    SELECTOR: ClassVar[bytes] = b""
    ARG_NAMES: ClassVar[tuple[str, ...]] = ()
    ARG_TYPES: ClassVar[tuple[str, ...]] = ()

    # from the error's NatSpec: what the refusal means (arguments named in backticks), what to do
    NOTICE: ClassVar[str | None] = None

    def __init__(self, *values: Any, data: bytes = b"", contract: str | None = None, function: str | None = None) -> None:
        self.values = values
        self.arguments: dict[str, Any] = dict(zip(self.ARG_NAMES, values, strict=True))
        where = f"{contract}.{function}: " if contract and function else ""
        shown = ", ".join(f"{k}={_show(v)}" for k, v in self.arguments.items())
        super().__init__(f"{where}{self.NAME}({shown})", data=data, contract=contract, function=function)

    def explain(self, show: Callable[[str, str, Any], str] | None = None, notice: str | None = None) -> str | None:
        """The NatSpec notice (or ``notice``, for errors of libraries without one) with each argument
        it names in backticks replaced by its value, as ``show(name, abi_type, value)`` writes it
        (plain by default); None when there is no notice."""
        notice = notice or self.NOTICE
        if notice is None:
            return None
        render = show or (lambda _name, _type, value: _show(value))
        types = dict(zip(self.ARG_NAMES, self.ARG_TYPES, strict=True))

        def value_of(match: re.Match[str]) -> str:
            name = match.group(1)  # the generator wrote each argument's Python name
            return render(name, types[name], self.arguments[name]) if name in self.arguments else match.group(0)

        return re.sub(r"`([A-Za-z_][A-Za-z0-9_]*)`", value_of, notice)

    def __getattr__(self, name: str) -> Any:
        arguments = self.__dict__.get("arguments", {})
        if name in arguments:
            return arguments[name]
        raise AttributeError(name)


# selector -> (the error's name, its ABI input types, its arguments' Python names)
ErrorTable = dict[bytes, tuple[str, tuple[str, ...], tuple[str, ...]]]
# selector -> (the error's NatSpec @notice, its @custom:hint)
ErrorDocs = dict[bytes, tuple[str | None, str | None]]


def error_class_names(table: ErrorTable) -> dict[bytes, str]:
    """Each error's class name: its Solidity name, with its selector after it when errors of that
    name with other arguments exist elsewhere (both must stay importable)."""
    count = Counter(name for name, _types, _args in table.values())
    return {sel: name[0].upper() + name[1:] + (f"_{sel.hex()}" if count[name] > 1 else "")
            for sel, (name, _types, _args) in table.items()}


def custom_error_classes(table: ErrorTable, module: str, docs: ErrorDocs | None = None) -> dict[str, type[ContractCustomError]]:
    """One subclass of :class:`ContractCustomError` per error of ``table``, by class name, made as
    the module ``module`` would declare them (so that they pickle and print as its own), with the
    notice and hint of ``docs``."""
    classes: dict[str, type[ContractCustomError]] = {}
    for (sel, (name, types, args)), cls_name in zip(table.items(), error_class_names(table).values(), strict=True):
        sig = f"{name}({','.join(types)})"
        notice, hint = (docs or {}).get(sel, (None, None))
        classes[cls_name] = type(cls_name, (ContractCustomError,), {
            "__module__": module, "__qualname__": cls_name, "__doc__": notice or f"``{sig}``.",
            "NAME": name, "SIGNATURE": sig, "SELECTOR": sel, "ARG_NAMES": args, "ARG_TYPES": types,
            "NOTICE": notice, "hint": hint,
        })
    return classes


def _show(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return repr(value) if isinstance(value, str) else str(value)
