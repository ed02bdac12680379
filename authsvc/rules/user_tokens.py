"""Rules for the single-use tokens authsvc hands out for mailing: password reset and
email verification.

A token is a prefixed 256-bit secret (``rules.tokens``); only its SHA-256 is stored, in
``user_tokens`` with its purpose. Issuing one ends the user's earlier tokens of that
purpose. Using one deletes its row, and the delete's row count decides: of two
concurrent uses exactly one wins. Functions take a SQLAlchemy session and never commit.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Uuid, delete, insert, literal, select
from sqlalchemy.orm import Session as DbSession

from authsvc.rules.tokens import TokenKind, is_well_formed, new_token, token_hash
from authsvc.storage.models import User, UserToken, UTCDateTime

#: Stands for "no such user": issuing for it runs the same statements and inserts nothing.
NO_SUCH_USER_ID = uuid.UUID(int=0)


class Purpose(enum.Enum):
    """What a token is for: its ``kind`` column, and its prefix."""

    RESET = "reset"
    VERIFICATION = "verification"

    @property
    def token_kind(self) -> TokenKind:
        """The prefix of this purpose's tokens."""
        return TokenKind.RESET if self is Purpose.RESET else TokenKind.VERIFICATION


@dataclass(frozen=True)
class Issued:
    """A token just made (returned once, never stored) and whether a user got it."""

    token: str
    expires_at: datetime
    issued: bool


def issue(
    db: DbSession, user_id: uuid.UUID, purpose: Purpose, now: datetime, ttl: timedelta
) -> Issued:
    """Ends the user's earlier ``purpose`` tokens and stores a new one.

    Runs the same statements whether or not ``user_id`` names an active user (pass
    ``NO_SUCH_USER_ID`` for an unknown account): the insert selects the user and inserts
    nothing for a missing or disabled one, so ``issued`` is False and nothing is kept.
    """
    token, expires_at = new_token(purpose.token_kind), now + ttl
    forget(db, user_id, purpose)
    row = select(
        literal(uuid.uuid4(), Uuid()),
        User.id,
        literal(purpose.value),
        literal(token_hash(token)),
        literal(expires_at, UTCDateTime()),
        literal(now, UTCDateTime()),
        literal(now, UTCDateTime()),
    ).where(User.id == user_id, User.disabled_at.is_(None))
    columns = ["id", "user_id", "kind", "token_hash", "expires_at", "created_at", "updated_at"]
    result = db.execute(insert(UserToken).from_select(columns, row))
    return Issued(token, expires_at, result.rowcount == 1)  # type: ignore[attr-defined]


def find(db: DbSession, token: str, purpose: Purpose) -> UserToken | None:
    """The stored token of ``purpose`` (expired or not), if any; no query when malformed."""
    if not is_well_formed(token, purpose.token_kind):
        return None
    return db.scalar(
        select(UserToken).where(
            UserToken.token_hash == token_hash(token), UserToken.kind == purpose.value
        )
    )


def use(db: DbSession, token_id: uuid.UUID) -> bool:
    """Consumes a token found by ``find``; False when a concurrent use consumed it first."""
    result = db.execute(
        delete(UserToken)
        .where(UserToken.id == token_id)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def forget(db: DbSession, user_id: uuid.UUID, purpose: Purpose | None = None) -> None:
    """Ends the user's unused tokens (of one purpose, or all)."""
    statement = delete(UserToken).where(UserToken.user_id == user_id)
    if purpose is not None:
        statement = statement.where(UserToken.kind == purpose.value)
    db.execute(statement.execution_options(synchronize_session=False))
