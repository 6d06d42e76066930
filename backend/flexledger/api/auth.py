"""Who is calling: sign-in nonces (single use, in SQL), wallet signatures (an EOA's, or a contract
wallet's through ERC-1271), session tokens (HMAC-signed, short-lived) and API keys (kept hashed).

A token or key only says which address calls; what that address may do is read from the chain's
RoleRegistry at each request (``deps``), so a revoked credential loses its access at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from eth_abi import encode
from eth_utils import keccak, to_checksum_address
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from flexledger.api.tables import ApiKey, SignInNonce
from flexledger.errors import FlexledgerError
from flexledger.rules.typed_data import recover_strict

if TYPE_CHECKING:
    from flexledger.chain.connection import ChainConnection

ERC1271_MAGIC = bytes.fromhex("1626ba7e")  # isValidSignature(bytes32,bytes)'s selector, its "yes"
ERC1271_CALL = keccak(text="isValidSignature(bytes32,bytes)")[:4]
KEY_PREFIX = "flk_"
TOKEN_PREFIX = "fls1."


class CredentialsError(FlexledgerError):
    """A token or an API key that is malformed, forged, expired or revoked (the API answers 401)."""

    hint = "sign in again (POST /v1/auth/nonce, then /v1/auth/login) or use a live API key"


# ------------------------------------------------------------------------------------- nonces


def issue_nonce(session: Session, now: int, ttl_seconds: int) -> SignInNonce:
    """A fresh random nonce (128 bits, hex: letters and digits as EIP-4361 wants), stored unused.
    Expired nonces go at the same time: none can be spent any more, so the table holds only the
    last ``ttl_seconds``' worth."""
    session.execute(delete(SignInNonce).where(SignInNonce.expires_at <= now))
    row = SignInNonce(nonce=secrets.token_hex(16), issued_at=now, expires_at=now + ttl_seconds, used_at=None)
    session.add(row)
    session.flush()
    return row


def consume_nonce(session: Session, nonce: str, now: int) -> bool:
    """Use the nonce up, in one conditional UPDATE: of two logins racing with it, one wins."""
    result = session.execute(
        update(SignInNonce)
        .where(SignInNonce.nonce == nonce, SignInNonce.used_at.is_(None), SignInNonce.expires_at > now)
        .values(used_at=now))
    return bool(getattr(result, "rowcount", 0) == 1)


# --------------------------------------------------------------------------------- signatures


def wallet_signed(conn: ChainConnection | None) -> Callable[[str, bytes, bytes], bool]:
    """``signed_by(address, hash, signature)``: an EOA's signature recovers to the address; else, when
    the address holds code, the contract wallet says yes to ``isValidSignature`` (ERC-1271)."""

    def signed_by(address: str, digest: bytes, signature: bytes) -> bool:
        if recover_strict(digest, signature) == to_checksum_address(address):
            return True
        if conn is None or not conn.w3.eth.get_code(to_checksum_address(address)):
            return False
        data = ERC1271_CALL + encode(["bytes32", "bytes"], [digest, signature])
        try:
            answer = bytes(conn.w3.eth.call({"to": to_checksum_address(address), "data": data}))
        except Exception:  # a wallet that reverts, or answers nothing, did not sign
            return False
        return answer[:4] == ERC1271_MAGIC

    return signed_by


# ------------------------------------------------------------------------------------- tokens


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class SessionTokens:
    """Session tokens: ``fls1.<claims>.<HMAC-SHA256 of the claims under the server's secret>``."""

    secret: bytes
    ttl_seconds: int

    def issue(self, address: str, now: int) -> tuple[str, int]:
        expires = now + self.ttl_seconds
        claims = _b64(json.dumps({"sub": to_checksum_address(address), "iat": now, "exp": expires},
                                 separators=(",", ":")).encode())
        return f"{TOKEN_PREFIX}{claims}.{self._mac(claims)}", expires

    def _mac(self, claims: str) -> str:
        return _b64(hmac.new(self.secret, claims.encode(), hashlib.sha256).digest())

    def address(self, token: str, now: int) -> str:
        """The address a live token was issued to (CredentialsError otherwise)."""
        body = token.removeprefix(TOKEN_PREFIX)
        claims, _, mac = body.partition(".")
        if not mac or not hmac.compare_digest(mac, self._mac(claims)):
            raise CredentialsError("the session token is not one this server signed")
        try:
            payload = json.loads(_unb64(claims))
            subject, expires = to_checksum_address(payload["sub"]), int(payload["exp"])
        except (ValueError, KeyError, TypeError) as exc:  # a token we signed always parses: belt and braces
            raise CredentialsError(f"the session token's claims are unreadable ({exc})") from None
        if expires <= now:
            raise CredentialsError("the session token has expired")
        return subject


# --------------------------------------------------------------------------------------- keys


def hash_key(key: str) -> str:
    """SHA-256 is enough for a 256-bit random key (no dictionary to guess from), and fast per request."""
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(session: Session, party: str, label: str, now: int) -> tuple[ApiKey, str]:
    """A new key for ``party``: the row (its hash) and the key itself, shown once."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(party=to_checksum_address(party), key_hash=hash_key(key), prefix=key[:12], label=label,
                 created_at=now, revoked_at=None)
    session.add(row)
    session.flush()
    return row, key


def key_party(session: Session, key: str) -> str:
    """The party a live API key acts for (CredentialsError for an unknown or revoked key)."""
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(key)))
    if row is None or row.revoked_at is not None:
        raise CredentialsError("the API key is unknown or revoked")
    return row.party


def party_keys(session: Session, party: str) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).where(ApiKey.party == to_checksum_address(party)).order_by(ApiKey.id)))


def revoke_key(session: Session, party: str, key_id: int, now: int) -> bool:
    """Revoke the party's key ``key_id``; False when the party has no such key (another's is none of its)."""
    row = session.get(ApiKey, key_id)
    if row is None or row.party != to_checksum_address(party):
        return False
    if row.revoked_at is None:
        row.revoked_at = now
    return True
