"""Challenges: single-use, expiring ceremonies behind an ``asv_ct_`` token.

A second-factor sign-in, a passkey registration and a passkey sign-in each begin by
issuing one. Only the token's SHA-256 is stored. ``consume`` deletes the row and its
rowcount decides, so of two concurrent completions exactly one wins.

A sign-in challenge stands for a password step: a new password ends the user's pending
ones (``forget_sign_ins``, called by ``users.set_password``). The flows that write both
lock the user row before they touch its challenges (CreateSession and CompleteSignIn
with ``users.lock_active``, password changes with their UPDATE), so they never deadlock.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session as DbSession

from authsvc.errors import ChallengeInvalid
from authsvc.rules.tokens import TokenKind, is_well_formed, new_token, token_hash
from authsvc.storage.models import Challenge


class Ceremony(enum.StrEnum):
    """What a challenge is for; a token of one ceremony never completes another."""

    SIGN_IN = "sign_in"
    PASSKEY_REGISTRATION = "passkey_registration"
    PASSKEY_SIGN_IN = "passkey_sign_in"


@dataclass(frozen=True)
class IssuedChallenge:
    """A challenge and its raw token (returned once, never stored)."""

    challenge: Challenge
    token: str


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
    return IssuedChallenge(row, token)


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
