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

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session as DbSession

from authsvc.storage import events
from authsvc.storage.models import (
    AuditRecord,
    Challenge,
    MailRow,
    Revocation,
    Session,
    ThrottleCounter,
    ThrottleFailure,
    TotpFactor,
    UserToken,
    WebhookDelivery,
)


def expired_sessions_batch(db: DbSession, now: datetime, batch_size: int) -> int:
    """Deletes up to ``batch_size`` sessions expired at ``now``; returns how many."""
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


def expired_user_tokens_batch(db: DbSession, now: datetime, batch_size: int) -> int:
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


def expired_revocations_batch(db: DbSession, now: datetime, batch_size: int) -> int:
    """Deletes up to ``batch_size`` revocation entries expired at ``now``.

    The newest entry is kept even when expired: it holds the feed's last position, so
    positions never start again below a cursor a watcher holds.
    """
    newest = select(func.max(Revocation.position)).scalar_subquery()
    batch = list(
        db.scalars(
            select(Revocation.id)
            .where(Revocation.expires_at <= now, Revocation.position < newest)
            .limit(batch_size)
        )
    )
    if batch:
        db.execute(delete(Revocation).where(Revocation.id.in_(batch)))
    return len(batch)


def old_events_batch(db: DbSession, before: datetime, batch_size: int) -> int:
    """Deletes up to ``batch_size`` account events older than ``before``."""
    return events.purge(db, before, batch_size)


def finished_deliveries_batch(db: DbSession, before: datetime, batch_size: int) -> int:
    """Deletes up to ``batch_size`` finished webhook deliveries last changed before
    ``before``.

    Finished (delivered, or failed for good) is what has no next attempt; a pending
    delivery is kept however old, until it is delivered or fails.
    """
    old = WebhookDelivery.next_attempt_at.is_(None) & (WebhookDelivery.updated_at < before)
    batch = list(db.scalars(select(WebhookDelivery.id).where(old).limit(batch_size)))
    if batch:
        query = delete(WebhookDelivery).where(WebhookDelivery.id.in_(batch))
        db.execute(query.execution_options(synchronize_session=False))
    return len(batch)


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
