"""Encrypted keystores."""

from __future__ import annotations

from pathlib import Path

import pytest

from flexledger.identity import keys


def test_keystore_round_trip(tmp_path: Path) -> None:
    account = keys.new_account()
    path = keys.save_keystore(account, "correct horse", tmp_path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert keys.load_keystore(path, "correct horse").address == account.address


def test_wrong_password_is_a_clear_error(tmp_path: Path) -> None:
    path = keys.save_keystore(keys.new_account(), "right", tmp_path)
    with pytest.raises(keys.KeystoreError, match="wrong password"):
        keys.load_keystore(path, "wrong")


def test_keystore_is_never_overwritten(tmp_path: Path) -> None:
    account = keys.new_account()
    keys.save_keystore(account, "pw", tmp_path)
    with pytest.raises(keys.KeystoreError, match="exists"):
        keys.save_keystore(account, "pw", tmp_path)
