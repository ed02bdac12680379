"""Challenges: single-use, expiring ceremonies behind an ``asv_ct_`` token.

A second-factor sign-in and a passkey registration each begin by issuing one. Only the
token's SHA-256 is stored. ``consume`` deletes the row and its rowcount decides, so of
two concurrent completions exactly one wins.

A passkey sign-in begins unauthenticated: anyone may start one, so it stores nothing.
Its challenge travels sealed (``seal``: encrypted and authenticated with
``AUTHSVC_SECRET_KEY``, behind ``asv_pc_``) and comes back with the assertion. Single
use is kept by ``spend``: the sign-in that uses it writes a row named by the challenge
(a unique index decides, so of two concurrent uses exactly one wins), which lives
until the challenge expires. Those rows are bounded by successful passkey checks, not
by what strangers send.

A sign-in challenge stands for a password step: a new password ends the user's pending
ones (``forget_sign_ins``, called by ``users.set_password``). The flows that write both
lock the user row before they touch its challenges (CreateSession and CompleteSignIn
with ``users.lock_active``, password changes with their UPDATE), so they never deadlock.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session as DbSession

from authsvc.errors import ChallengeInvalid
from authsvc.rules.secrets_at_rest import SecretKeys
from authsvc.rules.tokens import TokenKind, is_well_formed, new_token, token_hash
from authsvc.storage.models import Challenge

#: The prefix of a sealed passkey sign-in challenge.
SEALED_PREFIX = "asv_pc_"
# A sealed challenge is a few hundred characters of base64url (Fernet's alphabet: its
# decoder would skip anything else, so a token with a stray byte would still open).
_SEALED = re.compile(r"asv_pc_[A-Za-z0-9_-]{100,2000}={0,2}")


class Ceremony(enum.StrEnum):
    """What a challenge is for; a token of one ceremony never completes another."""

    SIGN_IN = "sign_in"
    PASSKEY_REGISTRATION = "passkey_registration"
    PASSKEY_SIGN_IN = "passkey_sign_in"
    #: A sealed passkey sign-in challenge that was used (``spend``).
    PASSKEY_SIGN_IN_USED = "passkey_sign_in_used"


@dataclass(frozen=True)
class IssuedChallenge:
    """A stored challenge's raw token (returned once, never stored) and its expiry."""

    token: str
    expires_at: datetime


def issue(
    db: DbSession,
    ceremony: Ceremony,
    user_id: uuid.UUID | None,
    now: datetime,
    ttl: timedelta,
    **fields: object,
) -> IssuedChallenge:
    """Stores a new challenge expiring after ``ttl``; ``fields`` are more Challenge columns."""
    token = new_token(TokenKind.CHALLENGE)
    row = Challenge(
        token_hash=token_hash(token),
        kind=ceremony.value,
        user_id=user_id,
        expires_at=now + ttl,
        created_at=now,
        updated_at=now,
        **fields,
    )
    db.add(row)
    db.flush()
    return IssuedChallenge(token, row.expires_at)


def find(db: DbSession, token: str, ceremony: Ceremony, now: datetime) -> Challenge:
    """The live challenge of ``token`` for ``ceremony``.

    Raises ChallengeInvalid when it is malformed, unknown, used, expired or of another
    ceremony (alike: the caller starts again).
    """
    if not is_well_formed(token, TokenKind.CHALLENGE):
        raise ChallengeInvalid()
    found = db.scalar(select(Challenge).where(Challenge.token_hash == token_hash(token)))
    if found is None or found.kind != ceremony.value or now >= found.expires_at:
        raise ChallengeInvalid()
    return found


def consume(db: DbSession, challenge_id: uuid.UUID) -> bool:
    """Deletes the challenge; True only for the one caller that deleted it."""
    done = db.execute(
        delete(Challenge)
        .where(Challenge.id == challenge_id)
        .execution_options(synchronize_session=False)
    )
    return bool(done.rowcount == 1)  # type: ignore[attr-defined]


def forget_sign_ins(db: DbSession, user_id: uuid.UUID) -> None:
    """Deletes the user's pending sign-in challenges: their password step is stale."""
    db.execute(
        delete(Challenge)
        .where(Challenge.user_id == user_id, Challenge.kind == Ceremony.SIGN_IN.value)
        .execution_options(synchronize_session=False)
    )


@dataclass(frozen=True)
class SealedChallenge:
    """What a sealed passkey sign-in challenge carries.

    ``email`` binds it to one account (only that account's passkey may answer it);
    empty, any discoverable passkey may.
    """

    challenge: bytes
    email: str
    expires_at: datetime


def seal(keys: SecretKeys, challenge: bytes, email: str, expires_at: datetime) -> str:
    """The token handing ``challenge`` out (raises MfaNotConfigured without keys)."""
    payload = {
        "k": Ceremony.PASSKEY_SIGN_IN.value,
        "c": base64.urlsafe_b64encode(challenge).decode("ascii"),
        "e": email,
        "x": expires_at.timestamp(),
    }
    return SEALED_PREFIX + keys.seal(json.dumps(payload, separators=(",", ":")))


def unseal(keys: SecretKeys, token: str, now: datetime) -> SealedChallenge:
    """The challenge a sealed token carries.

    Raises ChallengeInvalid when it is malformed, forged, altered, sealed with a
    dropped key or expired (alike: the caller starts again); MfaNotConfigured
    without keys. Whether it was used already, ``spend`` decides.
    """
    if not _SEALED.fullmatch(token):
        raise ChallengeInvalid()
    opened = keys.open(token.removeprefix(SEALED_PREFIX))
    try:
        payload = json.loads(opened) if opened is not None else None
        if not isinstance(payload, dict) or payload.get("k") != Ceremony.PASSKEY_SIGN_IN.value:
            raise ChallengeInvalid()
        found = SealedChallenge(
            base64.urlsafe_b64decode(payload["c"]),
            str(payload["e"]),
            datetime.fromtimestamp(float(payload["x"]), UTC),
        )
    except (KeyError, TypeError, ValueError, OverflowError, binascii.Error):
        raise ChallengeInvalid() from None  # sealed by authsvc: only a bug gets here
    if now >= found.expires_at:
        raise ChallengeInvalid()
    return found


def spend(db: DbSession, sealed: SealedChallenge, user_id: uuid.UUID, now: datetime) -> bool:
    """Records that ``sealed`` was used; True only for the one use that recorded it.

    An INSERT that does nothing on conflict: of two concurrent uses, the second waits
    for the first's transaction and then inserts nothing (or, if the first rolled
    back, is the one). The row expires with the challenge; purge deletes it.
    """
    table = Challenge.metadata.tables[Challenge.__tablename__]
    dialect = postgresql if db.get_bind().dialect.name == "postgresql" else sqlite
    row = {
        "id": uuid.uuid4(),
        "token_hash": hashlib.sha256(b"passkey_sign_in:" + sealed.challenge).digest(),
        "kind": Ceremony.PASSKEY_SIGN_IN_USED.value,
        "user_id": user_id,
        "expires_at": sealed.expires_at,
        "data": "",
        "user_agent": "",
        "ip_address": "",
        "created_at": now,
        "updated_at": now,
    }
    statement = dialect.insert(table).on_conflict_do_nothing(index_elements=["token_hash"])
    done = db.execute(statement.returning(table.c.id), row)
    return done.first() is not None
