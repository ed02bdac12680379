"""Access tokens: issuing them on sign-in and refresh, GetSigningKeys, key rotation.

The keys are read from the database into a keyring that every call shares: the loaded
private key of the signing key (unsealed once), the public keys by ``kid`` and the
JWKS text. It is read again when the schedule says it changes (a key starts signing
or leaves the JWKS), and at least every ``reload`` so a key that another replica or
``authsvc keys rotate`` added is known long before it signs (it is published one
access-token TTL plus the verifiers' refresh interval before). Signing thus costs one
Ed25519 signature and no database round trip.

Without ``AUTHSVC_SECRET_KEY`` no private key can be stored sealed, so none is made:
no access token is issued (the field stays empty), the JWKS is empty, and an access
token given to ValidateToken is invalid.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from authsvc.errors import TokenInvalid
from authsvc.flows.changes import Changes
from authsvc.rules import access_tokens, sessions, signing_keys
from authsvc.rules.access_tokens import AccessToken, Claims, Subject, TokenSigner
from authsvc.rules.secrets_at_rest import SecretKeys
from authsvc.storage.models import SigningKey
from authsvc.storage.read_model import SessionView

log = logging.getLogger(__name__)

#: The longest the keyring goes without reading the keys again.
RELOAD = timedelta(seconds=30)


@dataclass(frozen=True)
class TokenPolicy:
    """Access tokens' settings."""

    issuer: str
    ttl: timedelta
    #: How often verifiers refetch the JWKS (a new key is published this plus ``ttl``
    #: before it signs).
    jwks_refresh: timedelta
    #: How long a key signs before the housekeeping rotates it (0: never by itself).
    rotation: timedelta = timedelta(0)
    with_email: bool = False

    @property
    def lead(self) -> timedelta:
        """How long before it signs a new key is published."""
        return self.ttl + self.jwks_refresh

    @property
    def reload(self) -> timedelta:
        """How often the keyring is read again: well within the lead."""
        return min(RELOAD, self.lead / 4)


@dataclass(frozen=True)
class Keyring:
    """The keys of one moment, loaded."""

    signer: TokenSigner | None
    public: dict[str, Ed25519PublicKey]
    jwks_json: str
    #: Read the keys again from this time on.
    valid_until: datetime


_EMPTY_JWKS = signing_keys.jwks_json(())


@dataclass(frozen=True)
class Housekept:
    """What one round of key housekeeping did."""

    created: str | None  # the kid of a key created, if any
    purged: int


class AccessTokens:
    """Issues and verifies access tokens; GetSigningKeys; ``authsvc keys rotate``."""

    def __init__(self, changes: Changes, secrets: SecretKeys, policy: TokenPolicy) -> None:
        self._changes = changes
        self._secrets = secrets
        self.policy = policy
        self._keyring: Keyring | None = None
        self._loading = threading.Lock()
        self._private: dict[str, TokenSigner] = {}  # unsealed once per kid

    @property
    def enabled(self) -> bool:
        """True when access tokens can be issued (``AUTHSVC_SECRET_KEY`` is set)."""
        return self._secrets.configured

    def issue(self, subject: Subject, now: datetime) -> AccessToken | None:
        """A signed access token for ``subject``, or None when disabled (or no key yet)."""
        signer = self._current(now).signer
        if signer is None:
            return None
        return signer.sign(subject, self.policy.issuer, now, self.policy.ttl)

    def issue_for(
        self, session: SessionView, email: Callable[[], str], now: datetime
    ) -> AccessToken | None:
        """``issue`` for a session opened or refreshed; ``email()`` is asked for only
        when the policy puts the email in the token."""
        address = email() if self.policy.with_email else ""
        return self.issue(sessions.subject(session, address), now)

    def verify(self, token: str) -> Claims:
        """The claims of an access token authsvc signed. Raises TokenInvalid or
        TokenExpired."""
        now = self._changes.clock()
        keys = self._current(now).public
        if not keys:
            raise TokenInvalid()
        return access_tokens.verify(token, keys, self.policy.issuer, now)

    def jwks_json(self) -> str:
        """The published public keys as a JWK Set (empty when disabled)."""
        return self._current(self._changes.clock()).jwks_json

    def rotate(self) -> SigningKey:
        """Publishes a new key now; it signs one lead later (at once if none signs).

        Raises MfaNotConfigured without ``AUTHSVC_SECRET_KEY``.
        """
        with self._changes.open() as change:
            key = signing_keys.create(change.db, self._secrets, change.now, self.policy.lead)
        self._keyring = None
        log.info("signing key %s published; it signs from %s", key.kid, key.signs_from)
        return key

    def housekeep(self) -> Housekept:
        """Creates the first key, or the next when rotation is due; deletes retired keys."""
        if not self.enabled:
            return Housekept(None, 0)
        with self._changes.open() as change:
            created = signing_keys.ensure(change.db, self._secrets, change.now)
            if created is None and self.policy.rotation:
                created = signing_keys.rotate_if_due(
                    change.db, self._secrets, change.now, self.policy.rotation, self.policy.lead
                )
            purged = signing_keys.purge_retired(change.db, change.now, self.policy.ttl)
        if created is not None or purged:
            self._keyring = None
        return Housekept(created.kid if created else None, purged)

    def _current(self, now: datetime) -> Keyring:
        keyring = self._keyring
        if keyring is not None and now < keyring.valid_until:
            return keyring
        with self._loading:
            keyring = self._keyring
            if keyring is None or now >= keyring.valid_until:
                keyring = self._load(now)
                self._keyring = keyring
        return keyring

    def _load(self, now: datetime) -> Keyring:
        if not self.enabled:
            return Keyring(None, {}, _EMPTY_JWKS, datetime.max.replace(tzinfo=now.tzinfo))
        # Reads only: this may run inside a sign-in's write transaction (the first key
        # is made by ``housekeep``, at start-up and on the purge timer).
        with self._changes.read() as db:
            rows = signing_keys.all_keys(db)
        found = signing_keys.schedule(rows, now, self.policy.ttl)
        until = now + self.policy.reload
        if found.changes_at is not None:
            until = min(until, found.changes_at)
        return Keyring(
            self._signer(found.signing) if found.signing else None,
            {k.kid: _public(k) for k in found.published},
            signing_keys.jwks_json(found.published),
            until,
        )

    def _signer(self, key: SigningKey) -> TokenSigner:
        signer = self._private.get(key.kid)
        if signer is None:
            signer = TokenSigner(key.kid, signing_keys.load_private(key, self._secrets))
            self._private = {key.kid: signer}  # only the signing key's is kept
        return signer


def _public(key: SigningKey) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(key.public_key)
