"""Checking a mailed token (password reset, email verification) like any secret.

Every presented token goes through ``SecretCheck``: counted before the lookup against
the end user's IP and the purpose's global subject, audited when wrong, used or expired.
The flow then consumes it in its own transaction (``user_tokens.use``), where a
concurrent use can still win: ``UsedMeanwhile`` says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from authsvc.errors import TokenExpired
from authsvc.flows.changes import Change, Changes, Who
from authsvc.flows.secret_check import SecretCheck
from authsvc.rules import user_tokens
from authsvc.rules.audit import AuditEvent
from authsvc.rules.throttling import Attempt
from authsvc.rules.user_tokens import Purpose
from authsvc.storage.models import UserToken


@dataclass(frozen=True)
class Presented:
    """A token as the end user sent it back, and where from."""

    token: str
    ip_address: str = ""
    user_agent: str = ""


@dataclass(frozen=True)
class Found:
    """A live stored token, the counted attempt, and whom it concerns."""

    row: UserToken
    attempt: Attempt
    who: Who


class TokenCheck:
    """Finds the live token of one purpose, throttled and audited like a secret."""

    def __init__(
        self, changes: Changes, check: SecretCheck, purpose: Purpose, failed: AuditEvent
    ) -> None:
        self._changes = changes
        self._check = check
        self._purpose = purpose
        self._failed = failed

    def find(self, presented: Presented) -> Found:
        """The live token; raises TooManyAttempts, TokenInvalid or TokenExpired.

        Tokens are 256-bit, so no one guesses one: the global subject key only bounds
        how fast anyone may try, and the end user's IP key who tries.
        """
        who = Who(None, None, presented.ip_address, presented.user_agent)
        attempt = self._check.begin(self._check.keys(self._purpose.value, who.ip_address), who)
        with self._changes.read() as db:
            row = user_tokens.find(db, presented.token, self._purpose)
        self._check.verify(attempt, who, lambda: row is not None)  # TokenInvalid when unknown
        assert row is not None
        who = Who(row.user_id, None, who.ip_address, who.user_agent)
        if row.expires_at <= self._changes.clock():
            self.failed(who, "expired")
            raise TokenExpired()
        return Found(row, attempt, who)

    def succeeded(self, change: Change, found: Found) -> None:
        """Uncounts the attempt, in the transaction that used the token."""
        self._check.succeeded(change, found.attempt)

    def failed(self, who: Who, detail: str) -> None:
        """Audits a token that could not be used (expired, or used meanwhile)."""
        self._changes.record(self._failed, who, detail)
