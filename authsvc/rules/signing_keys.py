"""Rules for the keys that sign access tokens: creation, the schedule, the JWKS.

The schedule is derived from the rows by time alone, so every replica signs with the
same key without talking to the others:

- a key is published (in the JWKS) from ``published_at``;
- it signs from ``signs_from`` until the next key's ``signs_from`` (the key with the
  latest ``signs_from`` not in the future signs; ties go to the greater ``kid``);
- once replaced it stays published one access-token TTL (plus ``CLOCK_SKEW``) after
  its last signature, then it is deleted.

A rotation publishes the new key ``lead`` (one access-token TTL plus the verifiers'
JWKS refresh interval) before it signs. The very first key signs at once: no verifier
can know an older one. Private keys are sealed with ``AUTHSVC_SECRET_KEY``.

Functions take a SQLAlchemy session and never commit.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import delete, select
from sqlalchemy.orm import Session as DbSession

from authsvc.rules.secrets_at_rest import SecretKeys
from authsvc.storage.engine import advisory_xact_lock
from authsvc.storage.models import SigningKey

#: How long a replaced key stays published beyond one access-token TTL, for clocks
#: that disagree a little (the replicas', the verifiers').
CLOCK_SKEW = timedelta(seconds=30)
#: ``pg_advisory_xact_lock`` key serializing key creation across replicas ("authkeys").
_KEYS_LOCK = 0x617574686B657973
_RAW = serialization.Encoding.Raw


def b64url(data: bytes) -> str:
    """Base64url without padding (JOSE)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def thumbprint(public_key: bytes) -> str:
    """The RFC 7638 JWK thumbprint of an Ed25519 public key (the ``kid``)."""
    members = {"crv": "Ed25519", "kty": "OKP", "x": b64url(public_key)}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return b64url(hashlib.sha256(canonical).digest())


@dataclass(frozen=True)
class Schedule:
    """The keys of one moment: which signs, which are published, until when it holds."""

    signing: SigningKey | None
    published: tuple[SigningKey, ...]
    #: When the answer may change next (a key starts signing or leaves the JWKS).
    changes_at: datetime | None


def schedule(rows: Sequence[SigningKey], now: datetime, ttl: timedelta) -> Schedule:
    """The signing key and the published keys at ``now``, from the rows alone."""
    ordered = sorted(rows, key=lambda k: (k.signs_from, k.kid))
    started = [k for k in ordered if k.signs_from <= now]
    signing = started[-1] if started else None
    published = []
    changes: list[datetime] = [k.signs_from for k in ordered if k.signs_from > now]
    changes += [k.published_at for k in ordered if k.published_at > now]
    successors: list[SigningKey | None] = [*ordered[1:], None]
    for key, successor in zip(ordered, successors, strict=False):
        gone = _unpublished_at(key, successor, ttl)
        if key.published_at <= now and (gone is None or gone > now):
            published.append(key)
            if gone is not None:
                changes.append(gone)
    return Schedule(signing, tuple(published), min(changes, default=None))


def _unpublished_at(
    key: SigningKey, successor: SigningKey | None, ttl: timedelta
) -> datetime | None:
    # The key's last signature is at its successor's start.
    return None if successor is None else successor.signs_from + ttl + CLOCK_SKEW


def jwk(key: SigningKey) -> dict[str, str]:
    """The public JWK of a key (RFC 8037): nothing private."""
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": b64url(key.public_key),
        "kid": key.kid,
        "alg": "EdDSA",
        "use": "sig",
    }


def jwks_json(keys: Sequence[SigningKey]) -> str:
    """The JWK Set of ``keys`` as compact JSON."""
    return json.dumps({"keys": [jwk(k) for k in keys]}, separators=(",", ":"))


def load_private(key: SigningKey, secrets: SecretKeys) -> Ed25519PrivateKey:
    """The key's private key, unsealed. Raises MfaNotConfigured when no secret opens it."""
    raw = base64.b64decode(secrets.unseal(key.private_key))
    return Ed25519PrivateKey.from_private_bytes(raw)


def all_keys(db: DbSession) -> list[SigningKey]:
    """Every stored key."""
    return list(db.scalars(select(SigningKey)))


def create(db: DbSession, secrets: SecretKeys, now: datetime, lead: timedelta) -> SigningKey:
    """Adds a new key, published now, signing ``lead`` from now, or at once when no key
    signs now. Serialized across replicas. Raises MfaNotConfigured without secret keys."""
    _lock(db)
    private = Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes(_RAW, serialization.PublicFormat.Raw)
    raw = private.private_bytes(_RAW, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    sealed = secrets.seal(base64.b64encode(raw).decode("ascii"))
    current = schedule(all_keys(db), now, timedelta(0)).signing
    key = SigningKey(
        kid=thumbprint(public),
        public_key=public,
        private_key=sealed,
        published_at=now,
        signs_from=now + lead if current is not None else now,
        created_at=now,
        updated_at=now,
    )
    db.add(key)
    db.flush()
    return key


def ensure(db: DbSession, secrets: SecretKeys, now: datetime) -> SigningKey | None:
    """Creates the first key when none can sign now; returns the key created, if any."""
    _lock(db)
    if schedule(all_keys(db), now, timedelta(0)).signing is not None:
        return None
    return create(db, secrets, now, timedelta(0))


def rotate_if_due(
    db: DbSession, secrets: SecretKeys, now: datetime, every: timedelta, lead: timedelta
) -> SigningKey | None:
    """Publishes the next key when the newest one has signed (or will have signed by the
    time the next one starts) for ``every``; returns it, if any."""
    _lock(db)
    newest = max(all_keys(db), key=lambda k: k.signs_from, default=None)
    if newest is not None and newest.signs_from + every > now + lead:
        return None
    return create(db, secrets, now, lead)


def purge_retired(db: DbSession, now: datetime, ttl: timedelta) -> int:
    """Deletes the keys no longer published (their tokens have all expired)."""
    rows = sorted(all_keys(db), key=lambda k: (k.signs_from, k.kid))
    gone = [
        key.id
        for key, successor in itertools.pairwise(rows)
        if (until := _unpublished_at(key, successor, ttl)) is not None and until <= now
    ]
    if gone:
        db.execute(delete(SigningKey).where(SigningKey.id.in_(gone)))
    return len(gone)


def _lock(db: DbSession) -> None:
    advisory_xact_lock(db, _KEYS_LOCK)
