"""The mail a change causes, queued in the change's own transaction (the outbox).

A flow says ``change.mail(MailKind.PASSWORD_CHANGED, user, who)``; the audited change
(``flows.changes``) hands its mails to ``Outbox.write`` right before it commits, so a
mail is queued exactly when its change commits, and the background sender
(``flows.mail_delivery``) is woken once it has. With ``AUTHSVC_MAIL_DELIVERY=caller``
the outbox is off and ``change.mail`` does nothing.

Each recipient gets at most ``recipient_limit`` mails per ``recipient_window``: beyond
that a mail is dropped (and logged), so no stranger can mail-bomb an address through
StartPasswordReset, and the outbox cannot grow without bound.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session as DbSession

from authsvc.rules import mail
from authsvc.rules.mail import NOTICES, Mail, MailKind
from authsvc.rules.secrets_at_rest import SecretKeys

log = logging.getLogger("authsvc.mail")

TIME_FORMAT = "%Y-%m-%d %H:%M UTC"


def shown(time: datetime) -> str:
    """A time as mail templates show it (``2026-12-04 18:40 UTC``)."""
    return time.strftime(TIME_FORMAT)


@dataclass(frozen=True)
class MailPolicy:
    """What authsvc mails (all off in ``caller`` mode)."""

    enabled: bool = False
    notices: frozenset[MailKind] = frozenset(NOTICES)
    no_account_mail: bool = False
    verify_on_sign_up: bool = False
    sign_up_enumeration_safe: bool = False
    recipient_limit: int = 10
    recipient_window: timedelta = timedelta(hours=1)
    #: The domain of the Message-IDs (that of AUTHSVC_MAIL_FROM).
    domain: str = "authsvc.invalid"


@dataclass(frozen=True)
class PendingMail:
    """A mail of a change, until the change writes it: the mail, and its raw token."""

    mail: Mail
    token: str | None = field(default=None, repr=False)
    #: Only the work of queueing it, not the mail (a uniform answer's same work).
    pretend: bool = False


class Outbox:
    """Queues the mails of a change; wakes the sender after the commit."""

    def __init__(
        self,
        policy: MailPolicy | None = None,
        keys: SecretKeys | None = None,
        wake: threading.Event | None = None,
    ) -> None:
        self.policy = policy or MailPolicy()
        self._keys = keys or SecretKeys(())
        self.wake = wake or threading.Event()

    @property
    def enabled(self) -> bool:
        """True when authsvc sends mail itself (``smtp`` mode): tokens never leave it."""
        return self.policy.enabled

    def sends(self, kind: MailKind) -> bool:
        """True when mails of ``kind`` are sent (the mode, and the notice switches)."""
        return self.enabled and (kind not in NOTICES or kind in self.policy.notices)

    def write(self, db: DbSession, now: datetime, pending: list[PendingMail]) -> int:
        """Queues ``pending`` in the change's transaction; returns how many were queued
        (each recipient's throttle may drop some)."""
        queued = 0
        since = now - self.policy.recipient_window
        for item in pending:
            if mail.queued_to(db, item.mail.to, since) >= self.policy.recipient_limit:
                if item.pretend:
                    continue
                log.warning(
                    "mail not queued: its recipient got %d mails within %s already",
                    self.policy.recipient_limit,
                    self.policy.recipient_window,
                    extra={
                        "kind": item.mail.kind.value,
                        "user_id": text_or_none(item.mail.user_id),
                    },
                )
                continue
            sealed = self._keys.seal(item.token) if item.token is not None else None
            if item.pretend:
                continue
            mail.queue(db, item.mail, sealed, now, self.policy.domain)
            queued += 1
        return queued


def text_or_none(value: Any) -> str | None:
    """``value`` as text for a log field (an id), None as None."""
    return None if value is None else str(value)
