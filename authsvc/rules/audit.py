"""The audit trail: security events, written in the transaction of the change.

``AuditEvent`` is the one vocabulary of security events: the audit row's type and the
security log line's ``event`` (its lower-case name) come from it. ``record`` adds an
event to the caller's transaction, so the event is kept exactly when the change is (a
rolled-back change leaves no event). Events never hold a secret: no password, token or
hash. A failed sign-in with an unknown email is recorded without a user and without the
email (people type passwords into the email field).
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession

from authsvc.storage.models import AuditRecord
from authsvc.storage.paging import Page, PageRequest, page


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
    # Multi-factor sign-in (issue 10)
    TOTP_ENROLLED = enum.auto()
    TOTP_REMOVED = enum.auto()
    TOTP_FAILED = enum.auto()
    TOTP_REPLAYED = enum.auto()
    TOTP_THROTTLED = enum.auto()
    RECOVERY_CODE_USED = enum.auto()
    SECOND_FACTOR_CHALLENGED = enum.auto()
    SIGN_IN_COMPLETED = enum.auto()
    SESSION_REAUTHENTICATED = enum.auto()
    REAUTHENTICATION_FAILED = enum.auto()
    REAUTHENTICATION_THROTTLED = enum.auto()
    PASSKEY_REGISTERED = enum.auto()
    PASSKEY_REMOVED = enum.auto()
    PASSKEY_SIGN_IN_SUCCEEDED = enum.auto()
    PASSKEY_SIGN_IN_FAILED = enum.auto()
    PASSKEY_COUNTER_REGRESSED = enum.auto()
    TOTP_ENROLLMENT_STARTED = enum.auto()

    @property
    def log_name(self) -> str:
        """The ``event`` of its security log line: ``sign_in_failed``."""
        return self.name.lower()


def record(
    db: DbSession,
    event: AuditEvent,
    *,
    time: datetime,
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
    when = time
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
    db: DbSession, request: PageRequest, user_id: uuid.UUID | None
) -> Page[AuditRecord]:
    """One page of events, newest first (optionally of one user)."""
    query = select(AuditRecord)
    if user_id is not None:
        query = query.where(AuditRecord.user_id == user_id)
    return page(db, query, AuditRecord, request, newest_first=True)
