"""Generating one frozen dataclass per Solidity struct of the ABIs (:mod:`flexledger.chain.structs`).

A struct is known by its ``internalType`` (``struct Settlement.Record``): its Python name is the
Solidity one, or the declaring contract's name before it (``ReadingDisputesDisputeIn``) when two
contracts declare structs of that name with different fields. The bindings name these classes in
their signatures and convert what a call returns with :meth:`from_abi`.
"""

from __future__ import annotations

import json
import keyword
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .artifacts import Artifact
from .codegen import HEADER, canonical_type, scalar_type, snake


@dataclass(frozen=True)
class StructDef:
    key: str  # "Settlement.Record": the declaring contract and the struct's name
    components: tuple[dict[str, Any], ...]

    @property
    def shape(self) -> str:
        return json.dumps([(c["name"], canonical_type(c), c.get("internalType")) for c in self.components])


def struct_key(param: dict[str, Any]) -> str | None:
    """``Settlement.Record`` for a parameter of type ``struct Settlement.Record`` (or an array of it)."""
    internal: str = param.get("internalType", "")
    if not param["type"].startswith("tuple") or not internal.startswith("struct "):
        return None
    return internal.removeprefix("struct ").split("[", 1)[0]


def _walk(param: dict[str, Any], found: dict[str, StructDef]) -> None:
    key = struct_key(param)
    if key is None:
        return
    found.setdefault(key, StructDef(key, tuple(param["components"])))
    for component in param["components"]:
        _walk(component, found)


class StructNames:
    """Every struct of a set of ABIs, with the Python class name each gets."""

    def __init__(self, artifacts: Iterable[Artifact]) -> None:
        found: dict[str, StructDef] = {}
        for artifact in artifacts:
            for item in artifact.abi:
                for param in [*item.get("inputs", []), *item.get("outputs", [])]:
                    _walk(param, found)
        shapes: dict[str, set[str]] = defaultdict(set)
        for key, struct in found.items():
            shapes[key.rsplit(".", 1)[-1]].add(struct.shape)
        self.name: dict[str, str] = {}
        for key in found:
            short = key.rsplit(".", 1)[-1]
            self.name[key] = short if len(shapes[short]) == 1 else key.replace(".", "")
        self.defs: dict[str, StructDef] = {}  # by class name; one for structs of one shape
        for key in sorted(found):
            self.defs.setdefault(self.name[key], found[key])

    def class_of(self, param: dict[str, Any]) -> str | None:
        key = struct_key(param)
        return None if key is None else self.name[key]

    def python_type(self, param: dict[str, Any], seq: str = "list") -> str:
        """The annotation of a value of ``param``'s type; ``seq`` is what an array is (``list`` in a
        call's arguments and results, ``tuple`` inside a frozen struct)."""
        typ: str = param["type"]
        if typ.endswith("]"):
            inner = self.python_type(dict(param, type=typ[: typ.rindex("[")]), seq)
            return f"{seq}[{inner}]" if seq == "list" else f"tuple[{inner}, ...]"
        if typ == "tuple":
            cls = self.class_of(param)
            if cls is not None:
                return cls
            return "tuple[" + ", ".join(self.python_type(c, seq) for c in param["components"]) + "]"
        return scalar_type(typ)

    def from_abi(self, param: dict[str, Any], value: str, seq: str = "list", depth: int = 0) -> str:
        """An expression turning the decoded ``value`` into the annotated type."""
        typ: str = param["type"]
        if typ.endswith("]"):
            item = f"x{depth}"
            inner = self.from_abi(dict(param, type=typ[: typ.rindex("[")]), item, seq, depth + 1)
            if inner == item:
                return f"{seq}({value})"
            return f"[{inner} for {item} in {value}]" if seq == "list" else f"tuple({inner} for {item} in {value})"
        if typ == "tuple":
            cls = self.class_of(param)
            return f"{cls}.from_abi({value})" if cls is not None else value
        return {"bool": f"bool({value})", "address": f"to_checksum_address({value})", "string": f"str({value})"}.get(
            typ, f"bytes({value})" if typ.startswith("bytes") else f"int({value})"
        )

    def to_abi(self, param: dict[str, Any], value: str, depth: int = 0) -> str:
        typ: str = param["type"]
        if typ.endswith("]"):
            item = f"x{depth}"
            inner = self.to_abi(dict(param, type=typ[: typ.rindex("[")]), item, depth + 1)
            return f"list({value})" if inner == item else f"[{inner} for {item} in {value}]"
        if typ == "tuple" and self.class_of(param) is not None:
            return f"{value}.to_abi()"
        return value


def _field_name(name: str) -> str:
    out = snake(name)
    return out + "_" if keyword.iskeyword(out) else out


def generate_structs(artifacts: Iterable[Artifact]) -> str:
    names = StructNames(artifacts)
    lines = [
        HEADER,
        "from __future__ import annotations\n",
        "from collections.abc import Sequence",
        "from dataclasses import dataclass",
        "from typing import Any, ClassVar\n",
        "from eth_utils import to_checksum_address\n",
        "from .abi import AbiStruct\n\n",
    ]
    for cls, struct in sorted(names.defs.items()):
        fields = [(_field_name(c["name"]), c) for c in struct.components]
        abi_type = canonical_type({"type": "tuple", "components": list(struct.components)})
        lines.append("@dataclass(frozen=True, slots=True)")
        lines.append(f"class {cls}(AbiStruct):")
        lines.append(f'    """``struct {struct.key}``."""\n')
        lines.append(f"    ABI_TYPE: ClassVar[str] = {json.dumps(abi_type)}\n")
        for name, c in fields:
            lines.append(f"    {name}: {names.python_type(c, 'tuple')}")
        lines.append("")
        lines.append("    def to_abi(self) -> tuple[Any, ...]:")
        parts = [names.to_abi(c, f"self.{name}") for name, c in fields]
        lines.append(f"        return ({', '.join(parts)}{',' if len(parts) == 1 else ''})\n")
        lines.append("    @classmethod")
        lines.append(f"    def from_abi(cls, raw: Sequence[Any]) -> {cls}:")
        raw_names = [f"{name}_" for name, _ in fields]
        lines.append(f"        {', '.join(raw_names)}{',' if len(raw_names) == 1 else ''} = raw")
        values = [names.from_abi(c, f"{name}_", "tuple") for name, c in fields]
        lines.append(f"        return cls({', '.join(values)})\n\n")
    lines.append("BY_INTERNAL_TYPE: dict[str, type[AbiStruct]] = {")
    for key in sorted(names.name):
        lines.append(f'    "struct {key}": {names.name[key]},')
    lines.append("}\n")
    return "\n".join(lines)
