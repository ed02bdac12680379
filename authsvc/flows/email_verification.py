"""Email verification: a mailed single-use token proves the user reads the address.

With ``AUTHSVC_MAIL_DELIVERY=caller`` authsvc hands the token to the calling service,
which delivers it; with ``smtp`` authsvc mails the link itself and the token never
leaves it (also after sign-up, with ``AUTHSVC_VERIFY_EMAIL_ON_SIGN_UP``). Changing the
email (UpdateUser) clears the verification and ends the tokens sent to the old address.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from authsvc.errors import InvalidArgument, TokenInvalid
from authsvc.flows.changes import Change, Changes, Who
from authsvc.flows.token_check import Presented, TokenCheck
from authsvc.rules import user_tokens, users
from authsvc.rules.audit import AuditEvent
from authsvc.rules.events import Actor
from authsvc.rules.mail import MailKind
from authsvc.rules.user_tokens import Purpose
from authsvc.rules.validation import TokenValidator
from authsvc.storage.models import User
from authsvc.storage.read_model import UserView, view_of


@dataclass(frozen=True)
class StartedVerification:
    """The token to deliver to the user's email ("" when authsvc mails it), and its
    expiry."""

    verification_token: str
    expires_at: datetime


@dataclass(frozen=True)
class VerificationRequest:
    """A checked StartEmailVerification request: the user's id, their session token, or
    both (then they must agree)."""

    user_id: uuid.UUID | None = None
    session_token: str = ""


class EmailVerification:
    """StartEmailVerification, VerifyEmail."""

    def __init__(
        self, changes: Changes, tokens: TokenCheck, validator: TokenValidator, ttl: timedelta
    ) -> None:
        self._changes = changes
        self._tokens = tokens
        self._validator = validator
        self._ttl = ttl

    def start(self, request: VerificationRequest) -> StartedVerification:
        """Issues a verification token, ending the user's earlier one, and mails it in
        ``smtp`` mode.

        Raises UserNotFound, UserDisabled, TokenInvalid or TokenExpired (the session
        token), or InvalidArgument when ``user_id`` is not the session's user.
        """
        with self._changes.open() as change:
            user_id = self._whose(change, request)
            user = users.lock_active(change.db, user_id)
            token, expires_at = self.issue_in(change, user)
        handed = not self._changes.outbox.enabled
        return StartedVerification(token if handed else "", expires_at)

    def _whose(self, change: Change, request: VerificationRequest) -> uuid.UUID:
        if not request.session_token:
            assert request.user_id is not None  # the edge requires one of them
            return request.user_id
        found = self._validator.validate_in(change.db, request.session_token)
        owner = found.user.id
        if request.user_id is not None and request.user_id != owner:
            raise InvalidArgument.of("user_id", "is not the user of the session token")
        return owner

    def issue_in(self, change: Change, user: User) -> tuple[str, datetime]:
        """Issues a token to ``user`` in ``change`` (and queues its mail in ``smtp``
        mode); returns it and its expiry."""
        issued = user_tokens.issue(change.db, user.id, Purpose.VERIFICATION, change.now, self._ttl)
        change.audit(AuditEvent.EMAIL_VERIFICATION_STARTED, Who(user.id))
        change.mail(
            MailKind.EMAIL_VERIFICATION,
            user,
            Who(user.id),
            token=issued.token,
            expires_at=issued.expires_at,
        )
        return issued.token, issued.expires_at

    def verify(self, presented: Presented) -> UserView:
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
                change.audit(AuditEvent.EMAIL_VERIFIED, found.who)
                if newly_verified:
                    by_user = Actor.user(user.id)  # with the token mailed to them
                    change.event("user.email_verified", Who(user.id), by_user, email=user.email)
        if not won:
            self._tokens.failed(found.who, "used meanwhile")
            raise TokenInvalid()
        return view_of(user)
