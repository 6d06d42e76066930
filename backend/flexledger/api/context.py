"""What the app's routes share: settings, the deployment, the database's sessions, the token signer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

from flexledger.api.auth import SessionTokens
from flexledger.api.settings import ApiSettings
from flexledger.api.siwe import Expected
from flexledger.book.offers import ChainReads

if TYPE_CHECKING:
    from flexledger.deployment import Deployment


@dataclass(frozen=True)
class ApiContext:
    """One server's state; ``relayer`` is the address that will send the queued offers (the
    aggregator's), as which intake judges them."""

    settings: ApiSettings
    deployment: Deployment
    sessions: sessionmaker[Session]
    relayer: str
    chain: ChainReads  # the latest block's reads, kept between requests until the next block

    @property
    def tokens(self) -> SessionTokens:
        return SessionTokens(self.settings.secret.get_secret_value().encode(), self.settings.token_seconds)

    @property
    def expected(self) -> Expected:
        return Expected(domain=self.settings.domain, uri=self.settings.uri, chain_id=self.deployment.conn.chain_id)
