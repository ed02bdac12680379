"""Checking a mailed token (password reset, email verification).

Tokens carry 256 random bits: nobody guesses one, so they need no brute-force budget of
their own and no key shared by everyone. A presented token is looked up first; a live
one is never refused by the throttle, whatever anyone else sent. Only a wrong token
goes through ``SecretCheck``: counted against the end user's address (shared with
sign-in, since a wrong secret is a failure), audited, and refused with TooManyAttempts
instead of TokenInvalid once that address is over its budget. The flow then consumes
the token in its own transaction (``user_tokens.use``), where a concurrent use can
still win.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn

from authsvc.errors import TokenExpired
from authsvc.flows.changes import Changes, Origin, Who
from authsvc.flows.secret_check import SecretCheck
from authsvc.rules import user_tokens
from authsvc.rules.audit import AuditEvent
from authsvc.rules.user_tokens import Purpose
from authsvc.storage.models import UserToken


@dataclass(frozen=True)
class Presented:
    """A token as the end user sent it back, and where from."""

    token: str
    origin: Origin


@dataclass(frozen=True)
class Found:
    """A live stored token, and whom it concerns."""

    row: UserToken
    who: Who


class TokenCheck:
    """Finds the live token of one purpose; wrong tokens are throttled and audited."""

    def __init__(
        self, changes: Changes, check: SecretCheck, purpose: Purpose, failed: AuditEvent
    ) -> None:
        self._changes = changes
        self._check = check
        self._purpose = purpose
        self._failed = failed

    def find(self, presented: Presented) -> Found:
        """The live token; raises TokenExpired, or for a token that is not live
        TokenInvalid (TooManyAttempts while its address is over the budget)."""
        with self._changes.read() as db:
            row = user_tokens.find(db, presented.token, self._purpose)
        if row is None:
            self._wrong(presented.origin.who())
        who = presented.origin.who(row.user_id)
        if row.expires_at <= self._changes.clock():
            self.failed(who, "expired")
            raise TokenExpired()
        return Found(row, who)

    def failed(self, who: Who, detail: str) -> None:
        """Audits a token that could not be used (expired, or used meanwhile)."""
        self._changes.record(self._failed, who, detail)

    def _wrong(self, who: Who) -> NoReturn:
        """Counts a wrong token against its address, audits it, raises."""
        self._check.begin(self._check.keys(None, who.ip_address), who)  # stays counted
        self._check.refuse(who)  # audits, raises TokenInvalid
