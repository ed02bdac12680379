"""Passkeys: registration, listing, removal, and sign-in (a full AAL2 sign-in alone).

Each ceremony runs on a single-use challenge (``rules.challenges``) that keeps the
WebAuthn challenge bytes; the response is verified outside any transaction, then the
challenge is consumed (its DELETE's rowcount decides) in the transaction that acts.
An assertion is a signature, not a guessable secret, so it is not throttled; every
refused one is audited.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.exc import IntegrityError

from authsvc.errors import ChallengeInvalid, ClonedAuthenticator, PasskeyInvalid, UserNotFound
from authsvc.flows.changes import Change, Changes, Who
from authsvc.flows.factors import Factors
from authsvc.flows.sign_in import (
    Origin,
    SecondStep,
    SignedIn,
    SignIn,
    completed_methods,
    lock_challenged_user,
)
from authsvc.rules import challenges, passkeys, users
from authsvc.rules.audit import AuditEvent
from authsvc.rules.challenges import Ceremony
from authsvc.rules.events import Actor
from authsvc.rules.passkeys import RelyingParty
from authsvc.rules.values import Email
from authsvc.storage.models import Authentication, AuthMethod, Challenge, Passkey
from authsvc.storage.read_model import Validated


@dataclass(frozen=True)
class Started:
    """A started ceremony: its challenge token (returned once) and the options JSON."""

    challenge_token: str
    options_json: str


@dataclass(frozen=True)
class Asserted:
    """A verified assertion: whose passkey, and the counter it reported."""

    passkey: Passkey
    sign_count: int
    challenge: Challenge


class Passkeys:
    """Start/FinishPasskeyRegistration, ListPasskeys, RemovePasskey,
    Start/FinishPasskeySignIn, CompleteSignIn with a passkey, and the assertion of a
    passkey step-up."""

    def __init__(
        self,
        changes: Changes,
        factors: Factors,
        rp: RelyingParty,
        sign_in: SignIn,
        ceremony_ttl: timedelta,
    ) -> None:
        self._changes = changes
        self._factors = factors
        self._rp = rp
        self._sign_in = sign_in
        self._ttl = ceremony_ttl

    def start_registration(self, session_token: str) -> Started:
        """Options to create a passkey. Raises MfaNotConfigured, ReauthenticationRequired,
        TokenInvalid or TokenExpired."""
        rp = self._rp.require()
        found = self._factors.fresh_session(session_token)
        user_id = uuid.UUID(found.user.id)
        challenge = passkeys.new_challenge()
        with self._changes.open() as change:
            existing = [p.credential_id for p in passkeys.of_user(change.db, user_id)]
            issued = self._issue(change, Ceremony.PASSKEY_REGISTRATION, user_id, challenge)
        options = passkeys.registration_options(rp, user_id, found.user.email, challenge, existing)
        return Started(issued, options)

    def finish_registration(self, challenge_token: str, credential_json: str, name: str) -> Passkey:
        """Verifies and stores a new passkey. Raises ChallengeInvalid or PasskeyInvalid."""
        rp = self._rp.require()
        found = self._find(challenge_token, Ceremony.PASSKEY_REGISTRATION)
        assert found.user_id is not None
        who = Who(found.user_id)
        try:
            new = passkeys.verify_registration(rp, credential_json, passkeys.decode(found.data))
        except PasskeyInvalid:
            self._changes.record(AuditEvent.PASSKEY_SIGN_IN_FAILED, who, "registration")
            raise
        try:
            with self._changes.open() as change:
                if not challenges.consume(change.db, found.id):
                    raise ChallengeInvalid()  # finished concurrently: nothing written
                stored = passkeys.add(change.db, found.user_id, new, name, change.now)
                change.audit(AuditEvent.PASSKEY_REGISTERED, who, str(stored.id))
                added = {"passkey_id": str(stored.id), "name": stored.name}
                change.event("passkey.added", who, Actor.user(found.user_id), **added)
        except IntegrityError:
            raise PasskeyInvalid("this passkey is already registered") from None
        return stored

    def list(self, session_token: str) -> list[Passkey]:
        """The passkeys of the token's user. Raises TokenInvalid or TokenExpired."""
        with self._changes.read() as db:
            found = self._factors.validator.validate_in(db, session_token)
            return passkeys.of_user(db, uuid.UUID(found.user.id))

    def remove(self, session_token: str, passkey_id: uuid.UUID) -> None:
        """Removes one passkey. Raises PasskeyNotFound or ReauthenticationRequired."""
        found = self._factors.fresh_session(session_token)
        who = _who(found)
        with self._changes.open() as change:
            assert who.user_id is not None
            passkeys.remove(change.db, who.user_id, passkey_id)
            change.audit(AuditEvent.PASSKEY_REMOVED, who, str(passkey_id))
            by_user = Actor.user(who.user_id)
            change.event("passkey.removed", who, by_user, passkey_id=str(passkey_id))

    def start_sign_in(self, email: Email | None) -> Started:
        """Options to sign in: the user's passkeys, or (no email) any discoverable one.

        An unknown email gets options like a user without passkeys: nothing is revealed.
        """
        rp = self._rp.require()
        challenge = passkeys.new_challenge()
        with self._changes.open() as change:
            user = users.find_by_email(change.db, email) if email else None
            allowed = (
                [p.credential_id for p in passkeys.of_user(change.db, user.id)] if user else []
            )
            user_id = user.id if user else None
            issued = self._issue(change, Ceremony.PASSKEY_SIGN_IN, user_id, challenge)
        return Started(issued, passkeys.authentication_options(rp, challenge, allowed))

    def finish_sign_in(self, challenge_token: str, assertion_json: str, origin: Origin) -> SignedIn:
        """Opens an AAL2 session for a verified, user-verified assertion.

        Raises ChallengeInvalid, PasskeyInvalid, ClonedAuthenticator or UserDisabled.
        """
        asserted = self.assertion(challenge_token, assertion_json, None)
        key = asserted.passkey
        who = Who(key.user_id, None, origin.ip_address, origin.user_agent)
        with self._changes.open() as change:
            # Waits for a concurrent DisableUser, so no session outlives it.
            try:
                user = users.lock_active(change.db, key.user_id)
            except UserNotFound:
                raise PasskeyInvalid() from None  # deleted meanwhile, with its passkeys
            if self.use(change, asserted, who):
                methods = (Authentication(AuthMethod.PASSKEY, change.now),)
                event = AuditEvent.PASSKEY_SIGN_IN_SUCCEEDED
                issued = self._sign_in.open_session(change, user, who, methods, event)
                return SignedIn(user, issued)
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
                return SignedIn(user, self._sign_in.open_session(change, user, who, methods))
        raise ClonedAuthenticator()

    def assertion(
        self, challenge_token: str, assertion_json: str, user_id: uuid.UUID | None
    ) -> Asserted:
        """Verifies an assertion against its challenge (and, given, the user it must be).

        Audits and raises PasskeyInvalid when refused; raises ChallengeInvalid.
        """
        rp = self._rp.require()
        found = self._find(challenge_token, Ceremony.PASSKEY_SIGN_IN)
        credential_id = passkeys.credential_id_of(assertion_json)
        with self._changes.read() as db:
            key = passkeys.by_credential(db, credential_id)
        owner = key.user_id if key else None
        wanted = {u for u in (found.user_id, user_id) if u is not None}
        try:
            if key is None or (wanted and wanted != {owner}):
                raise PasskeyInvalid()
            count = passkeys.verify_assertion(rp, assertion_json, passkeys.decode(found.data), key)
        except PasskeyInvalid:
            self._changes.record(AuditEvent.PASSKEY_SIGN_IN_FAILED, Who(owner or user_id))
            raise
        return Asserted(key, count, found)

    def use(self, change: Change, asserted: Asserted, who: Who) -> bool:
        """Consumes the challenge and advances the counter in ``change``.

        Raises ChallengeInvalid when the challenge was used meanwhile; returns False
        (audited) when the counter went backwards: the caller leaves its block, then
        raises ClonedAuthenticator.
        """
        if not challenges.consume(change.db, asserted.challenge.id):
            raise ChallengeInvalid()  # used concurrently: nothing written
        key = asserted.passkey
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
    return Who(uuid.UUID(found.user.id), uuid.UUID(found.session.id))
