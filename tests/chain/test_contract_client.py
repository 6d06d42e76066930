"""Typed clients: custom errors as typed exceptions with their arguments, events, gas records."""

from __future__ import annotations

import pytest
from eth_utils import keccak

from flexledger.chain import revert_errors
from flexledger.chain.bindings import RoleRegistryClient
from flexledger.chain.connection import ChainConnection
from flexledger.chain.errors import (
    ContractCustomError,
    ContractRevertError,
    PanicError,
    RevertReasonError,
    UnknownRevertError,
)
from flexledger.chain.manifest import Manifest
from flexledger.chain.reverts import decode_revert
from flexledger.chain.transactions import Signer

FOREVER = 2**64 - 1
DSO = keccak(text="DSO")


@pytest.fixture
def roles(conn: ChainConnection, manifest: Manifest, deployer: Signer) -> RoleRegistryClient:
    return RoleRegistryClient(conn, manifest.address("RoleRegistry"), signer=deployer)


def test_a_custom_error_is_a_typed_exception_with_its_arguments(
    roles: RoleRegistryClient, dev_signers: list[Signer]
) -> None:
    stranger = dev_signers[5]
    with pytest.raises(revert_errors.RoleRegistryNotIssuer) as err:
        roles.issue_credential(stranger.address, DSO, 0, FOREVER, bytes(32), sender=stranger)
    assert err.value.account == stranger.address
    assert err.value.arguments == {"account": stranger.address}
    assert err.value.contract == "RoleRegistry" and err.value.function == "issueCredential"
    assert isinstance(err.value, ContractCustomError)


def test_errors_of_inherited_openzeppelin_code_are_typed_too(
    conn: ChainConnection, manifest: Manifest, dev_signers: list[Signer]
) -> None:
    from flexledger.chain.bindings import MarketAuthorityClient

    authority = MarketAuthorityClient(conn, manifest.address("MarketAuthority"))
    stranger = dev_signers[5]
    with pytest.raises(revert_errors.AccessControlUnauthorizedAccount) as err:
        authority.grant_role(keccak(text="ISSUER"), stranger.address, sender=stranger)
    assert err.value.account == stranger.address
    assert err.value.needed_role == bytes(32)  # DEFAULT_ADMIN_ROLE


def test_each_error_has_its_own_class(roles: RoleRegistryClient) -> None:
    with pytest.raises(revert_errors.RoleRegistryUnknownRole) as err:
        roles.issue_credential(roles.address, keccak(text="KING"), 0, FOREVER, bytes(32))
    assert err.value.role == keccak(text="KING")
    with pytest.raises(revert_errors.RoleRegistryInvalidValidity) as bad:
        roles.issue_credential(roles.address, DSO, 10, 5, bytes(32))
    assert (bad.value.valid_from, bad.value.valid_until) == (10, 5)


def test_a_mined_failure_is_decoded_too(roles: RoleRegistryClient, conn: ChainConnection) -> None:
    # With the gas given, no estimate runs first: the transaction is mined and fails on chain.
    with pytest.raises(revert_errors.RoleRegistryNotIssued) as err:
        roles.revoke_credential(roles.address, DSO, gas=200_000)
    assert err.value.subject == roles.address


def test_events_are_decoded_and_gas_recorded(roles: RoleRegistryClient, conn: ChainConnection) -> None:
    subject = "0x000000000000000000000000000000000000dEaD"
    before = len(conn.gas_log.records)
    result = roles.issue_credential(subject, DSO, 1, FOREVER, b"\x11" * 32)
    event = result.event("CredentialIssued")
    assert event.args == {
        "subject": subject,
        "role": DSO,
        "validFrom": 1,
        "validUntil": FOREVER,
        "credentialHash": b"\x11" * 32,
        "issuer": roles.signer.address if roles.signer else "",
    }
    assert result.gas_used and result.gas_used < 80_000
    assert conn.gas_log.records[before:][0].function == "issueCredential"
    assert roles.has_market_role(subject, DSO)
    assert roles.credential_of(subject, DSO) == (1, FOREVER, False, b"\x11" * 32)
    logged = roles.events("CredentialIssued", from_block=result.block_number or 0)
    assert [e.args["subject"] for e in logged] == [subject]


def test_snapshots_isolate_tests(roles: RoleRegistryClient) -> None:
    assert not roles.has_market_role("0x000000000000000000000000000000000000dEaD", DSO)


def test_builtin_reverts_decode() -> None:
    reason = bytes.fromhex("08c379a0") + bytes.fromhex(
        "0000000000000000000000000000000000000000000000000000000000000020"
        "0000000000000000000000000000000000000000000000000000000000000003"
        "6261640000000000000000000000000000000000000000000000000000000000"
    )
    assert isinstance(decode_revert(reason), RevertReasonError)
    assert decode_revert(reason).reason == "bad"  # type: ignore[attr-defined]
    panic = bytes.fromhex("4e487b71") + (0x11).to_bytes(32, "big")
    err = decode_revert(panic)
    assert isinstance(err, PanicError) and "overflow" in str(err)
    assert isinstance(decode_revert(b"\xde\xad\xbe\xef"), UnknownRevertError)
    assert isinstance(decode_revert(b""), ContractRevertError)


def test_views_called_in_a_batch_answer_as_one_by_one(
    conn: ChainConnection, manifest: Manifest, deployer: Signer, dev_signers: list[Signer]
) -> None:
    from flexledger.chain.bindings import MarketRegistryClient, SettlementTokenClient

    token = SettlementTokenClient(conn, manifest.address("SettlementToken"), signer=deployer)
    for n, s in enumerate(dev_signers[1:6], start=1):
        token.mint(s.address, 1_000 * n)
    who = [(s.address,) for s in dev_signers[:6]]
    assert token.call_many("balanceOf(address)", who, chunk=4) == [token.balance_of(a) for (a,) in who]
    before = int(conn.w3.eth.block_number)
    token.mint(dev_signers[1].address, 7)
    assert token.call_many("balanceOf(address)", who[1:2], block=before)[0] == 1_000  # state at a past block
    assert token.call_many("balanceOf(address)", []) == []
    markets = MarketRegistryClient(conn, manifest.address("MarketRegistry"))
    with pytest.raises(revert_errors.MarketRegistryUnknownMarket):  # an answer that reverts: raised, typed
        markets.call_many("marketParams(uint32)", [(999,)])
