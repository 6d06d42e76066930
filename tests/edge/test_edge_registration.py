"""The gateway signs its meter's consent to be registered (RT-12): `flexledger-edge
sign-registration` writes a file whose signature recovers to the meter, over the typed data
wallets sign (eth-account's ``encode_typed_data``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from eth_account import Account
from eth_account.messages import encode_typed_data

from flexledger_edge.cli import main
from flexledger_edge.registration import MeterRegistration, RegistrationError, read_registration

METER_KEY = "0x" + "4c" * 32  # the meter key of the base configuration (tests/edge/conftest.py)
OWNER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
REGISTRY = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"


def test_sign_registration_writes_a_consent_the_meter_signed(tmp_path: Path, write_config: Callable[..., Path]) -> None:
    out = tmp_path / "consent.json"
    code = main(["sign-registration", "--config", str(write_config()), "--owner", OWNER, "--type", "2", "--nonce", "3",
                 "--deadline", "1893456000", "--chain-id", "31337", "--registry", REGISTRY, "--out", str(out)])
    assert code == 0
    terms, signature = read_registration(out)
    meter = Account.from_key(METER_KEY).address
    assert (terms.meter, terms.owner, terms.asset_type, terms.nonce, terms.deadline) == (meter, OWNER, 2, 3, 1893456000)
    assert Account.recover_message(encode_typed_data(full_message=terms.typed_data()), signature=signature) == meter
    assert json.loads(out.read_text())["registry"] == REGISTRY


def test_a_file_that_is_not_a_consent_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"meter": "0x00"}')
    try:
        read_registration(bad)
    except RegistrationError as exc:
        assert "not a meter registration file" in str(exc)
    else:
        raise AssertionError("accepted")
    try:
        MeterRegistration(OWNER, OWNER, 256, 0, 0, 1, REGISTRY)
    except RegistrationError:
        pass
    else:
        raise AssertionError("a uint8 of 256 accepted")
