"""The offer's fast EIP-712 digest (its ABI words written by hand) equals eth-account's generic
encoder's, for any offer within its Solidity types."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from flexledger.rules.orders import PACKED_WIDTHS, Offer
from flexledger.rules.typed_data import Eip712Domain

DOMAIN = Eip712Domain(name="OrderBook", version="1", chain_id=31337,
                      verifying_contract="0x5FbDB2315678afecb367f032d93F642f64180aa3")


def _field(width: int, name: str) -> st.SearchStrategy[object]:
    return st.binary(min_size=32, max_size=32) if name == "baseline" else st.integers(0, 2 ** (8 * width) - 1)


offers = st.builds(Offer, *(_field(w, n) for w, n in zip(PACKED_WIDTHS, Offer.__dataclass_fields__, strict=True)))


@settings(max_examples=300, deadline=None)
@given(offers)
def test_the_fast_digest_is_the_eip712_digest(offer: Offer) -> None:
    assert offer.digest(DOMAIN.separator()) == offer.typed(DOMAIN).digest()


def test_the_tuple_is_the_fields_in_order() -> None:
    offer = Offer(*range(11), bytes(32), 12, 13)
    assert offer.as_tuple() == tuple(getattr(offer, f) for f in Offer.__dataclass_fields__)
