"""Password changes: a user changing their password, and an administrator setting one."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from authsvc.errors import InvalidCredentials
from authsvc.flows.changes import Changes, Who
from authsvc.flows.password_check import Claimant, PasswordCheck
from authsvc.flows.sign_in import second_factors
from authsvc.rules import sessions, user_tokens, users
from authsvc.rules.audit import AuditEvent
from authsvc.rules.authentication import AuthMethod
from authsvc.rules.events import Actor
from authsvc.rules.hashing import Hasher
from authsvc.rules.mail import MailKind
from authsvc.rules.user_tokens import Purpose
from authsvc.rules.validation import TokenValidator


@dataclass(frozen=True)
class PasswordChange:
    """A checked ChangePassword request (the new password is within policy)."""

    session_token: str
    current_password: str
    new_password: str


@dataclass(frozen=True)
class AssignedPassword:
    """A checked SetPassword request: whose password, and the new one (within policy)."""

    user_id: uuid.UUID
    new_password: str


class PasswordChanges:
    """ChangePassword, SetPassword."""

    def __init__(
        self,
        changes: Changes,
        hasher: Hasher,
        passwords: PasswordCheck,
        validator: TokenValidator,
        reauth_max_age: timedelta,
    ) -> None:
        self._changes = changes
        self._hasher = hasher
        self._passwords = passwords
        self._validator = validator
        self._reauth_max_age = reauth_max_age

    def change_password(self, request: PasswordChange) -> None:
        """Changes the password of the token's user and ends the user's other sessions and
        any unused reset token (a reset asked for before must not undo the change).

        The current password counts as a fresh authentication: it is recorded on the
        session (PASSWORD, now), and for a password-only user no recent step-up is needed.
        A user with a second factor must also have proven one on this session within
        ``AUTHSVC_REAUTH_MAX_AGE`` (checked first, before the password is counted). The
        user's second factors are kept; pending sign-in challenges (which proved the old
        password) end.

        Raises TokenInvalid, TokenExpired, ReauthenticationRequired, InvalidCredentials or
        TooManyAttempts: the current password is throttled like a sign-in of the user's
        account, so a stolen session token is no unthrottled password oracle.
        """

        def claimant() -> Claimant:
            with self._changes.read() as db:
                found = self._validator.validate_in(db, request.session_token)
                user = users.get_user(db, found.user.id)
                if second_factors(db, user.id):
                    sessions.require_recent_authentication(
                        found.session,
                        self._changes.clock(),
                        self._reauth_max_age,
                        second_factor=True,
                    )
            return Claimant(user.email, user, Who(user.id, found.session.id))

        proven = self._passwords.prove(claimant, request.current_password)
        user, who = proven.user, proven.who
        assert who.session_id is not None  # the claimant names the token's session
        session_id = who.session_id
        new_hash = self._hasher.hash(request.new_password)
        with self._changes.open() as change:
            self._validator.validate_in(change.db, request.session_token)
            if not users.set_password(
                change.db, user.id, new_hash, change.now, replacing=user.password_hash
            ):
                raise InvalidCredentials()  # changed concurrently: the current one is stale
            ended = sessions.revoke_others(change.db, user.id, keep=session_id)
            by_user = Actor.user(user.id)
            # The current session lives on, but its access tokens issued until now do
            # not: the caller refreshes to get one issued after the new password.
            change.revoked_all(user.id, ended, "password_changed", by_user)
            user_tokens.forget(change.db, user.id, Purpose.RESET)
            # The current password was just proven: that is this session's fresh
            # authentication (a password-only user needs no separate step-up).
            sessions.record_authentication(change.db, session_id, AuthMethod.PASSWORD, change.now)
            self._passwords.succeeded(change, proven)
            change.audit(AuditEvent.PASSWORD_CHANGED, who)
            change.event("user.password_changed", who, by_user, how="change")
            change.mail(MailKind.PASSWORD_CHANGED, user, who, how="changed")

    def set_password(self, request: AssignedPassword) -> None:
        """Sets the password as an administrator; ends every session of the user, any
        unused reset token and any pending sign-in challenge. Raises UserNotFound.
        Hashes outside the transaction."""
        user_id = request.user_id
        new_hash = self._hasher.hash(request.new_password)
        with self._changes.open() as change:
            user = users.get_user(change.db, user_id)
            users.set_password(change.db, user_id, new_hash, change.now)
            user_tokens.forget(change.db, user_id, Purpose.RESET)
            ended = sessions.revoke_all(change.db, user_id)
            change.revoked_all(user_id, ended, "password_changed")
            change.audit(AuditEvent.PASSWORD_SET, Who(user_id))
            change.event("user.password_changed", Who(user_id), how="set")
            change.mail(MailKind.PASSWORD_CHANGED, user, Who(user_id), how="set")
