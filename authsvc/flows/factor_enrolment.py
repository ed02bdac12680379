"""FactorEnrolment: enrolling and removing TOTP (with its recovery codes).

Every call here is sensitive: it needs an authentication on the session within
``AUTHSVC_REAUTH_MAX_AGE`` (else REAUTHENTICATION_REQUIRED); for a user who has a second
factor (TOTP or a passkey), a second factor proven within that age, since a stolen
password and session token must not be enough to plant or remove a factor.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from authsvc.errors import CodeInvalid
from authsvc.flows.changes import Changes, Who
from authsvc.flows.code_check import Code, CodeCheck
from authsvc.flows.sign_in import second_factors
from authsvc.rules import recovery_codes, sessions, totp
from authsvc.rules.audit import AuditEvent
from authsvc.rules.authentication import AuthMethod
from authsvc.rules.events import Actor
from authsvc.rules.mail import MailKind
from authsvc.rules.secrets_at_rest import SecretKeys
from authsvc.rules.validation import TokenValidator
from authsvc.storage.read_model import Validated


@dataclass(frozen=True)
class FactorPolicy:
    """How fresh an authentication sensitive calls need, and how long enrolments last."""

    reauth_max_age: timedelta
    enrollment_ttl: timedelta
    issuer: str


@dataclass(frozen=True)
class TotpConfirmation:
    """A checked ConfirmTotpEnrollment request: the session token and a 6-digit code."""

    session_token: str
    code: str


@dataclass(frozen=True)
class TotpRemoval:
    """A checked RemoveTotp request: the session token, and a TOTP or recovery code."""

    session_token: str
    code: Code


@dataclass(frozen=True)
class TotpEnrollment:
    """A started enrolment: the secret (shown once) and its otpauth URI."""

    secret: str
    otpauth_uri: str
    expire_time: datetime


class FactorEnrolment:
    """StartTotpEnrollment, ConfirmTotpEnrollment, RemoveTotp."""

    def __init__(
        self,
        changes: Changes,
        validator: TokenValidator,
        codes: CodeCheck,
        keys: SecretKeys,
        policy: FactorPolicy,
    ) -> None:
        self._changes = changes
        self.validator = validator
        self._codes = codes
        self._keys = keys
        self._policy = policy

    def fresh_session(self, session_token: str, *, proving_now: bool = False) -> Validated:
        """The token's session, if it authenticated recently enough: with a second factor
        when the user has one, unless the call itself checks one (``proving_now``).

        Raises TokenInvalid, TokenExpired or ReauthenticationRequired.
        """
        with self._changes.read() as db:
            found = self.validator.validate_in(db, session_token)
            strong = not proving_now and bool(second_factors(db, found.user.id))
        now = self._changes.clock()
        max_age = self._policy.reauth_max_age
        sessions.require_recent_authentication(found.session, now, max_age, second_factor=strong)
        return found

    def start_totp(self, session_token: str) -> TotpEnrollment:
        """Starts (or restarts) a TOTP enrolment. Raises MfaNotConfigured,
        TotpAlreadyEnrolled, ReauthenticationRequired, TokenInvalid or TokenExpired."""
        found = self.fresh_session(session_token)
        secret = totp.new_secret()
        sealed = self._keys.seal(secret)
        user_id = found.user.id
        with self._changes.open() as change:
            totp.start(change.db, user_id, sealed, change.now, self._policy.enrollment_ttl)
            expires = change.now + self._policy.enrollment_ttl
            change.audit(AuditEvent.TOTP_ENROLLMENT_STARTED, _who(found)[1])
        uri = totp.provisioning_uri(secret, found.user.email, self._policy.issuer)
        return TotpEnrollment(secret, uri, expires)

    def confirm_totp(self, request: TotpConfirmation) -> list[str]:
        """Activates the pending enrolment with a current code; returns new recovery codes.

        The code proves TOTP on this session, as a step-up with it would: TOTP (now)
        joins the session's authentication methods (AAL2) and every replica's
        validation cache forgets the session.

        Raises TotpNotEnrolled, CodeInvalid, TooManyAttempts, ReauthenticationRequired,
        TokenInvalid (also when the session ended meanwhile: nothing is confirmed) or
        TokenExpired.
        """
        found = self.fresh_session(request.session_token)
        user_id, who = _who(found)
        code = Code(AuthMethod.TOTP, request.code)
        verified = self._codes.verify(user_id, code, who, enrolling=True)
        with self._changes.open() as change:
            confirmed = self._codes.spend(change, verified, who)
            if confirmed:
                issued = recovery_codes.replace(change.db, user_id, change.now)
                assert who.session_id is not None
                sessions.record_authentication(
                    change.db, who.session_id, AuthMethod.TOTP, change.now
                )
                change.ended(who.session_id)  # caches must show the new record
                change.audit(AuditEvent.TOTP_ENROLLED, who)
                change.event("mfa.totp_enrolled", who, Actor.user(user_id))
                change.notify(MailKind.SECOND_FACTOR_ADDED, user_id, who, factor="totp")
        if not confirmed:
            raise CodeInvalid()
        return issued

    def remove_totp(self, request: TotpRemoval) -> None:
        """Removes the TOTP and the recovery codes, given a current code or a recovery code.

        That code is the second factor this change needs (proven now), so a recent
        authentication of any kind suffices besides. Raises TotpNotEnrolled, CodeInvalid,
        TooManyAttempts, ReauthenticationRequired.
        """
        found = self.fresh_session(request.session_token, proving_now=True)
        user_id, who = _who(found)
        verified = self._codes.verify(user_id, request.code, who)
        with self._changes.open() as change:
            removed = self._codes.spend(change, verified, who)
            if removed:
                totp.remove(change.db, user_id)
                recovery_codes.remove_all(change.db, user_id)
                change.audit(AuditEvent.TOTP_REMOVED, who)
                change.event("mfa.totp_removed", who, Actor.user(user_id))
                change.notify(MailKind.SECOND_FACTOR_REMOVED, user_id, who, factor="totp")
        if not removed:
            raise CodeInvalid()


def _who(found: Validated) -> tuple[uuid.UUID, Who]:
    user_id = found.user.id
    return user_id, Who(user_id, found.session.id)
