"""Delivering the outbox: claim due mails, render them, hand them to the SMTP server.

Runs on a background thread (``runtime.mail_sender``), never on an RPC's. Each attempt
is claimed (and counted) in its own transaction before the SMTP conversation, so a
process killed mid-send leaves the mail due again after the claim's lease: delivered
at least once, every attempt with the same ``Message-ID``. A temporary failure (an
SMTP 4xx, a connection or TLS error, a refused login) is retried with exponential
backoff (the first after ``first_retry``) for ``retry_for`` since the mail was queued;
a permanent one (an SMTP 5xx) fails the mail at once. A mail whose link expired before
it could be sent fails too: a dead link helps no one.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any, Protocol
from urllib.parse import quote

from authsvc.errors import MfaNotConfigured
from authsvc.flows.changes import Changes
from authsvc.rules import mail
from authsvc.rules.mail import EXPIRES, MailKind
from authsvc.rules.mail_templates import MailTemplates
from authsvc.rules.secrets_at_rest import SecretKeys
from authsvc.setting_names import AUTHSVC_SECRET_KEY
from authsvc.storage.models import MailRow

log = logging.getLogger("authsvc.mail")


class MailDeferred(Exception):
    """The mail could not be sent now (SMTP 4xx, connection, TLS, login): retry later."""


class MailRefused(Exception):
    """The SMTP server refused the mail for good (SMTP 5xx)."""


#: Hands one message to the SMTP server; raises MailDeferred or MailRefused.
Send = Callable[[EmailMessage], None]


class Transport(Protocol):
    """Opens one SMTP connection for a batch of mails."""

    def connect(self) -> AbstractContextManager[Send]:
        """A connection's Send; entering raises MailDeferred when the server cannot be
        reached, spoken to securely or logged in to."""
        ...


@dataclass(frozen=True)
class MailDeliveryPolicy:
    """How mails are addressed, linked and retried."""

    sender: str
    #: The link of each token mail, with ``{token}`` where the token goes.
    links: dict[MailKind, str] = field(default_factory=dict)
    #: How long a claimed attempt may take before the mail is due again elsewhere.
    lease: timedelta = timedelta(minutes=2)
    retry_for: timedelta = timedelta(hours=48)
    first_retry: timedelta = timedelta(seconds=5)
    max_backoff: timedelta = timedelta(hours=1)
    batch: int = 20

    def backoff(self, attempts: int) -> timedelta:
        """The wait after the ``attempts``-th failed attempt: 5 s, 10 s, 20 s, … 1 h."""
        doubled: timedelta = self.first_retry * 2 ** min(attempts - 1, 20)
        return min(doubled, self.max_backoff)


@dataclass(frozen=True)
class Outcome:
    """What the sender did in one round."""

    sent: int = 0
    deferred: int = 0
    failed: int = 0

    @property
    def attempts(self) -> int:
        """Mails attempted."""
        return self.sent + self.deferred + self.failed


class MailDelivery:
    """Sends due mails; lists and re-queues them for ``authsvc mail``."""

    def __init__(
        self,
        changes: Changes,
        templates: MailTemplates,
        keys: SecretKeys,
        transport: Transport | None,
        policy: MailDeliveryPolicy,
    ) -> None:
        self._changes = changes
        self._templates = templates
        self._keys = keys
        self._transport = transport
        self.policy = policy

    @property
    def wake_event(self) -> threading.Event:
        """Set when mail was queued (or re-queued) in this process."""
        return self._changes.outbox.wake

    def deliver_due(self) -> Outcome:
        """Claims a batch of due mails, attempts each once over one connection, and
        records the outcomes in one transaction."""
        with self._changes.open() as change:
            claimed = mail.claim(change.db, change.now, self.policy.lease, self.policy.batch)
        if not claimed:
            return Outcome()
        assert self._transport is not None, "sending needs a transport"
        results: list[_Result] = []
        try:
            with self._transport.connect() as send:
                results += [self._attempt(row, send) for row in claimed]
        except MailDeferred as exc:  # no connection: every mail of the batch waits
            results += [self._deferred(row, str(exc)) for row in claimed[len(results) :]]
        self._record(results)
        statuses = [r.status for r in results]
        return Outcome(statuses.count(SENT), statuses.count(DEFERRED), statuses.count(FAILED))

    def _attempt(self, row: MailRow, send: Send) -> _Result:
        try:
            send(self.compose(row))
        except MailDeferred as exc:
            return self._deferred(row, str(exc))
        except (MailRefused, _Undeliverable) as exc:
            return _Result(row, FAILED, str(exc))
        return _Result(row, SENT)

    def compose(self, row: MailRow) -> EmailMessage:
        """The message of ``row``, its link made from the unsealed token.

        Raises _Undeliverable when its token expired or cannot be unsealed.
        """
        variables: dict[str, Any] = json.loads(row.data)
        expires = variables.pop(EXPIRES, None)
        kind = MailKind(row.kind)
        if kind in mail.WITH_LINK:
            now = self._changes.clock()
            if expires is not None and datetime.fromtimestamp(expires, UTC) <= now:
                raise _Undeliverable("the link expired before the mail could be sent")
            variables["link"] = self._link(kind, row.sealed_token)
        rendered = self._templates.render(kind, row.locale, variables)
        message = EmailMessage()
        message["From"] = self.policy.sender
        message["To"] = row.recipient
        message["Subject"] = rendered.subject
        message["Message-ID"] = row.message_id
        message["Date"] = format_datetime(self._changes.clock())
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(rendered.text)
        message.add_alternative(rendered.html, subtype="html")
        return message

    def _link(self, kind: MailKind, sealed: str | None) -> str:
        if sealed is None:
            raise _Undeliverable("its token is gone (the mail failed or was sent before)")
        try:
            token = self._keys.unseal(sealed)
        except MfaNotConfigured:
            raise _Undeliverable(f"no configured {AUTHSVC_SECRET_KEY} opens its token") from None
        return self.policy.links[kind].replace("{token}", quote(token, safe=""))

    def _deferred(self, row: MailRow, error: str) -> _Result:
        when = self._changes.clock() + self.policy.backoff(row.attempts)
        if when - row.queued_at > self.policy.retry_for:
            return _Result(row, FAILED, f"gave up after {row.attempts} attempts: {error}")
        return _Result(row, DEFERRED, error, when)

    def _record(self, results: list[_Result]) -> None:
        # Sent but not recorded (the process dies first): sent again after the lease.
        with self._changes.open() as change:
            for r in results:
                if r.status == SENT:
                    mail.mark_sent(change.db, r.row.id, change.now)
                elif r.status == FAILED:
                    mail.mark_failed(change.db, r.row.id, change.now, r.error)
                else:
                    assert r.retry_at is not None
                    mail.retry_at(change.db, r.row.id, change.now, r.retry_at, r.error)
        for r in results:
            extra = {"mail_id": str(r.row.id), "kind": r.row.kind, "attempt": r.row.attempts}
            if r.status == SENT:
                log.info("mail sent", extra=extra)
            elif r.status == FAILED:
                log.warning("mail failed: %s", r.error, extra=extra)
            else:
                log.info("mail deferred: %s", r.error, extra=extra)

    def listing(self, status: str | None = None, limit: int = 100) -> Sequence[MailRow]:
        """The newest mails (of one status), newest first."""
        with self._changes.read() as db:
            return mail.listing(db, status, limit)

    def retry(self, ids: Sequence[uuid.UUID] = (), *, every_failed: bool = False) -> int:
        """Makes the given (or every failed) mail due now; returns how many."""
        with self._changes.open() as change:
            wanted = mail.failed_ids(change.db) if every_failed else list(ids)
            count = mail.requeue(change.db, wanted, change.now) if wanted else 0
        if count:
            self._changes.outbox.wake.set()
        return count


SENT, DEFERRED, FAILED = "sent", "deferred", "failed"


@dataclass(frozen=True)
class _Result:
    """The outcome of one attempt, recorded with the others of its batch."""

    row: MailRow
    status: str
    error: str = ""
    retry_at: datetime | None = None


class _Undeliverable(Exception):
    """The mail cannot be composed any more (expired link, unopenable token)."""
