"""Generating one typed client per deployable contract (:mod:`flexledger.chain.bindings`).

A struct in a function's inputs or outputs is the dataclass of :mod:`flexledger.chain.structs`:
arguments are converted by :meth:`ContractClient.encode`, results here, with ``from_abi``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from .artifacts import Artifact
from .codegen import HEADER, canonical_type, ident, signature, snake
from .struct_codegen import StructNames


def _result(names: StructNames, outs: list[dict[str, Any]]) -> tuple[str, str]:
    """A view's return annotation and the expression that makes it from the decoded ``raw``."""
    if not outs:
        return "None", "raw"
    if len(outs) == 1:
        return names.python_type(outs[0]), names.from_abi(outs[0], "raw")
    types = ", ".join(names.python_type(o) for o in outs)
    values = [names.from_abi(o, f"raw[{i}]") for i, o in enumerate(outs)]
    return f"tuple[{types}]", "(" + ", ".join(values) + ")"


def _method(names: StructNames, fn: dict[str, Any], method: str) -> list[str]:
    sig = signature(fn)
    args = [(ident(p["name"], i), names.python_type(p)) for i, p in enumerate(fn["inputs"])]
    params = "".join(f", {n}: {t}" for n, t in args)
    call_args = "".join(f", {n}" for n, _ in args)
    if fn["stateMutability"] in ("view", "pure"):
        ret, convert = _result(names, fn["outputs"])
        out = [f"    def {method}(self{params}, *, block: BlockId = \"latest\") -> {ret}:",
               f'        """``{sig}`` (view)."""']
        if not any(names.class_of(o) for o in fn["outputs"]):  # plain values: as decoded
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
            body += _method(names, fn, method)
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
        "from typing import ClassVar\n",
        "from .client import BlockId, ContractClient, TxResult",
    ]
    if used:
        head.append("from .structs import (\n" + "".join(f"    {name},\n" for name in sorted(used)) + ")")
    head.append("from .transactions import Signer\n\n")
    return "\n".join(head + body)
