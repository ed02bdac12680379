"""Rules for the revocation feed: appending entries in commit order, reading them back.

An entry says "access tokens of this session" or "access tokens of this user issued
before ``not_before``" are revoked. Its position is assigned at the very end of the
revoking transaction under an append lock held until commit (PostgreSQL
``pg_advisory_xact_lock``; SQLite has a single writer), so positions commit in order
and a reader of ``position > last`` never skips one that commits late. Entries are
kept while an access token they concern can be unexpired (``expires_at``).

Functions take a SQLAlchemy session and never commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session as DbSession

from authsvc.storage.engine import advisory_xact_lock
from authsvc.storage.models import Revocation

#: ``pg_advisory_xact_lock`` key of the feed's append lock ("authrvk1").
_APPEND_LOCK = 0x617574687276B031
#: Entries outlive the tokens they concern by this much, for clocks that disagree.
CLOCK_SKEW = timedelta(seconds=60)
#: The most entries read in one go (the snapshot comes in pages of this size).
PAGE = 1000


@dataclass(frozen=True)
class Revoked:
    """What one change revoked: sessions, and users (all their tokens until now)."""

    sessions: frozenset[uuid.UUID] = frozenset()
    users: frozenset[uuid.UUID] = frozenset()


def append(db: DbSession, revoked: Revoked, clock: Callable[[], datetime], ttl: timedelta) -> None:
    """Appends the entries of ``revoked`` in position order; their ``not_before`` is the
    clock once the append lock is held.

    Call it last in the transaction: the append lock is held until commit.
    """
    if not (revoked.sessions or revoked.users):
        return
    advisory_xact_lock(db, _APPEND_LOCK)
    now = clock()
    position = last_position(db)
    expires = now + ttl + CLOCK_SKEW
    # Tokens carry ``iat`` in whole seconds: a user's entry starts at the whole second,
    # so a token issued right after it (a refresh after ChangePassword) is not refused.
    # Tokens issued earlier within that second belong to sessions that the same change
    # revoked one by one (all of them, or all but the one that proved the password).
    user_not_before = now.replace(microsecond=0)
    subjects: list[tuple[uuid.UUID | None, uuid.UUID | None]] = [
        (s, None) for s in sorted(revoked.sessions)
    ] + [(None, u) for u in sorted(revoked.users)]
    for offset, (session_id, user_id) in enumerate(subjects, 1):
        db.add(
            Revocation(
                position=position + offset,
                session_id=session_id,
                user_id=user_id,
                not_before=now if user_id is None else user_not_before,
                expires_at=expires,
                created_at=now,
                updated_at=now,
            )
        )
    db.flush()


def after(db: DbSession, position: int, now: datetime, limit: int = PAGE) -> list[Revocation]:
    """The unexpired entries after ``position``, in position order (at most ``limit``)."""
    return list(
        db.scalars(
            select(Revocation)
            .where(Revocation.position > position, Revocation.expires_at > now)
            .order_by(Revocation.position)
            .limit(limit)
        )
    )


def last_position(db: DbSession) -> int:
    """The position of the newest entry (0 when there is none)."""
    return db.scalar(select(func.coalesce(func.max(Revocation.position), 0))) or 0


def user_revoked_after(db: DbSession, user_id: uuid.UUID, issued_at: int, now: datetime) -> bool:
    """True when a live entry revokes the user's tokens issued at ``issued_at`` (seconds)."""
    issued = datetime.fromtimestamp(issued_at, UTC)
    revoking = select(Revocation.position).where(
        Revocation.user_id == user_id, Revocation.expires_at > now, Revocation.not_before > issued
    )
    return bool(db.scalar(select(exists(revoking))))
