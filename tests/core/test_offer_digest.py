"""An offer's digest, hashed from its words when every field is within its width, is eth-account's
EIP-712 digest of the same typed data; an offer with a field beyond its width still goes through
the ABI encoder, which refuses it."""

from __future__ import annotations

import pytest
from eth_abi.exceptions import EncodingError
from hypothesis import given
from hypothesis import strategies as st

from flexledger.rules.orders import PACKED_WIDTHS, Offer
from flexledger.rules.typed_data import Eip712Domain

DOMAIN = Eip712Domain("OrderBook", "1", 31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3")
FIELDS = st.tuples(*(st.binary(min_size=32, max_size=32) if w == 32 else st.integers(0, 2 ** (8 * w) - 1)
                     for w in PACKED_WIDTHS))


@given(FIELDS)
def test_the_digest_is_eth_accounts(values: tuple[object, ...]) -> None:
    offer = Offer(*values)  # type: ignore[arg-type]
    assert offer.digest(DOMAIN.separator()) == offer.typed(DOMAIN).digest()


def test_a_field_beyond_its_width_is_refused() -> None:
    offer = Offer(1, 2**64, 0, 0, 1, 0, 1, 1, 0, 0, 0, bytes(32), 0, 0)  # asset is a uint64
    with pytest.raises(EncodingError):
        offer.digest(DOMAIN.separator())
