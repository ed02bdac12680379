"""Deleting what nothing can use any more, in small batches: expired sessions, expired
reset and verification tokens, audit events and account events past their retention,
throttling state that no longer counts, and expired challenges and unconfirmed TOTP
enrolments.

A session is purgeable once nothing can use it: its update token has expired
(``refresh_expires_at``, already capped by the absolute lifetime) and so has its session
token. Its rotated update tokens go with it (ON DELETE CASCADE). Nothing needs
invalidating: a cached entry of a purged session has expired, so it is refused anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session as DbSession

from authsvc.storage import events
from authsvc.storage.engine import Database
from authsvc.storage.models import (
    AuditRecord,
    Challenge,
    Session,
    ThrottleCounter,
    ThrottleFailure,
    TotpFactor,
    UserToken,
)


@dataclass(frozen=True)
class Retention:
    """How long each kind of row matters."""

    batch_size: int
    audit: timedelta
    #: Throttling failures count within this window (the longest of the policies').
    throttle_window: timedelta
    #: A throttling counter untouched this long holds nothing that still counts.
    throttle_idle: timedelta
    #: Account events older than this are purged (their cursors expire).
    events: timedelta = timedelta(days=7)


@dataclass(frozen=True)
class Purged:
    """How many rows one purge deleted."""

    sessions: int
    audit_events: int
    throttle_rows: int
    #: Expired password reset and email verification tokens.
    user_tokens: int = 0
    #: Expired sign-in challenges, passkey ceremonies and unconfirmed TOTP enrolments.
    ceremonies: int = 0
    #: Account events past their retention.
    events: int = 0


def purge_all(db: Database, clock: Callable[[], datetime], retention: Retention) -> Purged:
    """Everything a purge does (``authsvc purge`` and the timer inside ``serve``)."""
    sessions = _purge_sessions(db, clock, retention.batch_size)
    tokens = _in_batches(db, clock, retention.batch_size, delete_expired_user_tokens)
    with db.transaction() as tx:
        now = clock()
        events = _delete(
            tx, delete(AuditRecord).where(AuditRecord.created_at < now - retention.audit)
        )
        state = _purge_throttling(tx, now, retention)
        ceremonies = _purge_ceremonies(tx, now)
    outbox = _in_batches(db, clock, retention.batch_size, _old_events(retention.events))
    return Purged(sessions, events, state, tokens, ceremonies, outbox)


def _old_events(keep: timedelta) -> Callable[[DbSession, datetime, int], int]:
    def purge_batch(db: DbSession, now: datetime, batch_size: int) -> int:
        return events.purge(db, now - keep, batch_size)

    return purge_batch


def _purge_ceremonies(db: DbSession, now: datetime) -> int:
    # Both are unusable once expired; a confirmed TOTP has no expiry.
    challenges = _delete(db, delete(Challenge).where(Challenge.expires_at <= now))
    pending = TotpFactor.confirmed_at.is_(None) & (TotpFactor.expires_at <= now)
    return challenges + _delete(db, delete(TotpFactor).where(pending))


def delete_expired_sessions(db: DbSession, now: datetime, batch_size: int) -> int:
    """Deletes up to ``batch_size`` sessions expired at ``now``; returns how many.

    Small batches keep each transaction (and its locks) short while sign-ins go on.
    """
    batch = list(
        db.scalars(
            select(Session.id)
            .where(Session.refresh_expires_at <= now, Session.expires_at <= now)
            .order_by(Session.refresh_expires_at)
            .limit(batch_size)
        )
    )
    if batch:
        db.execute(
            delete(Session)
            .where(Session.id.in_(batch))
            .execution_options(synchronize_session=False)
        )
    return len(batch)


def delete_expired_user_tokens(db: DbSession, now: datetime, batch_size: int) -> int:
    """Deletes up to ``batch_size`` reset or verification tokens expired at ``now``."""
    batch = list(
        db.scalars(select(UserToken.id).where(UserToken.expires_at <= now).limit(batch_size))
    )
    if batch:
        db.execute(
            delete(UserToken)
            .where(UserToken.id.in_(batch))
            .execution_options(synchronize_session=False)
        )
    return len(batch)


def _purge_sessions(db: Database, clock: Callable[[], datetime], batch_size: int) -> int:
    return _in_batches(db, clock, batch_size, delete_expired_sessions)


def _in_batches(
    db: Database,
    clock: Callable[[], datetime],
    batch_size: int,
    delete_batch: Callable[[DbSession, datetime, int], int],
) -> int:
    total = 0
    while True:
        with db.transaction() as tx:
            deleted = delete_batch(tx, clock(), batch_size)
        total += deleted
        if deleted < batch_size:
            return total


def _purge_throttling(db: DbSession, now: datetime, retention: Retention) -> int:
    window = retention.throttle_window
    failures = _delete(
        db, delete(ThrottleFailure).where(ThrottleFailure.created_at <= now - window)
    )
    stale = ThrottleCounter.updated_at <= now - max(retention.throttle_idle, window)
    idle = or_(ThrottleCounter.blocked_until.is_(None), ThrottleCounter.blocked_until <= now)
    return failures + _delete(db, delete(ThrottleCounter).where(stale, idle))


def _delete(db: DbSession, statement: object) -> int:
    result = db.execute(statement)  # type: ignore[call-overload]
    return int(result.rowcount)
