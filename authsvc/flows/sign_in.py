"""Sign-in: email and password to a new session, or to a second-factor challenge.

A user with a confirmed TOTP gets no tokens from the password alone: CreateSession
answers with a single-use challenge bound to that password step (its user and time),
and CompleteSignIn exchanges it, with a TOTP or recovery code, for an AAL2 session.
A new password (ChangePassword, SetPassword, a reset) ends the user's pending challenges.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as DbSession

from authsvc.errors import (
    ChallengeInvalid,
    CodeInvalid,
    EmailNotVerified,
    InvalidCredentials,
    UserDisabled,
    UserNotFound,
)
from authsvc.flows.access_tokens import AccessTokens
from authsvc.flows.changes import Change, Changes, Origin, Who
from authsvc.flows.code_check import Code, CodeCheck
from authsvc.flows.password_check import Claimant, PasswordCheck, ProvenPassword
from authsvc.rules import challenges, sessions, totp, users
from authsvc.rules.audit import AuditEvent
from authsvc.rules.authentication import AuthMethod, assurance_level, method_names, proven
from authsvc.rules.challenges import Ceremony, IssuedChallenge
from authsvc.rules.events import SYSTEM, Actor
from authsvc.rules.hashing import Hasher
from authsvc.rules.sessions import IssuedSession, SessionPolicy
from authsvc.rules.values import Email
from authsvc.storage.models import Authentication, Challenge, Passkey, User
from authsvc.storage.read_model import UserView, view_of


@dataclass(frozen=True)
class PasswordSignIn:
    """A checked CreateSession request: an email and a password, and where from."""

    email: Email
    password: str
    origin: Origin


@dataclass(frozen=True)
class SignedIn:
    """What a sign-in returns: a session, or (second factor due) a challenge."""

    user: UserView
    issued: IssuedSession | None
    challenge: IssuedChallenge | None = None
    #: AUTHSVC_REQUIRE_MFA is on and the user has no second factor yet.
    enrollment_required: bool = False
    #: The second factors the challenge accepts (``SecondFactor`` names without prefix).
    factors: tuple[str, ...] = ()


@dataclass(frozen=True)
class SecondStep:
    """A checked CompleteSignIn request: a code, or a passkey assertion."""

    challenge_token: str
    code: Code | None
    passkey_challenge: str = ""
    passkey_assertion: str = ""


@dataclass(frozen=True)
class SignInPolicy:
    """Sign-in's settings beyond sessions."""

    challenge_ttl: timedelta
    require_mfa: bool = False
    #: Refuse a right password (EMAIL_NOT_VERIFIED) until the email is verified.
    require_verified_email: bool = False


class SignIn:
    """CreateSession, CompleteSignIn."""

    def __init__(
        self,
        changes: Changes,
        hasher: Hasher,
        passwords: PasswordCheck,
        policy: SessionPolicy,
        codes: CodeCheck,
        sign_in_policy: SignInPolicy,
        tokens: AccessTokens,
    ) -> None:
        self._changes = changes
        self._tokens = tokens
        self._hasher = hasher
        self._passwords = passwords
        self._policy = policy
        self._codes = codes
        self._sign_in = sign_in_policy

    def sign_in(self, request: PasswordSignIn) -> SignedIn:
        """Opens a session, or a challenge when a second factor is due.

        Raises InvalidCredentials or TooManyAttempts; with the right password,
        UserDisabled or (when verification is required) EmailNotVerified. An unknown
        email costs the same hash as a wrong password, fails alike and is throttled
        alike. A throttled attempt runs no hash. Only the right password learns that an
        account is disabled or unverified.
        """

        def claimant() -> Claimant:
            with self._changes.read() as db:
                found = users.find_by_email(db, request.email)
            return Claimant(request.email, found, request.origin.who(found.id if found else None))

        proven = self._passwords.prove(claimant, request.password)
        self._refuse_if_not_allowed(proven)
        rehash = None
        if self._hasher.needs_rehash(proven.user.password_hash):
            rehash = self._hasher.hash(request.password)
        return self._open(proven, rehash)

    def _refuse_if_not_allowed(self, proven: ProvenPassword) -> None:
        user = proven.user
        if user.is_disabled:
            refusal: UserDisabled | EmailNotVerified = UserDisabled()
        elif self._sign_in.require_verified_email and user.email_verified_at is None:
            refusal = EmailNotVerified()
        else:
            return
        # The password was right: it is no failure to count, but the refusal is audited.
        with self._changes.open() as change:
            self._passwords.succeeded(change, proven)
            change.audit(AuditEvent.SIGN_IN_FAILED, proven.who, refusal.reason.value.lower())
        raise refusal

    def _open(self, proven: ProvenPassword, rehash: str | None) -> SignedIn:
        user, who = proven.user, proven.who
        try:
            with self._changes.open() as change:
                # Waits for a concurrent DisableUser, so no session outlives it.
                users.lock_active(change.db, user.id)
                if rehash:
                    users.rehash_password(
                        change.db, user.id, user.password_hash, rehash, change.now
                    )
                self._passwords.succeeded(change, proven)
                factors = second_factors(change.db, user.id)
                if factors:
                    challenge = self._challenge(change, user, who)
                    return SignedIn(view_of(user), None, challenge, factors=factors)
                issued = self.open_session(change, user, who, ())
        except (IntegrityError, UserNotFound):
            raise InvalidCredentials() from None  # the user was deleted meanwhile
        required = self._sign_in.require_mfa
        return SignedIn(view_of(user), issued, enrollment_required=required)

    def _challenge(self, change: Change, user: User, who: Who) -> IssuedChallenge:
        issued = challenges.issue(
            change.db,
            Ceremony.SIGN_IN,
            user.id,
            change.now,
            self._sign_in.challenge_ttl,
            authenticated_at=change.now,
            user_agent=who.user_agent,
            ip_address=who.ip_address,
        )
        change.audit(AuditEvent.SECOND_FACTOR_CHALLENGED, who)
        return issued

    def open_session(
        self,
        change: Change,
        user: User,
        who: Who,
        methods: tuple[Authentication, ...],
        event: AuditEvent = AuditEvent.SIGN_IN_COMPLETED,
    ) -> IssuedSession:
        """Opens a session in ``change`` and audits ``event`` (a password sign-in: no
        ``methods``, audited SIGN_IN_SUCCEEDED)."""
        issued = sessions.open_session(
            change.db,
            user.id,
            self._policy,
            change.now,
            user_agent=who.user_agent,
            ip_address=who.ip_address,
            methods=methods,
        )
        # Over the cap on sessions per user: authsvc ends the oldest.
        change.revoked(user.id, issued.ended, "revoked", SYSTEM)
        access = self._tokens.issue_for(issued.session, lambda: user.email, change.now)
        issued = replace(issued, access=access)
        opened = replace(who, user_id=user.id, session_id=issued.session.id)
        event = event if methods else AuditEvent.SIGN_IN_SUCCEEDED
        change.audit(event, opened, ",".join(method_names(methods)))
        recorded = issued.session.authentication_methods
        change.event(
            "session.created",
            opened,
            Actor.user(user.id),
            methods=method_names(recorded),
            assurance_level=assurance_level(recorded),
            ip_address=who.ip_address,
            user_agent=who.user_agent,
        )
        return issued

    def complete(self, step: SecondStep) -> SignedIn:
        """Exchanges a sign-in challenge and a second factor for an AAL2 session.

        Raises ChallengeInvalid (unknown, used, expired, or ended by a new password),
        CodeInvalid (wrong or replayed), TotpNotEnrolled, TooManyAttempts (throttled per
        user) or UserDisabled.
        A passkey step goes to ``Passkeys.complete_sign_in`` instead.
        """
        assert step.code is not None
        with self._changes.read() as db:
            now = self._changes.clock()
            found = challenges.find(db, step.challenge_token, Ceremony.SIGN_IN, now)
        assert found.user_id is not None  # sign-in challenges always name their user
        who = Who(found.user_id, None, found.ip_address, found.user_agent)
        verified = self._codes.verify(found.user_id, step.code, who)
        with self._changes.open() as change:
            user = lock_challenged_user(change, found)
            if not challenges.consume(change.db, found.id):
                raise ChallengeInvalid()  # completed or ended concurrently: nothing written
            issued = None
            if self._codes.spend(change, verified, who):
                issued = self.open_session(change, user, who, _methods(found, step.code, change))
        if issued is None:
            raise CodeInvalid()
        return SignedIn(view_of(user), issued)


def lock_challenged_user(change: Change, found: Challenge) -> User:
    """The user of a sign-in challenge, locked before the challenge is consumed.

    The user row comes first, as in CreateSession and every password change, so the
    order of locks is one. A new password set meanwhile ended the challenge (consume
    then fails). Raises UserDisabled (disabled meanwhile) or ChallengeInvalid (the
    user, and with it the challenge, was deleted meanwhile).
    """
    assert found.user_id is not None  # sign-in challenges always name their user
    try:
        return users.lock_active(change.db, found.user_id)
    except UserNotFound:
        raise ChallengeInvalid() from None


def _methods(found: Challenge, code: Code, change: Change) -> tuple[Authentication, ...]:
    return completed_methods(found, code.method, change)


def completed_methods(
    found: Challenge, second: AuthMethod, change: Change
) -> tuple[Authentication, ...]:
    """A completed sign-in's record: the password (when it was checked), then ``second``."""
    password_time = found.authenticated_at or found.created_at
    return (
        proven(AuthMethod.PASSWORD, password_time),
        proven(second, change.now),
    )


def second_factors(db: DbSession, user_id: uuid.UUID) -> tuple[str, ...]:
    """The second factors a user has: TOTP (with recovery codes) and passkeys."""
    factors: tuple[str, ...] = ()
    if totp.active(db, user_id) is not None:
        factors = ("TOTP", "RECOVERY_CODE")
    if db.scalar(select(Passkey.id).where(Passkey.user_id == user_id).limit(1)) is not None:
        factors += ("PASSKEY",)
    return factors
