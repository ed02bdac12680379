"""Rules for the mail outbox: queueing, claiming, the outcome of each attempt, listing.

Functions take a SQLAlchemy session and never commit. A mail is queued in the
transaction of the change that causes it, so it exists exactly when the change does.
A sender claims due mails by pushing ``next_attempt_at`` past a lease with a
conditional UPDATE (on PostgreSQL after ``FOR UPDATE SKIP LOCKED``, so replicas take
different mails), commits, and only then talks to the SMTP server: a sender that dies
mid-send leaves its mails due again when the lease ends (at least once).
"""

from __future__ import annotations

import enum
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session as DbSession

from authsvc.storage.models import MailRow

QUEUED = "queued"
SENT = "sent"
FAILED = "failed"
STATUSES = (QUEUED, SENT, FAILED)
ERROR_MAX = 512


class MailKind(enum.StrEnum):
    """Every mail authsvc sends; the value names its templates."""

    PASSWORD_RESET = "password_reset"  # noqa: S105 (a mail's name, not a secret)
    PASSWORD_RESET_NO_ACCOUNT = "password_reset_no_account"  # noqa: S105
    EMAIL_VERIFICATION = "email_verification"
    SIGN_UP_ATTEMPT = "sign_up_attempt"
    # Security notices (AUTHSVC_MAIL_NOTICES):
    PASSWORD_CHANGED = "password_changed"  # noqa: S105
    EMAIL_CHANGED = "email_changed"
    SECOND_FACTOR_ADDED = "second_factor_added"
    SECOND_FACTOR_REMOVED = "second_factor_removed"
    PASSKEY_ADDED = "passkey_added"
    ACCOUNT_DISABLED = "account_disabled"


#: The security notices, each of which the operator may turn off.
NOTICES = (
    MailKind.PASSWORD_CHANGED,
    MailKind.EMAIL_CHANGED,
    MailKind.SECOND_FACTOR_ADDED,
    MailKind.SECOND_FACTOR_REMOVED,
    MailKind.PASSKEY_ADDED,
    MailKind.ACCOUNT_DISABLED,
)
#: The template variable of a token mail's expiry, a POSIX timestamp (never shown).
EXPIRES = "_expires"
#: The mails that carry a link with a single-use token.
WITH_LINK = frozenset({MailKind.PASSWORD_RESET, MailKind.EMAIL_VERIFICATION})


@dataclass(frozen=True)
class Mail:
    """A mail to queue: its kind, recipient, locale and template variables (no secret)."""

    kind: MailKind
    to: str
    locale: str = ""
    user_id: uuid.UUID | None = None
    data: dict[str, Any] | None = None


def queue(
    db: DbSession, mail: Mail, sealed_token: str | None, now: datetime, domain: str
) -> MailRow:
    """Inserts ``mail``, due now, with its stable ``Message-ID`` (``<id@domain>``)."""
    mail_id = uuid.uuid4()
    row = MailRow(
        id=mail_id,
        kind=mail.kind.value,
        recipient=mail.to,
        user_id=mail.user_id,
        locale=mail.locale,
        data=json.dumps(mail.data or {}, sort_keys=True),
        sealed_token=sealed_token,
        message_id=f"<{mail_id.hex}@{domain}>",
        status=QUEUED,
        attempts=0,
        queued_at=now,
        next_attempt_at=now,
        last_error="",
        created_at=now,
        updated_at=now,
    )
    db.add(row)
    return row


def queued_to(db: DbSession, recipient: str, since: datetime) -> int:
    """How many mails were queued to ``recipient`` since ``since`` (for its throttle)."""
    count = db.scalar(
        select(func.count())
        .select_from(MailRow)
        .where(MailRow.recipient == recipient, MailRow.created_at > since)
    )
    return int(count or 0)


def claim(db: DbSession, now: datetime, lease: timedelta, limit: int) -> list[MailRow]:
    """Claims up to ``limit`` due mails for one attempt each: counts the attempt and
    pushes their next attempt to ``now + lease``. Rows claimed elsewhere meanwhile
    (a concurrent sender on SQLite) are left out."""
    due = db.scalars(
        select(MailRow)
        .where(MailRow.status == QUEUED, MailRow.next_attempt_at <= now)
        .order_by(MailRow.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    claimed = []
    for row in due:
        result = db.execute(
            update(MailRow)
            .where(MailRow.id == row.id, MailRow.next_attempt_at == row.next_attempt_at)
            .where(MailRow.status == QUEUED)
            .values(next_attempt_at=now + lease, attempts=row.attempts + 1, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount:  # type: ignore[attr-defined]
            db.refresh(row)
            claimed.append(row)
    return claimed


def mark_sent(db: DbSession, mail_id: uuid.UUID, now: datetime) -> None:
    """The SMTP server took the mail: done, and its token is forgotten."""
    _set(db, mail_id, now, status=SENT, sent_at=now, sealed_token=None, last_error="")


def mark_failed(db: DbSession, mail_id: uuid.UUID, now: datetime, error: str) -> None:
    """Given up (a 5xx, or retried too long): kept for ``authsvc mail list``, its token
    forgotten."""
    _set(db, mail_id, now, status=FAILED, sealed_token=None, last_error=error[:ERROR_MAX])


def retry_at(db: DbSession, mail_id: uuid.UUID, now: datetime, when: datetime, error: str) -> None:
    """A temporary failure: the mail is due again at ``when``."""
    _set(db, mail_id, now, next_attempt_at=when, last_error=error[:ERROR_MAX])


def _set(db: DbSession, mail_id: uuid.UUID, now: datetime, **values: Any) -> None:
    db.execute(
        update(MailRow)
        .where(MailRow.id == mail_id)
        .values(updated_at=now, **values)
        .execution_options(synchronize_session=False)
    )


def listing(db: DbSession, status: str | None, limit: int) -> Sequence[MailRow]:
    """The newest mails (of one status, if given), newest first."""
    statement = select(MailRow).order_by(MailRow.created_at.desc(), MailRow.id).limit(limit)
    if status is not None:
        statement = statement.where(MailRow.status == status)
    return db.scalars(statement).all()


def requeue(db: DbSession, ids: Sequence[uuid.UUID], now: datetime) -> int:
    """Makes failed or queued mails due now, with a fresh retry window (``authsvc mail
    retry``); a failed token mail whose token was forgotten cannot come back. Returns
    how many were re-queued."""
    result = db.execute(
        update(MailRow)
        .where(MailRow.id.in_(ids), MailRow.status.in_((QUEUED, FAILED)))
        .where((MailRow.sealed_token.is_not(None)) | (MailRow.kind.not_in(list(WITH_LINK))))
        .values(status=QUEUED, queued_at=now, next_attempt_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def failed_ids(db: DbSession) -> list[uuid.UUID]:
    """The ids of every failed mail."""
    return list(db.scalars(select(MailRow.id).where(MailRow.status == FAILED)))
