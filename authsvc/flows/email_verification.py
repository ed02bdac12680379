"""Email verification: a mailed single-use token proves the user reads the address.

authsvc hands the token to the calling service, which delivers it. Changing the email
(UpdateUser) clears the verification and ends the tokens sent to the old address.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from authsvc.errors import TokenInvalid
from authsvc.flows.changes import Changes, Who
from authsvc.flows.mailed_tokens import Presented, TokenCheck
from authsvc.rules import user_tokens, users
from authsvc.rules.audit import AuditEvent
from authsvc.rules.events import Actor
from authsvc.rules.user_tokens import Purpose
from authsvc.storage.models import User


@dataclass(frozen=True)
class StartedVerification:
    """The token to deliver to the user's email, and its expiry."""

    verification_token: str
    expires_at: datetime


class EmailVerification:
    """StartEmailVerification, VerifyEmail."""

    def __init__(self, changes: Changes, tokens: TokenCheck, ttl: timedelta) -> None:
        self._changes = changes
        self._tokens = tokens
        self._ttl = ttl

    def start(self, user_id: uuid.UUID) -> StartedVerification:
        """Issues a verification token, ending the user's earlier one.

        Raises UserNotFound or UserDisabled.
        """
        with self._changes.open() as change:
            users.lock_active(change.db, user_id)
            issued = user_tokens.issue(
                change.db, user_id, Purpose.VERIFICATION, change.now, self._ttl
            )
            change.audit(AuditEvent.EMAIL_VERIFICATION_STARTED, Who(user_id))
        return StartedVerification(issued.token, issued.expires_at)

    def verify(self, presented: Presented) -> User:
        """Marks the email verified. Raises TooManyAttempts, TokenInvalid (unknown or
        used: of two concurrent uses exactly one wins), TokenExpired or UserDisabled."""
        found = self._tokens.find(presented)
        with self._changes.open() as change:
            user = users.lock_active(change.db, found.row.user_id)
            won = user_tokens.use(change.db, found.row.id)
            if won:
                newly_verified = user.email_verified_at is None
                users.mark_verified(change.db, user, change.now)
                change.changed_user(user.id)
                self._tokens.succeeded(change, found)
                change.audit(AuditEvent.EMAIL_VERIFIED, found.who)
                if newly_verified:
                    by_user = Actor.user(user.id)  # with the token mailed to them
                    change.event("user.email_verified", Who(user.id), by_user, email=user.email)
        if not won:
            self._tokens.failed(found.who, "used meanwhile")
            raise TokenInvalid()
        return user
