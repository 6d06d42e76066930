"""The generated struct dataclasses, bindings and revert-error table, from ABIs made up here."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from dataclasses import FrozenInstanceError
from typing import Any

import pytest
from eth_abi import decode, encode
from eth_utils import to_checksum_address

from flexledger.chain import revert_errors, structs
from flexledger.chain.abi import decode_values, to_abi_value
from flexledger.chain.artifacts import Artifact
from flexledger.chain.binding_codegen import generate_bindings
from flexledger.chain.codegen import generate_revert_errors
from flexledger.chain.errors import ContractCustomError
from flexledger.chain.reverts import decode_revert
from flexledger.chain.struct_codegen import generate_structs


def _param(name: str, typ: str, internal: str | None = None, components: list[dict[str, Any]] | None = None
           ) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "type": typ, "internalType": internal or typ}
    if components is not None:
        out["components"] = components
    return out


OWNER = to_checksum_address("0x" + "ab" * 20)
POINT = [_param("x", "int64"), _param("owner", "address")]
SHAPE = [
    _param("id", "uint32"),
    _param("origin", "tuple", "struct Geo.Point", POINT),
    _param("corners", "tuple[]", "struct Geo.Point[]", POINT),
    _param("tags", "bytes32[2]"),
    _param("paths", "uint8[][]"),
    _param("label", "string"),
    _param("closed", "bool"),
]
OTHER_POINT = [_param("lat", "int32"), _param("lon", "int32")]


def _artifact(name: str, abi: list[dict[str, Any]], deployable: bool = True) -> Artifact:
    return Artifact(name, f"src/{name}.sol", abi, "0x6001" if deployable else "0x", "0x", "")


ARTIFACTS = [
    _artifact("Geo", [
        {"type": "function", "name": "shape", "stateMutability": "view",
         "inputs": [_param("id", "uint32")], "outputs": [_param("s", "tuple", "struct Geo.Shape", SHAPE)]},
        {"type": "function", "name": "draw", "stateMutability": "nonpayable",
         "inputs": [_param("shapes", "tuple[]", "struct Geo.Shape[]", SHAPE)], "outputs": []},
        {"type": "function", "name": "extent", "stateMutability": "view", "inputs": [],
         "outputs": [_param("count", "uint8"), _param("origin", "tuple", "struct Geo.Point", POINT)]},
        {"type": "error", "name": "GeoOffMap", "inputs": [_param("x", "int64"), _param("owner", "address")]},
    ]),
    _artifact("Map", [  # another contract's struct of the same name with other fields
        {"type": "function", "name": "near", "stateMutability": "view",
         "inputs": [_param("p", "tuple", "struct Map.Point", OTHER_POINT)], "outputs": [_param("", "bool")]},
        {"type": "error", "name": "GeoOffMap", "inputs": []},
    ]),
]


@pytest.fixture(scope="module")
def generated() -> Iterator[types.ModuleType]:
    """The generated struct module, loaded as a module of the chain package (its relative import)."""
    name = "flexledger.chain._generated_for_test"
    module = types.ModuleType(name)
    module.__package__ = "flexledger.chain"
    sys.modules[name] = module  # dataclasses look their module up
    exec(compile(generate_structs(ARTIFACTS), "<structs>", "exec"), module.__dict__)
    yield module
    del sys.modules[name]


def test_structs_are_named_by_solidity_and_disambiguated_by_contract(generated: types.ModuleType) -> None:
    assert {"Shape", "GeoPoint", "MapPoint"} <= set(vars(generated))
    assert "Point" not in vars(generated)  # two shapes of one name: both carry their contract's
    assert generated.BY_INTERNAL_TYPE["struct Geo.Shape[]".removesuffix("[]")] is generated.Shape
    assert generated.Shape.ABI_TYPE == "(uint32,(int64,address),(int64,address)[],bytes32[2],uint8[][],string,bool)"


def test_a_nested_struct_round_trips_through_the_abi_encoder(generated: types.ModuleType) -> None:
    owner = OWNER
    point = generated.GeoPoint(-5, owner)
    shape = generated.Shape(7, point, (point, generated.GeoPoint(3, owner)), (b"\x01" * 32, b"\x02" * 32),
                            ((1, 2), (), (3,)), "roof", True)
    data = encode([generated.Shape.ABI_TYPE], [shape.to_abi()])
    (raw,) = decode_values([generated.Shape.ABI_TYPE], data)
    back = generated.Shape.from_abi(raw)
    assert back == shape
    assert back.corners[1] == generated.GeoPoint(3, owner) and back.paths == ((1, 2), (), (3,))
    (plain,) = decode([generated.Shape.ABI_TYPE], data)  # eth_abi's own: lower-case addresses
    assert generated.Shape.from_abi(plain) == shape
    with pytest.raises(FrozenInstanceError):
        shape.id = 8  # type: ignore[misc]
    assert hash(shape) == hash(back)


def test_the_struct_module_is_deterministic() -> None:
    assert generate_structs(ARTIFACTS) == generate_structs(list(reversed(ARTIFACTS)))


def test_bindings_take_and_return_the_structs() -> None:
    text = generate_bindings(ARTIFACTS)
    assert "def shape(self, id: int, *, block: BlockId = \"latest\") -> Shape:" in text
    assert "return Shape.from_abi(raw)" in text
    assert "def draw(self, shapes: list[Shape], *, sender" in text
    assert "def near(self, p: MapPoint, *, block" in text
    assert "class GeoExtent(NamedTuple):" in text and "    count_: int\n    origin: GeoPoint\n" in text
    assert "return GeoExtent(int(raw[0]), GeoPoint.from_abi(raw[1]))" in text  # several results, by name
    assert "tuple[" not in text  # no struct is an anonymous tuple


def test_arguments_are_encoded_from_the_structs() -> None:
    anchor = structs.Anchor(b"\x11" * 32, OWNER, 3, 99)
    assert to_abi_value([anchor, (anchor,), 5]) == [anchor.to_abi(), (anchor.to_abi(),), 5]
    assert structs.Anchor.from_abi(anchor.to_abi()) == anchor


def test_the_error_table_makes_the_same_classes_as_before() -> None:
    text = generate_revert_errors(ARTIFACTS)
    assert "GeoOffMap_" in text  # one name, two signatures: both importable, by selector
    namespace: dict[str, Any] = {"__name__": "flexledger.chain._errors_for_test", "__package__": "flexledger.chain"}
    exec(compile(text, "<revert_errors>", "exec"), namespace)
    classes = namespace["CLASSES"]
    assert len(classes) == 2 and all(issubclass(c, ContractCustomError) for c in classes.values())
    with_args = next(c for c in classes.values() if c.ARG_NAMES)
    err = with_args(-1, OWNER, contract="Geo", function="draw")
    assert (err.x, err.owner, err.NAME) == (-1, OWNER, "GeoOffMap")


def test_a_generated_error_decodes_under_its_own_name() -> None:
    cls = revert_errors.AccessControlUnauthorizedAccount
    data = cls.SELECTOR + encode(["address", "bytes32"], [OWNER, b"\x07" * 32])
    err = decode_revert(data, contract="MarketAuthority", function="grantRole")
    assert type(err) is cls and err.needed_role == b"\x07" * 32
    assert err.account == OWNER
    assert cls.__module__ == "flexledger.chain.revert_errors" and cls.__name__ == "AccessControlUnauthorizedAccount"
    assert revert_errors.BY_SELECTOR[cls.SELECTOR] is cls


def test_a_field_named_as_a_python_keyword_gets_an_underscore() -> None:
    odd = _artifact("Odd", [{"type": "function", "name": "f", "stateMutability": "view", "outputs": [],
                             "inputs": [_param("p", "tuple", "struct Odd.Pair", [_param("from", "uint8"),
                                                                                   _param("in", "uint8")])]}])
    text = generate_structs([odd])
    compile(text, "<structs>", "exec")
    assert "    from_: int\n    in_: int\n" in text
