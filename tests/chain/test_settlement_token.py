"""The settlement token: OpenZeppelin ERC-20 with permit, minted by the authority on dev chains."""

from __future__ import annotations

import pytest

from flexledger.chain import revert_errors
from flexledger.chain.bindings import SettlementTokenClient
from flexledger.chain.connection import ChainConnection
from flexledger.chain.manifest import Manifest
from flexledger.chain.transactions import Signer


def test_mint_and_transfer(conn: ChainConnection, manifest: Manifest, deployer: Signer, dev_signers: list[Signer]) -> None:
    token = SettlementTokenClient(conn, manifest.address("SettlementToken"), signer=deployer)
    assert (token.name(), token.symbol(), token.decimals()) == ("flexledger euro", "fEUR", 2)
    token.mint(dev_signers[3].address, 10_000)
    token.transfer(dev_signers[4].address, 2_500, sender=dev_signers[3])
    assert token.balance_of(dev_signers[4].address) == 2_500
    with pytest.raises(revert_errors.SettlementTokenNotAuthority):
        token.mint(dev_signers[3].address, 1, sender=dev_signers[3])
    with pytest.raises(revert_errors.ERC20InsufficientBalance) as err:
        token.transfer(dev_signers[5].address, 10**9, sender=dev_signers[3])
    assert err.value.needed == 10**9
