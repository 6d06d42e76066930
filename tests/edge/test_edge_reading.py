"""Readings: EIP-712 hashing and signing agree with eth-account; payloads round-trip."""

from __future__ import annotations

import json

import pytest
from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data

from flexledger_edge.reading import (
    MeterSigner,
    OracleDomain,
    Reading,
    ReadingError,
    SignedReading,
    recover_signer,
    verify,
)
from flexledger_edge.topics import readings_topic


def test_signature_recovers_the_meter_address(meter_key: bytes, domain: OracleDomain) -> None:
    signer = MeterSigner(meter_key, domain)
    signed = signer.sign_new(isp_start=1_700_000_100 - 1_700_000_100 % 900, sequence=1, import_wh=312, export_wh=0)
    assert signer.address == Account.from_key(meter_key).address
    assert recover_signer(signed, domain) == signer.address
    assert verify(signed, domain)
    assert len(signed.signature) == 65 and signed.signature[64] in (27, 28)


def test_typed_data_hash_equals_eth_account(meter_key: bytes, domain: OracleDomain) -> None:
    reading = Reading(Account.from_key(meter_key).address, 900 * 12345, 42, 2**64 - 1, 17)
    signable = encode_typed_data(full_message=reading.typed_data(domain))
    assert reading.digest(domain) == _hash_eip191_message(signable)
    # eth-account's three-argument form gives the same signature as ours.
    signed = Account.sign_typed_data(meter_key, domain.as_dict(), {"Reading": reading.typed_data(domain)["types"]["Reading"]}, reading.message())
    assert bytes(signed.signature) == MeterSigner(meter_key, domain).sign(reading).signature
    assert bytes(signed.message_hash) == reading.digest(domain)


def test_payload_round_trip_and_topic(meter_key: bytes, domain: OracleDomain) -> None:
    signed = MeterSigner(meter_key, domain).sign_new(isp_start=900, sequence=3, import_wh=1, export_wh=2)
    payload = json.loads(signed.to_json())
    assert set(payload) == {"meter", "ispStart", "sequence", "importWh", "exportWh", "signature"}
    assert payload["meter"] == signed.reading.meter  # checksummed
    assert payload["signature"].startswith("0x") and len(payload["signature"]) == 132
    assert SignedReading.from_json(signed.to_json()) == signed
    assert readings_topic(signed.reading.meter) == "flexledger/v1/readings/" + signed.reading.meter.lower()


def test_tampered_or_foreign_domain_does_not_verify(meter_key: bytes, domain: OracleDomain) -> None:
    signed = MeterSigner(meter_key, domain).sign_new(isp_start=900, sequence=1, import_wh=100, export_wh=0)
    payload = json.loads(signed.to_json())
    payload["importWh"] = 99
    assert not verify(SignedReading.from_json(json.dumps(payload)), domain)
    assert not verify(signed, OracleDomain(domain.chain_id + 1, domain.verifying_contract))


@pytest.mark.parametrize(
    "change",
    [{"sequence": 0}, {"importWh": -1}, {"exportWh": 2**64}, {"ispStart": "900"}, {"meter": "0xabc"}, {"extra": 1}],
)
def test_malformed_payloads_are_refused(meter_key: bytes, domain: OracleDomain, change: dict[str, object]) -> None:
    payload = json.loads(MeterSigner(meter_key, domain).sign_new(isp_start=900, sequence=1, import_wh=1, export_wh=0).to_json())
    payload.update(change)
    with pytest.raises(ReadingError):
        SignedReading.from_json(json.dumps(payload))


def test_a_key_signs_only_its_own_meter(meter_key: bytes, domain: OracleDomain) -> None:
    other = Account.create().address
    with pytest.raises(ReadingError):
        MeterSigner(meter_key, domain).sign(Reading(other, 900, 1, 0, 0))
