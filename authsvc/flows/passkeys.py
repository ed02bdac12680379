"""Passkeys: registration, listing, removal, and sign-in (a full AAL2 sign-in alone).

Each ceremony runs on a single-use challenge (``rules.challenges``) that keeps the
WebAuthn challenge bytes; the response is verified outside any transaction, then the
challenge is used up in the transaction that acts. A registration's challenge is a row
(only a signed-in user starts one), consumed by its DELETE's rowcount. A sign-in's is
sealed into its token, since anyone may start one: starting stores nothing and reads
nothing, and the answer is the same whoever the email names (no ``allowCredentials``:
the passkeys authsvc registers are discoverable), so it tells a stranger nothing about
accounts. The email is sealed in the token; only that account's passkey finishes it.
An assertion is a signature, not a guessable secret, so it is not throttled; every
refused one is audited.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.exc import IntegrityError

from authsvc.errors import (
    ChallengeInvalid,
    ClonedAuthenticator,
    MfaNotConfigured,
    PasskeyInvalid,
    UserNotFound,
)
from authsvc.flows.changes import Change, Changes, Origin, Who
from authsvc.flows.factor_enrolment import FactorEnrolment
from authsvc.flows.sign_in import (
    SecondStep,
    SignedIn,
    SignIn,
    completed_methods,
    lock_challenged_user,
)
from authsvc.rules import challenges, passkeys, users
from authsvc.rules.audit import AuditEvent
from authsvc.rules.authentication import AuthMethod, proven
from authsvc.rules.challenges import Ceremony, SealedChallenge
from authsvc.rules.events import Actor
from authsvc.rules.mail import MailKind
from authsvc.rules.passkeys import RelyingParty
from authsvc.rules.secrets_at_rest import SecretKeys
from authsvc.rules.values import Email
from authsvc.setting_names import AUTHSVC_SECRET_KEY
from authsvc.storage.models import Challenge, Passkey
from authsvc.storage.read_model import Validated, view_of
from authsvc.storage.views import PasskeyView


@dataclass(frozen=True)
class Started:
    """A started ceremony: its challenge token (returned once) and the options JSON."""

    challenge_token: str
    options_json: str


@dataclass(frozen=True)
class PasskeyRegistration:
    """A checked FinishPasskeyRegistration request."""

    challenge_token: str
    credential_json: str
    #: The name the user gave it (checked: "passkey" when none).
    name: str


@dataclass(frozen=True)
class PasskeyRemoval:
    """A checked RemovePasskey request: the user's session token, and which passkey."""

    session_token: str
    passkey_id: uuid.UUID


@dataclass(frozen=True)
class PasskeySignIn:
    """A checked FinishPasskeySignIn request, and where the end user is."""

    challenge_token: str
    assertion_json: str
    origin: Origin


@dataclass(frozen=True)
class Asserted:
    """A verified assertion: whose passkey, and the counter it reported."""

    passkey: Passkey
    sign_count: int
    challenge: SealedChallenge


class Passkeys:
    """Start/FinishPasskeyRegistration, ListPasskeys, RemovePasskey,
    Start/FinishPasskeySignIn, CompleteSignIn with a passkey, and the assertion of a
    passkey step-up."""

    def __init__(
        self,
        changes: Changes,
        factors: FactorEnrolment,
        rp: RelyingParty,
        sign_in: SignIn,
        ceremony_ttl: timedelta,
        keys: SecretKeys,
    ) -> None:
        self._changes = changes
        self._factors = factors
        self._rp = rp
        self._sign_in = sign_in
        self._ttl = ceremony_ttl
        self._keys = keys

    def start_registration(self, session_token: str) -> Started:
        """Options to create a passkey. Raises MfaNotConfigured, ReauthenticationRequired,
        TokenInvalid or TokenExpired."""
        rp = self._rp.require()
        found = self._factors.fresh_session(session_token)
        user_id = found.user.id
        challenge = passkeys.new_challenge()
        with self._changes.open() as change:
            existing = [p.credential_id for p in passkeys.of_user(change.db, user_id)]
            issued = self._issue(change, Ceremony.PASSKEY_REGISTRATION, user_id, challenge)
        options = passkeys.registration_options(rp, user_id, found.user.email, challenge, existing)
        return Started(issued, options)

    def finish_registration(self, request: PasskeyRegistration) -> PasskeyView:
        """Verifies and stores a new passkey. Raises ChallengeInvalid or PasskeyInvalid."""
        rp = self._rp.require()
        found = self._find(request.challenge_token, Ceremony.PASSKEY_REGISTRATION)
        assert found.user_id is not None
        who = Who(found.user_id)
        try:
            challenge = passkeys.decode(found.data)
            new = passkeys.verify_registration(rp, request.credential_json, challenge)
        except PasskeyInvalid:
            self._changes.record(AuditEvent.PASSKEY_SIGN_IN_FAILED, who, "registration")
            raise
        try:
            with self._changes.open() as change:
                if not challenges.consume(change.db, found.id):
                    raise ChallengeInvalid()  # finished concurrently: nothing written
                stored = passkeys.add(change.db, found.user_id, new, request.name, change.now)
                change.audit(AuditEvent.PASSKEY_REGISTERED, who, str(stored.id))
                added = {"passkey_id": str(stored.id), "name": stored.name}
                change.event("passkey.added", who, Actor.user(found.user_id), **added)
                change.notify(MailKind.PASSKEY_ADDED, found.user_id, who, passkey_name=stored.name)
        except IntegrityError:
            raise PasskeyInvalid("this passkey is already registered") from None
        return PasskeyView.of(stored)

    def list(self, session_token: str) -> list[PasskeyView]:
        """The passkeys of the token's user. Raises TokenInvalid or TokenExpired."""
        with self._changes.read() as db:
            found = self._factors.validator.validate_in(db, session_token)
            return [PasskeyView.of(p) for p in passkeys.of_user(db, found.user.id)]

    def remove(self, request: PasskeyRemoval) -> None:
        """Removes one passkey. Raises PasskeyNotFound or ReauthenticationRequired."""
        found = self._factors.fresh_session(request.session_token)
        passkey_id = request.passkey_id
        who = _who(found)
        with self._changes.open() as change:
            assert who.user_id is not None
            passkeys.remove(change.db, who.user_id, passkey_id)
            change.audit(AuditEvent.PASSKEY_REMOVED, who, str(passkey_id))
            by_user = Actor.user(who.user_id)
            change.event("passkey.removed", who, by_user, passkey_id=str(passkey_id))
            change.notify(MailKind.SECOND_FACTOR_REMOVED, who.user_id, who, factor="passkey")

    def start_sign_in(self, email: Email | None) -> Started:
        """Options to sign in with a discoverable passkey (of the email's account, given).

        Stores and reads nothing: the challenge is sealed into the token. The answer has
        the same shape for any email, registered or not, with passkeys or without.
        Raises MfaNotConfigured without a relying party or AUTHSVC_SECRET_KEY.
        """
        rp = self._rp.require()
        if not self._keys.configured:
            raise MfaNotConfigured(f"passkey sign-in needs {AUTHSVC_SECRET_KEY}")
        challenge = passkeys.new_challenge()
        expires = self._changes.clock() + self._ttl
        token = challenges.seal(self._keys, challenge, email or "", expires)
        return Started(token, passkeys.authentication_options(rp, challenge, []))

    def finish_sign_in(self, request: PasskeySignIn) -> SignedIn:
        """Opens an AAL2 session for a verified, user-verified assertion.

        Raises ChallengeInvalid, PasskeyInvalid, ClonedAuthenticator or UserDisabled.
        """
        asserted = self.assertion(request.challenge_token, request.assertion_json, None)
        key = asserted.passkey
        who = request.origin.who(key.user_id)
        with self._changes.open() as change:
            # Waits for a concurrent DisableUser, so no session outlives it.
            try:
                user = users.lock_active(change.db, key.user_id)
            except UserNotFound:
                raise PasskeyInvalid() from None  # deleted meanwhile, with its passkeys
            if self.use(change, asserted, who):
                methods = (proven(AuthMethod.PASSKEY, change.now),)
                event = AuditEvent.PASSKEY_SIGN_IN_SUCCEEDED
                issued = self._sign_in.open_session(change, user, who, methods, event)
                return SignedIn(view_of(user), issued)
        raise ClonedAuthenticator()

    def complete_sign_in(self, step: SecondStep) -> SignedIn:
        """Completes a password sign-in's challenge with one of the user's passkeys (AAL2).

        Raises ChallengeInvalid (either challenge; the sign-in one also when a new
        password ended it), PasskeyInvalid (also another user's passkey),
        ClonedAuthenticator or UserDisabled.
        """
        with self._changes.read() as db:
            now = self._changes.clock()
            found = challenges.find(db, step.challenge_token, Ceremony.SIGN_IN, now)
        asserted = self.assertion(step.passkey_challenge, step.passkey_assertion, found.user_id)
        who = Who(found.user_id, None, found.ip_address, found.user_agent)
        with self._changes.open() as change:
            user = lock_challenged_user(change, found)
            if not challenges.consume(change.db, found.id):
                raise ChallengeInvalid()  # completed or ended concurrently: nothing written
            if self.use(change, asserted, who):
                methods = completed_methods(found, AuthMethod.PASSKEY, change)
                issued = self._sign_in.open_session(change, user, who, methods)
                return SignedIn(view_of(user), issued)
        raise ClonedAuthenticator()

    def assertion(
        self, challenge_token: str, assertion_json: str, user_id: uuid.UUID | None
    ) -> Asserted:
        """Verifies an assertion against its challenge (and, given, the user it must be).

        Audits and raises PasskeyInvalid when refused (also when the challenge was
        started for another account's email); raises ChallengeInvalid or
        MfaNotConfigured.
        """
        rp = self._rp.require()
        if not self._keys.configured:
            raise MfaNotConfigured(f"passkey sign-in needs {AUTHSVC_SECRET_KEY}")
        sealed = challenges.unseal(self._keys, challenge_token, self._changes.clock())
        credential_id = passkeys.credential_id_of(assertion_json)
        with self._changes.read() as db:
            key = passkeys.by_credential(db, credential_id)
            bound = users.find_by_email(db, Email(sealed.email)) if sealed.email else None
        owner = key.user_id if key else None
        wanted = {u for u in (bound.id if bound else None, user_id) if u is not None}
        try:
            if key is None or (sealed.email and bound is None) or (wanted and wanted != {owner}):
                raise PasskeyInvalid()
            count = passkeys.verify_assertion(rp, assertion_json, sealed.challenge, key)
        except PasskeyInvalid:
            self._changes.record(AuditEvent.PASSKEY_SIGN_IN_FAILED, Who(owner or user_id))
            raise
        return Asserted(key, count, sealed)

    def use(self, change: Change, asserted: Asserted, who: Who) -> bool:
        """Spends the sealed challenge and advances the counter in ``change``.

        Raises ChallengeInvalid when the challenge was used meanwhile; returns False
        (audited) when the counter went backwards: the caller leaves its block, then
        raises ClonedAuthenticator.
        """
        key = asserted.passkey
        if not challenges.spend(change.db, asserted.challenge, key.user_id, change.now):
            raise ChallengeInvalid()  # used before, or concurrently: nothing written
        if passkeys.advance_counter(change.db, key.id, asserted.sign_count, change.now):
            return True
        change.audit(AuditEvent.PASSKEY_COUNTER_REGRESSED, who, str(key.id))
        return False

    def _issue(
        self, change: Change, ceremony: Ceremony, user_id: uuid.UUID | None, challenge: bytes
    ) -> str:
        issued = challenges.issue(
            change.db, ceremony, user_id, change.now, self._ttl, data=passkeys.encode(challenge)
        )
        return issued.token

    def _find(self, challenge_token: str, ceremony: Ceremony) -> Challenge:
        with self._changes.read() as db:
            return challenges.find(db, challenge_token, ceremony, self._changes.clock())


def _who(found: Validated) -> Who:
    return Who(found.user.id, found.session.id)
