"""The audit trail: security events, written in the transaction of the change.

``record`` adds an event to the caller's transaction, so the event is kept exactly when
the change is (a rolled-back change leaves no event). Events never hold a secret: no
password, token or hash. A failed sign-in with an unknown email is recorded without a
user and without the email (people type passwords into the email field).
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from authsvc import pagination
from authsvc.models import AuditRecord, utcnow


class AuditEvent(enum.Enum):
    """What happened. The name is stored; the proto enum adds an ``AUDIT_EVENT_TYPE_`` prefix."""

    SIGN_IN_SUCCEEDED = enum.auto()
    SIGN_IN_FAILED = enum.auto()
    SIGN_IN_THROTTLED = enum.auto()
    SESSION_REFRESHED = enum.auto()
    REFRESH_TOKEN_REUSED = enum.auto()  # theft detected: the session was revoked
    SIGNED_OUT = enum.auto()
    PASSWORD_CHANGED = enum.auto()
    PASSWORD_CHANGE_FAILED = enum.auto()
    PASSWORD_CHANGE_THROTTLED = enum.auto()
    USER_CREATED = enum.auto()
    USER_DELETED = enum.auto()
    CALLER_DENIED = enum.auto()


def record(
    db: Session,
    event: AuditEvent,
    *,
    time: datetime | None = None,
    user_id: uuid.UUID | None = None,
    session_id: uuid.UUID | None = None,
    ip_address: str = "",
    user_agent: str = "",
    detail: str = "",
) -> AuditRecord:
    """Adds one event to ``db``'s transaction (flushed, not committed) and returns it.

    ``ip_address`` and ``user_agent`` are the end user's, as the caller sent them;
    ``detail`` is free text that must hold no secret (for CALLER_DENIED: the caller's
    identity and the RPC). Over-long text is cut to fit its column.
    """
    when = time or utcnow()
    row = AuditRecord(
        event=event.name,
        user_id=user_id,
        session_id=session_id,
        ip_address=ip_address[:45],
        user_agent=user_agent[:512],
        detail=detail[:256],
        created_at=when,
        updated_at=when,
    )
    db.add(row)
    db.flush()
    return row


def list_events(
    db: Session, size: int, token: str, user_id: uuid.UUID | None = None
) -> tuple[list[AuditRecord], str]:
    """One page of events, newest first (optionally of one user), and the next token."""
    query = select(AuditRecord)
    if user_id is not None:
        query = query.where(AuditRecord.user_id == user_id)
    scope = f"audit:{user_id or '*'}"
    return pagination.page(db, query, AuditRecord, size, token, scope, newest_first=True)


def purge(db: Session, before: datetime) -> int:
    """Deletes the events older than ``before``; returns how many."""
    result = db.execute(delete(AuditRecord).where(AuditRecord.created_at < before))
    return int(result.rowcount)  # type: ignore[attr-defined]
