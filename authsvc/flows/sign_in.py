"""Sign-in: email and password to a new session."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from authsvc.errors import EmailNotVerified, InvalidCredentials, UserDisabled, UserNotFound
from authsvc.flows.changes import Changes, Who
from authsvc.flows.secret_check import SecretCheck
from authsvc.rules import sessions, users
from authsvc.rules.audit import AuditEvent
from authsvc.rules.hashing import Hasher
from authsvc.rules.sessions import IssuedSession, SessionPolicy
from authsvc.rules.throttling import Attempt
from authsvc.rules.values import Email
from authsvc.storage.models import User


@dataclass(frozen=True)
class Origin:
    """Where the end user is, as the calling service saw it (both optional)."""

    ip_address: str = ""
    user_agent: str = ""


@dataclass(frozen=True)
class Credentials:
    """A checked sign-in request."""

    email: Email
    password: str
    origin: Origin


@dataclass(frozen=True)
class SignedIn:
    """What a successful sign-in returns."""

    user: User
    issued: IssuedSession


class SignIn:
    """CreateSession."""

    def __init__(
        self,
        changes: Changes,
        hasher: Hasher,
        check: SecretCheck,
        policy: SessionPolicy,
        require_verified_email: bool = False,
    ) -> None:
        self._changes = changes
        self._hasher = hasher
        self._check = check
        self._policy = policy
        self._require_verified = require_verified_email

    def sign_in(self, credentials: Credentials) -> SignedIn:
        """Opens a session. Raises InvalidCredentials or TooManyAttempts; with the right
        password, UserDisabled or (when verification is required) EmailNotVerified.

        An unknown email costs the same hash as a wrong password, fails alike and is
        throttled alike. A throttled attempt runs no hash. Only the right password
        learns that an account is disabled or unverified.
        """
        origin = credentials.origin
        with self._changes.read() as db:
            found = users.find_by_email(db, credentials.email)
        who = Who(found.id if found else None, None, origin.ip_address, origin.user_agent)
        keys = self._check.keys(credentials.email, origin.ip_address)
        attempt = self._check.begin(keys, who)
        stored = found.password_hash if found else None
        # With no user, a dummy hash is checked, so an unknown email costs the same.
        self._check.verify(attempt, who, lambda: self._hasher.verify(stored, credentials.password))
        assert found is not None  # verify() fails without a stored hash
        self._refuse_if_not_allowed(found, attempt, who)
        rehash = None
        if self._hasher.needs_rehash(found.password_hash):
            rehash = self._hasher.hash(credentials.password)
        return SignedIn(found, self._open(found, rehash, attempt, who))

    def _refuse_if_not_allowed(self, user: User, attempt: Attempt, who: Who) -> None:
        if user.is_disabled:
            refusal: UserDisabled | EmailNotVerified = UserDisabled()
        elif self._require_verified and user.email_verified_at is None:
            refusal = EmailNotVerified()
        else:
            return
        # The password was right: it is no failure to count, but the refusal is audited.
        with self._changes.open() as change:
            self._check.succeeded(change, attempt)
            change.audit(AuditEvent.SIGN_IN_FAILED, who, refusal.reason.value.lower())
        raise refusal

    def _open(self, user: User, rehash: str | None, attempt: Attempt, who: Who) -> IssuedSession:
        origin = {"user_agent": who.user_agent, "ip_address": who.ip_address}
        try:
            with self._changes.open() as change:
                # Waits for a concurrent DisableUser, so no session outlives it.
                users.lock_active(change.db, user.id)
                if rehash:
                    users.set_password_hash(
                        change.db, user.id, user.password_hash, rehash, change.now
                    )
                issued = sessions.open_session(
                    change.db, user.id, self._policy, change.now, **origin
                )
                change.ended(*issued.ended)
                self._check.succeeded(change, attempt)
                opened = Who(user.id, issued.session.id, who.ip_address, who.user_agent)
                change.audit(AuditEvent.SIGN_IN_SUCCEEDED, opened)
        except (IntegrityError, UserNotFound):
            raise InvalidCredentials() from None  # the user was deleted meanwhile
        return issued
