"""Generating one typed client per deployable contract (:mod:`flexledger.chain.bindings`).

A struct in a function's inputs or outputs is the dataclass of :mod:`flexledger.chain.structs`:
arguments are converted by :meth:`ContractClient.encode`, results here, with ``from_abi``. A view
with several named results returns them as a named tuple (``AssetRegistryAsset``: the contract's
name, then the function's), which still unpacks as the plain tuple did.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from .artifacts import Artifact
from .codegen import HEADER, canonical_type, ident, signature, snake
from .struct_codegen import StructNames


def _named(outs: list[dict[str, Any]]) -> bool:
    """Whether a view's several results all have names: it then returns a named tuple of them."""
    return len(outs) > 1 and all(o["name"] for o in outs)


def _field(name: str, index: int) -> str:
    out = ident(name, index)
    return out + "_" if out in ("count", "index") else out  # tuple's own methods


def _result(names: StructNames, outs: list[dict[str, Any]], named: str) -> tuple[str, str]:
    """A view's return annotation and the expression that makes it from the decoded ``raw``
    (``named``: the named tuple of several named results)."""
    if not outs:
        return "None", "raw"
    if len(outs) == 1:
        return names.python_type(outs[0]), names.from_abi(outs[0], "raw")
    values = ", ".join(names.from_abi(o, f"raw[{i}]") for i, o in enumerate(outs))
    if _named(outs):  # plain values as decoded (addresses already checksummed); structs converted
        return named, f"{named}({values})" if any(names.class_of(o) for o in outs) else f"{named}(*raw)"
    return "tuple[" + ", ".join(names.python_type(o) for o in outs) + "]", f"({values})"


def _named_tuple(names: StructNames, cls: str, fn: dict[str, Any]) -> list[str]:
    out = [f"class {cls}(NamedTuple):", f'    """What ``{signature(fn)}`` returns."""\n']
    out += [f"    {_field(o['name'], i)}: {names.python_type(o)}" for i, o in enumerate(fn["outputs"])]
    return [*out, "", ""]


def _method(names: StructNames, fn: dict[str, Any], method: str, named: str) -> list[str]:
    sig = signature(fn)
    args = [(ident(p["name"], i), names.python_type(p)) for i, p in enumerate(fn["inputs"])]
    params = "".join(f", {n}: {t}" for n, t in args)
    call_args = "".join(f", {n}" for n, _ in args)
    if fn["stateMutability"] in ("view", "pure"):
        ret, convert = _result(names, fn["outputs"], named)
        out = [f"    def {method}(self{params}, *, block: BlockId = \"latest\") -> {ret}:",
               f'        """``{sig}`` (view)."""']
        if not _named(fn["outputs"]) and not any(names.class_of(o) for o in fn["outputs"]):  # as decoded
            out += [f"        result: {ret} = self._call({json.dumps(sig)}{call_args}, block=block)", "        return result\n"]
        else:
            out += [f"        raw = self._call({json.dumps(sig)}{call_args}, block=block)", f"        return {convert}\n"]
        return out
    value = ", value: int = 0" if fn["stateMutability"] == "payable" else ""
    value_arg = ", value=value" if value else ""
    return [
        f"    def {method}(self{params}, *, sender: Signer | None = None, wait: bool = True, gas: int | None = None{value}) -> TxResult:",
        f'        """``{sig}`` (transaction)."""',
        f"        return self._transact({json.dumps(sig)}{call_args}, sender=sender, wait=wait, gas=gas{value_arg})\n",
    ]


def generate_bindings(artifacts: Iterable[Artifact]) -> str:
    artifacts = list(artifacts)
    names = StructNames(artifacts)
    body: list[str] = []
    tuples: list[str] = []  # the named results of views, before the clients that return them
    used: set[str] = set()
    for artifact in sorted(artifacts, key=lambda a: a.name):
        if not artifact.deployable:
            continue
        functions = [i for i in artifact.abi if i["type"] == "function"]
        counts: dict[str, int] = {}
        for fn in functions:
            counts[fn["name"]] = counts.get(fn["name"], 0) + 1
        body.append(f"class {artifact.name}Client(ContractClient):")
        body.append(f'    """Typed client of ``{artifact.name}`` ({artifact.source_name})."""\n')
        body.append(f"    CONTRACT: ClassVar[str] = {json.dumps(artifact.name)}\n")
        for fn in sorted(functions, key=signature):
            method = snake(fn["name"])
            if counts[fn["name"]] > 1:
                method += "_" + "_".join(snake(canonical_type(p).replace("[]", "s")) for p in fn["inputs"])
            named = artifact.name + "".join(part.capitalize() for part in method.split("_"))
            if fn["stateMutability"] in ("view", "pure") and _named(fn["outputs"]):
                tuples += _named_tuple(names, named, fn)
            body += _method(names, fn, method, named)
            used |= {c for p in [*fn["inputs"], *fn["outputs"]] if (c := names.class_of(p)) is not None}
        body.append("")
    body.append("CLIENTS: dict[str, type[ContractClient]] = {")
    for artifact in sorted(artifacts, key=lambda a: a.name):
        if artifact.deployable:
            body.append(f"    {json.dumps(artifact.name)}: {artifact.name}Client,")
    body.append("}\n")
    head = [
        HEADER,
        "from __future__ import annotations\n",
        "from typing import ClassVar, NamedTuple\n",
        "from .client import BlockId, ContractClient, TxResult",
    ]
    if used:
        head.append("from .structs import (\n" + "".join(f"    {name},\n" for name in sorted(used)) + ")")
    head.append("from .transactions import Signer\n\n")
    if any("to_checksum_address(" in line for line in body):
        head.insert(head.index("from .client import BlockId, ContractClient, TxResult"),
                    "from eth_utils import to_checksum_address\n")
    return "\n".join(head + tuples + body)
