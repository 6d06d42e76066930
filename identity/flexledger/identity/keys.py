"""Keys: generation, encrypted JSON keystores (eth-account), and the development-key guard."""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from flexledger.chain.connection import ChainConnection
from flexledger.chain.errors import DevKeyRefusedError
from flexledger.chain.transactions import Signer
from flexledger.errors import FlexledgerError

# anvil's (and hardhat's) published mnemonic: its keys are known to everybody.
DEV_MNEMONIC = "test test test test test test test test test test test junk"
DEV_ACCOUNT_COUNT = 20


class KeystoreError(FlexledgerError):
    """A keystore file is missing, unreadable, or its password is wrong."""


@cache
def dev_accounts() -> tuple[LocalAccount, ...]:
    """The well-known development accounts (index 0 is anvil's default sender)."""
    Account.enable_unaudited_hdwallet_features()
    return tuple(
        Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}")
        for i in range(DEV_ACCOUNT_COUNT)
    )


@cache
def dev_addresses() -> frozenset[str]:
    return frozenset(a.address.lower() for a in dev_accounts())


def is_dev_key(address: str) -> bool:
    return address.lower() in dev_addresses()


def guard_key(address: str, conn: ChainConnection) -> None:
    """Refuse a well-known development key anywhere but a local development chain."""
    if is_dev_key(address) and not conn.is_local_dev_chain():
        raise DevKeyRefusedError(
            f"{address} is a well-known development key (anyone can sign with it) and "
            f"{conn.display_url} (chain id {conn.chain_id}) is not a local development chain",
            hint="create a key with `flexledger identity new` and use its keystore instead",
        )


def signer(account: LocalAccount, conn: ChainConnection) -> Signer:
    """A signer for ``account`` on ``conn``, after the development-key guard."""
    guard_key(account.address, conn)
    return Signer(account, conn)


def new_account() -> LocalAccount:
    """A fresh key from the operating system's randomness."""
    account: LocalAccount = Account.create(os.urandom(32).hex())
    return account


def save_keystore(account: LocalAccount, password: str, folder: Path, *, name: str | None = None) -> Path:
    """Write ``account`` as an encrypted keystore (scrypt); the file name holds the address."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / f"{name or account.address}.json"
    if path.exists():
        raise KeystoreError(f"{path} exists already", hint="choose another name or remove the old file")
    keystore = Account.encrypt(account.key, password)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(keystore, out)
    return path


def load_keystore(path: Path, password: str) -> LocalAccount:
    if not path.is_file():
        raise KeystoreError(f"no keystore at {path}", hint="create one with `flexledger identity new`")
    try:
        keystore = json.loads(path.read_text())
    except ValueError as exc:
        raise KeystoreError(f"{path} is not a JSON keystore: {exc}") from exc
    try:
        key = Account.decrypt(keystore, password)
    except ValueError as exc:
        raise KeystoreError(f"cannot decrypt {path}: wrong password?", hint="check the password") from exc
    account: LocalAccount = Account.from_key(key)
    return account
