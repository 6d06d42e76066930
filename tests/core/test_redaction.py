"""The one redaction of secrets in URLs: what stays readable (tests/redteam/test_config_secrets.py
holds the attacks)."""

from __future__ import annotations

from flexledger.redaction import MASK, redact_url, url_secrets


def test_a_sqlite_path_is_no_secret_but_its_query_values_are() -> None:
    assert redact_url("sqlite:////var/lib/flexledger/flexledger.db") == "sqlite:////var/lib/flexledger/flexledger.db"
    assert redact_url("sqlite:///relative/x.db") == "sqlite:///relative/x.db"
    assert redact_url("sqlite+pysqlite:////a/b.db?key=hunter2") == f"sqlite+pysqlite:////a/b.db?key={MASK}"
    assert url_secrets("sqlite:////var/lib/flexledger/flexledger.db") == []
    assert url_secrets("sqlite:////a/b.db?key=hunter2") == ["hunter2"]


def test_a_service_url_keeps_its_host_and_loses_its_secrets() -> None:
    shown = redact_url("postgresql+psycopg://flex:hunter2@db.grid.example:5432/flex?sslpassword=s3cret")
    assert shown == f"postgresql+psycopg://flex:{MASK}@db.grid.example:5432/flex?sslpassword={MASK}"
