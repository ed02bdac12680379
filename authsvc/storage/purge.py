"""Deleting what nothing can use any more: expired sessions, expired reset and
verification tokens, audit events and account events past their retention, throttling
state that no longer counts, expired challenges and unconfirmed TOTP enrolments, finished
webhook deliveries as old as the events, revocation entries that concern no unexpired
access token any more, and mail sent or failed longer ago than the audit retention.

Each function deletes in the caller's transaction and returns how many rows it deleted;
the ``*_batch`` ones delete at most ``batch_size`` rows, so the caller
(``flows.housekeeping``, which decides the cut-offs from ``rules.retention``) keeps each
transaction, and its locks, short while sign-ins go on.

A session is purgeable once nothing can use it: its update token has expired
(``refresh_expires_at``, already capped by the absolute lifetime) and so has its session
token. Its rotated update tokens go with it (ON DELETE CASCADE). Nothing needs
invalidating: a cached entry of a purged session has expired, so it is refused anyway.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.orm import Session as DbSession

from authsvc.storage.models import (
    AuditRecord,
    Challenge,
    EventRow,
    MailRow,
    Revocation,
    Session,
    ThrottleCounter,
    ThrottleFailure,
    TotpFactor,
    UserToken,
    WebhookDelivery,
)


def delete_batch(
    db: DbSession,
    key: InstrumentedAttribute[Any],
    condition: ColumnElement[bool],
    batch_size: int,
    order_by: ColumnElement[Any] | InstrumentedAttribute[Any] | None = None,
) -> int:
    """Deletes up to ``batch_size`` rows of ``key``'s table that meet ``condition``
    (the first ones by ``order_by``, if given); returns how many."""
    query = select(key).where(condition).limit(batch_size)
    if order_by is not None:
        query = query.order_by(order_by)
    batch = list(db.scalars(query))
    if batch:
        statement = delete(key.class_).where(key.in_(batch))
        db.execute(statement.execution_options(synchronize_session=False))
    return len(batch)


def expired_sessions_batch(db: DbSession, now: datetime, batch_size: int) -> int:
    """Deletes up to ``batch_size`` sessions expired at ``now``; returns how many."""
    expired = (Session.refresh_expires_at <= now) & (Session.expires_at <= now)
    return delete_batch(db, Session.id, expired, batch_size, Session.refresh_expires_at)


def expired_user_tokens_batch(db: DbSession, now: datetime, batch_size: int) -> int:
    """Deletes up to ``batch_size`` reset or verification tokens expired at ``now``."""
    return delete_batch(db, UserToken.id, UserToken.expires_at <= now, batch_size)


def expired_revocations_batch(db: DbSession, now: datetime, batch_size: int) -> int:
    """Deletes up to ``batch_size`` revocation entries expired at ``now``.

    The newest entry is kept even when expired: it holds the feed's last position, so
    positions never start again below a cursor a watcher holds.
    """
    newest = select(func.max(Revocation.position)).scalar_subquery()
    expired = (Revocation.expires_at <= now) & (Revocation.position < newest)
    return delete_batch(db, Revocation.id, expired, batch_size)


def old_events_batch(db: DbSession, before: datetime, batch_size: int) -> int:
    """Deletes up to ``batch_size`` account events older than ``before``, oldest first.

    The newest of those events is kept: it marks where the purge stopped, so a consumer
    whose cursor is that event (a quiet system) can still resume, and one whose cursor
    is older learns that it expired (``storage.events.is_expired``).
    """
    newest_old = db.scalar(select(func.max(EventRow.position)).where(EventRow.time < before))
    if newest_old is None:
        return 0
    older = EventRow.position < newest_old
    return delete_batch(db, EventRow.position, older, batch_size, EventRow.position)


def finished_deliveries_batch(db: DbSession, before: datetime, batch_size: int) -> int:
    """Deletes up to ``batch_size`` finished webhook deliveries last changed before
    ``before``.

    Finished (delivered, or failed for good) is what has no next attempt; a pending
    delivery is kept however old, until it is delivered or fails.
    """
    old = WebhookDelivery.next_attempt_at.is_(None) & (WebhookDelivery.updated_at < before)
    return delete_batch(db, WebhookDelivery.id, old, batch_size)


def old_audit_records(db: DbSession, before: datetime) -> int:
    """Deletes the audit events recorded before ``before``."""
    return _delete(db, delete(AuditRecord).where(AuditRecord.created_at < before))


def stale_throttling(
    db: DbSession, now: datetime, failures_before: datetime, counters_before: datetime
) -> int:
    """Deletes throttling failures from before ``failures_before``, and the counters
    untouched since ``counters_before`` that block nobody at ``now``."""
    failures = _delete(
        db, delete(ThrottleFailure).where(ThrottleFailure.created_at <= failures_before)
    )
    stale = ThrottleCounter.updated_at <= counters_before
    idle = or_(ThrottleCounter.blocked_until.is_(None), ThrottleCounter.blocked_until <= now)
    return failures + _delete(db, delete(ThrottleCounter).where(stale, idle))


def expired_ceremonies(db: DbSession, now: datetime) -> int:
    """Deletes the sign-in challenges and passkey ceremonies expired at ``now``, and the
    TOTP enrolments left unconfirmed until they expired (a confirmed one never expires)."""
    challenges = _delete(db, delete(Challenge).where(Challenge.expires_at <= now))
    pending = TotpFactor.confirmed_at.is_(None) & (TotpFactor.expires_at <= now)
    return challenges + _delete(db, delete(TotpFactor).where(pending))


def finished_mail(db: DbSession, before: datetime) -> int:
    """Deletes the mail sent or failed for good, last changed before ``before``."""
    done = (MailRow.status != "queued") & (MailRow.updated_at < before)
    return _delete(db, delete(MailRow).where(done))


def _delete(db: DbSession, statement: object) -> int:
    result = db.execute(statement)  # type: ignore[call-overload]
    return int(result.rowcount)
