"""decode_values reads one-word values (uint, int, address, bool, bytesN) from their words itself:
it must give what eth_abi gives, and leave to eth_abi (which refuses them) the words eth_abi refuses."""

from __future__ import annotations

import pytest
from eth_abi import decode, encode
from eth_abi.exceptions import DecodingError
from eth_utils import to_checksum_address
from hypothesis import given
from hypothesis import strategies as st

from flexledger.chain.abi import decode_values

TYPES = ["uint8", "uint64", "uint256", "int32", "int256", "address", "bool", "bytes4", "bytes32"]
VALUES = st.tuples(
    st.integers(0, 2**8 - 1), st.integers(0, 2**64 - 1), st.integers(0, 2**256 - 1),
    st.integers(-(2**31), 2**31 - 1), st.integers(-(2**255), 2**255 - 1),
    st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex()), st.booleans(),
    st.binary(min_size=4, max_size=4), st.binary(min_size=32, max_size=32),
)


@given(VALUES)
def test_one_word_values_decode_as_eth_abi_decodes_them(values: tuple[object, ...]) -> None:
    data = encode(TYPES, list(values))
    expected = [to_checksum_address(v) if t == "address" else v for t, v in zip(TYPES, decode(TYPES, data), strict=True)]
    assert list(decode_values(TYPES, data)) == expected


@pytest.mark.parametrize(("typ", "word"), [
    ("uint8", (256).to_bytes(32, "big")),  # beyond its width
    ("int8", (128).to_bytes(32, "big")),
    ("address", b"\x01" + bytes(31)),  # dirty high bytes
    ("bool", (2).to_bytes(32, "big")),
    ("bytes4", bytes(31) + b"\x01"),  # dirty padding
])
def test_a_word_eth_abi_refuses_is_refused(typ: str, word: bytes) -> None:
    with pytest.raises(DecodingError):
        decode_values([typ], word)


def test_other_types_still_go_through_eth_abi() -> None:
    data = encode(["uint256[]", "string"], [[1, 2], "x"])
    assert decode_values(["uint256[]", "string"], data) == ([1, 2], "x")
