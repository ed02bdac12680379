"""Step-up: a fresh authentication recorded on an existing session, without new tokens.

The method and its time join the session's ``authentication_methods`` (one entry per
method, the latest time), and every replica's validation cache forgets the session,
so ValidateToken shows the new record at once. Sensitive calls check that record
against ``AUTHSVC_REAUTH_MAX_AGE``.
"""

from __future__ import annotations

from dataclasses import dataclass

from authsvc.errors import ClonedAuthenticator, CodeInvalid
from authsvc.flows.changes import Change, Changes, Who
from authsvc.flows.code_check import Code, CodeCheck
from authsvc.flows.passkeys import Passkeys
from authsvc.flows.password_check import Claimant, PasswordCheck
from authsvc.rules import sessions, users
from authsvc.rules.audit import AuditEvent
from authsvc.rules.authentication import AuthMethod
from authsvc.rules.validation import TokenValidator
from authsvc.storage.read_model import SessionView


@dataclass(frozen=True)
class Reauthentication:
    """A checked ReauthenticateSession request: a password, a TOTP code, a recovery
    code or a passkey."""

    session_token: str
    password: str = ""
    totp_code: str = ""
    recovery_code: str = ""
    #: A passkey assertion and the StartPasskeySignIn challenge it answers.
    passkey_challenge: str = ""
    passkey_assertion: str = ""


class StepUp:
    """ReauthenticateSession."""

    def __init__(
        self,
        changes: Changes,
        validator: TokenValidator,
        passwords: PasswordCheck,
        codes: CodeCheck,
        passkeys: Passkeys,
    ) -> None:
        self._passkeys = passkeys
        self._changes = changes
        self._validator = validator
        self._passwords = passwords
        self._codes = codes

    def reauthenticate(self, request: Reauthentication) -> SessionView:
        """Records the proof on the session and returns it.

        Raises TokenInvalid, TokenExpired, InvalidCredentials (wrong password),
        CodeInvalid (also a wrong or spent recovery code), TotpNotEnrolled,
        TooManyAttempts, ChallengeInvalid, PasskeyInvalid (also for another user's
        passkey) or ClonedAuthenticator.
        """
        with self._changes.read() as db:
            found = self._validator.validate_in(db, request.session_token)
            user = users.get_user(db, found.user.id)
        who = Who(user.id, found.session.id)
        if request.totp_code:
            return self._with_code(who, Code(AuthMethod.TOTP, request.totp_code))
        if request.recovery_code:
            code = Code(AuthMethod.RECOVERY_CODE, request.recovery_code)
            return self._with_code(who, code)
        if request.passkey_assertion:
            return self._with_passkey(request, who)
        proven = self._passwords.prove(lambda: Claimant(user.email, user, who), request.password)
        with self._changes.open() as change:
            self._passwords.succeeded(change, proven)
            return self._record(change, who, AuthMethod.PASSWORD)

    def _with_code(self, who: Who, code: Code) -> SessionView:
        """Step-up with a TOTP or a recovery code (spent), recorded as that method."""
        assert who.user_id is not None
        verified = self._codes.verify(who.user_id, code, who)
        with self._changes.open() as change:
            session = None
            if self._codes.spend(change, verified, who):
                session = self._record(change, who, code.method)
        if session is None:
            raise CodeInvalid()
        return session

    def _with_passkey(self, request: Reauthentication, who: Who) -> SessionView:
        asserted = self._passkeys.assertion(
            request.passkey_challenge, request.passkey_assertion, who.user_id
        )
        with self._changes.open() as change:
            session = None
            if self._passkeys.use(change, asserted, who):
                session = self._record(change, who, AuthMethod.PASSKEY)
        if session is None:
            raise ClonedAuthenticator()
        return session

    def _record(self, change: Change, who: Who, method: AuthMethod) -> SessionView:
        assert who.session_id is not None
        session = sessions.record_authentication(change.db, who.session_id, method, change.now)
        change.ended(who.session_id)  # caches must show the new record
        change.audit(AuditEvent.SESSION_REAUTHENTICATED, who, method.value)
        return session
