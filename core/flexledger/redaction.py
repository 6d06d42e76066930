"""Secrets kept out of everything flexledger prints or writes: one redaction, used everywhere.

A service URL can carry a secret in three places: the password of its user part
(``postgresql://flex:PASSWORD@db/flex``), a path segment (RPC providers put the API key there:
``https://mainnet.example/v3/KEY``) and the query (``?apikey=KEY``). :func:`redact_url` keeps
what tells an operator which service is meant (scheme, user, host, port, short word-like path
segments) and masks the rest; :func:`scrub` masks the same secrets inside any text, such as an
exception message a library built from the URL.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlsplit, urlunsplit

MASK = "***"
# Path segments an operator needs to recognise an endpoint ("v3", "rpc", "ext", "bc") and that
# no provider uses as a key; anything else in a path may be one.
_PLAIN_SEGMENT = re.compile(r"^(?:[A-Za-z]{1,12}|v\d{1,3})$")
# Environment variables whose values are secrets in full, or URLs that may hold one.
SECRET_ENV = ("FLEXLEDGER_KEY_PASSWORD",)
URL_ENV = ("FLEXLEDGER_RPC_URL", "FLEXLEDGER_DATABASE_URL", "FLEXLEDGER_MQTT_URL")


def _is_file_url(scheme: str) -> bool:
    """A URL naming a file on this machine (SQLite: ``sqlite:///rel.db``, ``sqlite+pysqlite:////abs.db``)."""
    return scheme == "sqlite" or scheme.startswith("sqlite+")


def url_secrets(url: str) -> list[str]:
    """The parts of ``url`` that may be secrets (password, key-like path segments, query values)."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return [url] if url else []
    if _is_file_url(parts.scheme):
        return [v for _k, v in parse_qsl(parts.query, keep_blank_values=False) if v]
    found = [password] if password else []
    found += [s for s in parts.path.split("/") if s and not _PLAIN_SEGMENT.match(s)]
    found += [v for _k, v in parse_qsl(parts.query, keep_blank_values=False)]
    if parts.fragment:
        found.append(parts.fragment)
    return [s for s in found if s]


def redact_url(url: str) -> str:
    """``url`` fit to print or write: no password, no key-like path segment, no query value."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
        user = parts.username
    except ValueError:
        return MASK  # not a URL anyone can read safely: show nothing of it
    if _is_file_url(parts.scheme):  # sqlite:////var/lib/x.db: a local path, whose folders are no secret
        base = url.split("?", 1)[0]
        query = "&".join(f"{k}={MASK}" for k, _v in parse_qsl(parts.query, keep_blank_values=True))
        return f"{base}?{query}" if query else base
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    if user:
        netloc = f"{user}:{MASK}@{netloc}" if parts.password else f"{user}@{netloc}"
    path = "/".join(s if not s or _PLAIN_SEGMENT.match(s) else MASK for s in parts.path.split("/"))
    query = "&".join(f"{k}={MASK}" for k, _v in parse_qsl(parts.query, keep_blank_values=True))
    return urlunsplit((parts.scheme, netloc, path, query, ""))


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of each secret (longest first) replaced by the mask."""
    for secret in sorted({s for s in secrets if s and len(s) >= 3}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def environment_secrets(environ: dict[str, str] | None = None) -> list[str]:
    """The secrets that the process's ``FLEXLEDGER_*`` variables hold (whole values or URL parts)."""
    env = os.environ if environ is None else environ
    found = [env[name] for name in SECRET_ENV if env.get(name)]
    for name in URL_ENV:
        if env.get(name):
            found += url_secrets(env[name])
    return found


def scrub_urls(text: str, *urls: str | None) -> str:
    """``text`` with the secrets of each URL, and of the environment's, masked."""
    secrets = environment_secrets()
    for url in urls:
        if url:
            secrets += url_secrets(url)
    return scrub(text, secrets)


def child_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a process flexledger starts (the local node, the embedded broker):
    the caller's, without the secrets it holds (key password, service URLs with credentials)."""
    env = dict(os.environ if environ is None else environ)
    for name in (*SECRET_ENV, *URL_ENV):
        env.pop(name, None)
    return env
