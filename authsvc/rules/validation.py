"""The one validator of session tokens: shape, cache, lookup, expiry.

``validate`` serves ValidateToken (the hot path: the validation cache, then the fast
lookup); ``validate_in`` serves flows that act on a session inside their transaction
(ChangePassword). Both read the same read model and apply the same rules.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session as DbSession

from authsvc.errors import TokenExpired, TokenInvalid
from authsvc.rules.tokens import TokenKind, is_well_formed, token_hash
from authsvc.storage.read_model import Validated, lookup_in, session_in
from authsvc.storage.token_lookup import Lookup
from authsvc.storage.validation_cache import ValidationCache

Clock = Callable[[], datetime]


class TokenValidator:
    """Validates session tokens through the cache, then the lookup."""

    def __init__(self, lookup: Lookup, cache: ValidationCache[Validated], clock: Clock) -> None:
        self.lookup = lookup
        self.cache = cache
        self._clock = clock

    def validate(self, session_token: str) -> Validated:
        """The user and session of a live token. Raises TokenInvalid or TokenExpired.

        A lost database raises StorageUnavailable.
        """
        digest = _digest(session_token)
        cached = self.cache.get(digest)
        if cached is not None:
            return self._live(cached)  # a cached session expires like any other
        epoch = self.cache.epoch
        found = self.lookup.find(digest)
        if found is None:
            raise TokenInvalid()
        self.cache.put(digest, self._live(found), epoch)
        return found

    def validate_in(self, db: DbSession, session_token: str) -> Validated:
        """Like ``validate``, inside ``db``'s transaction and without the cache."""
        found = lookup_in(db, _digest(session_token))
        if found is None:
            raise TokenInvalid()
        return self._live(found)

    def validate_session_in(self, db: DbSession, session_id: uuid.UUID) -> Validated:
        """The live session ``session_id`` (as a session token of it would validate),
        inside ``db``'s transaction. Raises TokenInvalid or TokenExpired."""
        found = session_in(db, session_id)
        if found is None:
            raise TokenInvalid()
        return self._live(found)

    def _live(self, found: Validated) -> Validated:
        if self._clock() >= found.session.expires_at:
            raise TokenExpired()
        return found

    def close(self) -> None:
        """Closes the lookup's connections."""
        self.lookup.close()


def _digest(session_token: str) -> bytes:
    # A malformed token fails without a database round trip.
    if not is_well_formed(session_token, TokenKind.SESSION):
        raise TokenInvalid()
    return token_hash(session_token)
