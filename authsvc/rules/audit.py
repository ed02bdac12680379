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

    SIGN_IN_SUCCEEDED = 1
    SIGN_IN_FAILED = 2
    SIGN_IN_THROTTLED = 3
    SESSION_REFRESHED = 4
    REFRESH_TOKEN_REUSED = 5  # theft detected: the session was revoked
    SIGNED_OUT = 6
    PASSWORD_CHANGED = 7
    PASSWORD_CHANGE_FAILED = 8
    PASSWORD_CHANGE_THROTTLED = 9
    USER_CREATED = 10
    USER_DELETED = 11
    CALLER_DENIED = 12
    # Account lifecycle (issue 9): proto values 13 to 25.
    PASSWORD_RESET_STARTED = 13
    PASSWORD_RESET_COMPLETED = 14
    PASSWORD_RESET_FAILED = 15
    PASSWORD_RESET_THROTTLED = 16
    EMAIL_VERIFICATION_STARTED = 17
    EMAIL_VERIFIED = 18
    EMAIL_VERIFICATION_FAILED = 19
    USER_DISABLED = 20
    USER_ENABLED = 21
    SESSION_REVOKED = 22
    USER_SESSIONS_REVOKED = 23
    PASSWORD_SET = 24
    EMAIL_VERIFICATION_THROTTLED = 25
    # Who may call (issue 9): proto values 30 to 32.
    API_KEY_CREATED = 30
    API_KEY_REVOKED = 31
    API_KEY_REJECTED = 32  # a call presented an unknown, revoked or malformed key
    # Importing users (issue 9): proto value 35.
    USERS_IMPORTED = 35  # one per imported batch; the detail counts them
    # Multi-factor sign-in (issue 10)
    TOTP_ENROLLED = 40
    TOTP_REMOVED = 41
    TOTP_FAILED = 42
    TOTP_REPLAYED = 43
    TOTP_THROTTLED = 44
    RECOVERY_CODE_USED = 45
    SECOND_FACTOR_CHALLENGED = 46
    SIGN_IN_COMPLETED = 47
    SESSION_REAUTHENTICATED = 48
    REAUTHENTICATION_FAILED = 49
    REAUTHENTICATION_THROTTLED = 50
    PASSKEY_REGISTERED = 51
    PASSKEY_REMOVED = 52
    PASSKEY_SIGN_IN_SUCCEEDED = 53
    PASSKEY_SIGN_IN_FAILED = 54
    PASSKEY_COUNTER_REGRESSED = 55
    TOTP_ENROLLMENT_STARTED = 56
    SIGN_UP_THROTTLED = 57  # a sign-up refused: its address is over the budget
    # Account events (issue 19)
    USER_UPDATED = 60  # the detail names the changed fields
    # Webhooks (issue 19): proto values 70 and 71.
    WEBHOOK_CREATED = 70
    WEBHOOK_DELETED = 71
    # Maintenance (issue 16): proto values 80 and 81; the detail counts what was done.
    DATA_PURGED = 80  # the purge deleted rows: how many of each kind
    SECRETS_REENCRYPTED = 81  # ``authsvc reencrypt-secrets``: how many of each kind

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


def counts_detail(counts: dict[str, str]) -> str:
    """The detail of an event that counts what it did: ``sessions=5 mails=0``."""
    return " ".join(f"{kind}={count}" for kind, count in counts.items())


def list_events(
    db: DbSession, request: PageRequest, user_id: uuid.UUID | None
) -> Page[AuditRecord]:
    """One page of events, newest first (optionally of one user)."""
    query = select(AuditRecord)
    if user_id is not None:
        query = query.where(AuditRecord.user_id == user_id)
    return page(db, query, AuditRecord, request, newest_first=True)
