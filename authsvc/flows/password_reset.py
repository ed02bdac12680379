"""Password reset ("forgot password"): a mailed single-use token to a new password.

With ``AUTHSVC_MAIL_DELIVERY=caller`` authsvc hands the token to the calling service,
which delivers it; with ``smtp`` authsvc mails the link itself (queued in the start's
transaction) and the token never leaves it. Starting answers alike for every email,
known or not, after the same work.
Completing sets the password, ends every session and pending sign-in challenge of the
user and marks the email verified (the token reached it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from authsvc.errors import TokenInvalid
from authsvc.flows.changes import Change, Changes, Origin, Who
from authsvc.flows.secret_check import SecretCheck
from authsvc.flows.token_check import Found, Presented, TokenCheck
from authsvc.rules import sessions, user_tokens, users
from authsvc.rules.audit import AuditEvent
from authsvc.rules.events import Actor
from authsvc.rules.hashing import Hasher
from authsvc.rules.mail import MailKind
from authsvc.rules.user_tokens import NO_SUCH_USER_ID, Purpose
from authsvc.rules.values import Email
from authsvc.storage.models import User
from authsvc.storage.read_model import UserView, view_of


@dataclass(frozen=True)
class ResetRequest:
    """A checked StartPasswordReset request."""

    email: Email
    origin: Origin


@dataclass(frozen=True)
class StartedReset:
    """The token to deliver ("" when no active account has the email) and its expiry."""

    reset_token: str
    expires_at: datetime


@dataclass(frozen=True)
class NewPassword:
    """A checked CompletePasswordReset request (the password is within policy)."""

    presented: Presented
    new_password: str


class PasswordReset:
    """StartPasswordReset, CompletePasswordReset."""

    def __init__(
        self,
        changes: Changes,
        hasher: Hasher,
        starts: SecretCheck,
        tokens: TokenCheck,
        ttl: timedelta,
    ) -> None:
        self._changes = changes
        self._hasher = hasher
        self._starts = starts
        self._tokens = tokens
        self._ttl = ttl

    def start(self, request: ResetRequest) -> StartedReset:
        """Issues a reset token, ending the account's earlier one.

        An unknown or disabled account gets an empty token after the same statements
        (``user_tokens.issue`` inserts nothing for it). Raises TooManyAttempts: starts
        are counted per email and per end-user IP, so nobody can mail-bomb an inbox.
        """
        with self._changes.read() as db:
            found = users.find_by_email(db, request.email)
        who = request.origin.who(found.id if found else None)
        # Every start counts and none is uncounted: the limit is on starts, not failures.
        self._starts.begin(self._starts.keys(request.email, who.ip_address), who)
        with self._changes.open() as change:
            issued = user_tokens.issue(
                change.db,
                found.id if found else NO_SUCH_USER_ID,
                Purpose.RESET,
                change.now,
                self._ttl,
            )
            detail = "" if issued.issued else "no token: unknown or disabled account"
            change.audit(AuditEvent.PASSWORD_RESET_STARTED, who, detail)
            if issued.issued and found is not None:
                change.mail(
                    MailKind.PASSWORD_RESET,
                    found,
                    who,
                    token=issued.token,
                    expires_at=issued.expires_at,
                )
            elif found is None and self._changes.outbox.policy.no_account_mail:
                change.mail(MailKind.PASSWORD_RESET_NO_ACCOUNT, request.email, who)
            else:
                change.mail_nothing(MailKind.PASSWORD_RESET, request.email)
        handed = issued.issued and not self._changes.outbox.enabled
        return StartedReset(issued.token if handed else "", issued.expires_at)

    def complete(self, request: NewPassword) -> UserView:
        """Sets the new password, ends every session and pending sign-in challenge,
        marks the email verified.

        Raises TooManyAttempts, TokenInvalid (unknown or already used: of two concurrent
        completions exactly one wins), TokenExpired or UserDisabled.
        """
        found = self._tokens.find(request.presented)
        new_hash = self._hasher.hash(request.new_password)
        with self._changes.open() as change:
            user = users.lock_active(change.db, found.row.user_id)
            won = user_tokens.use(change.db, found.row.id)
            if won:
                self._reset(change, user, new_hash, found)
        if not won:
            self._tokens.failed(found.who, "used meanwhile")
            raise TokenInvalid()
        return view_of(user)

    def _reset(self, change: Change, user: User, new_hash: str, found: Found) -> None:
        by_user = Actor.user(user.id)  # with the token mailed to them
        newly_verified = user.email_verified_at is None
        users.set_password(change.db, user.id, new_hash, change.now)
        users.mark_verified(change.db, user, change.now)
        ended = sessions.revoke_all(change.db, user.id)
        change.revoked_all(user.id, ended, "password_changed", by_user)
        change.audit(AuditEvent.PASSWORD_RESET_COMPLETED, found.who)
        change.event("user.password_changed", Who(user.id), by_user, how="reset")
        if newly_verified:
            change.event("user.email_verified", Who(user.id), by_user, email=user.email)
        change.mail(MailKind.PASSWORD_CHANGED, user, found.who, how="reset")
