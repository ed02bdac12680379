"""The audited change: how every flow writes.

A flow states what happened once, in the vocabulary of ``AuditEvent``::

    with self.changes.open() as change:
        session = sessions.revoke(change.db, token)
        change.revoked(session.user_id, [session.id], "sign_out")
        change.audit(AuditEvent.SIGNED_OUT, Who(session.user_id, session.id))

and ``Changes`` does the rest, in one transaction: the audit rows; the account events
(``change.event``, and the ``session.revoked`` that ``change.revoked`` writes), appended
under the events' commit-order lock (``storage.events``); the revocation-feed entries
that verifiers of access tokens follow (``change.revoked``, ``change.revoked_user``),
appended after the events under their own lock, so the two locks are always taken in one
order; the mail the change causes (``change.mail``, ``flows.mail_outbox``); and the
notices to other replicas' validation caches (delivered only if it commits). After it
ends: this replica's cache is invalidated, the revocation feed and the mail sender are
woken, and one security log line is written per audited event.

A flow that must keep a change and still fail the call (a revocation on token reuse, the
audit row of a throttled attempt) leaves the block normally, then raises.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session as DbSession

from authsvc.flows.mail_outbox import Outbox, PendingMail, shown, text_or_none
from authsvc.rules import audit, revocations
from authsvc.rules.audit import AuditEvent
from authsvc.rules.events import Actor, current_caller, event_row
from authsvc.rules.mail import EXPIRES, Mail, MailKind
from authsvc.rules.revocations import Revoked
from authsvc.storage import events
from authsvc.storage.engine import Database
from authsvc.storage.invalidation import Invalidations, publish
from authsvc.storage.models import EventRow, User
from authsvc.storage.read_model import UserView, view_of
from authsvc.storage.revocation_feed import notify_revoked
from authsvc.storage.validation_cache import ValidationCache

security_log = logging.getLogger("authsvc.security")

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Who:
    """Whom an event concerns, and where the end user was.

    ``ip_address`` is the end user's address as the edge established it (asserted by a
    caller trusted to, else the caller's own); ``claimed_ip`` an address an untrusted
    caller asserted, which the audit row's detail records and nothing else uses.
    """

    user_id: uuid.UUID | None = None
    session_id: uuid.UUID | None = None
    ip_address: str = ""
    user_agent: str = ""
    claimed_ip: str = ""


@dataclass(frozen=True)
class Origin:
    """Where the end user is: the address to throttle and audit by (may be empty), the
    user agent, and an address the caller claimed but may not assert (audited only)."""

    ip_address: str = ""
    user_agent: str = ""
    claimed_ip: str = ""

    def who(self, user_id: uuid.UUID | None = None, session_id: uuid.UUID | None = None) -> Who:
        """``Who`` for an event of ``user_id`` from here."""
        return Who(user_id, session_id, self.ip_address, self.user_agent, self.claimed_ip)


#: The ``Who`` of an event that concerns no user and no end user (an operator's API key
#: or webhook, a refused caller).
NO_USER = Who()


@dataclass
class Change:
    """One write transaction of a flow: what it ended or changed, and what it audits."""

    db: DbSession
    now: datetime
    outbox: Outbox = field(default_factory=Outbox)
    invalidations: Invalidations = field(default_factory=Invalidations)
    _revoked_sessions: set[uuid.UUID] = field(default_factory=set)
    _revoked_users: set[uuid.UUID] = field(default_factory=set)
    _events: list[tuple[AuditEvent, Who, dict[str, str]]] = field(default_factory=list)
    _event_rows: list[EventRow] = field(default_factory=list)
    _mails: list[PendingMail] = field(default_factory=list)

    def ended(self, *session_ids: uuid.UUID | str) -> None:
        """Sessions revoked (or whose session token was replaced): caches forget them."""
        self.invalidations.session(*session_ids)

    def changed_user(self, user_id: uuid.UUID | str) -> None:
        """A user changed or deleted: caches forget all of its sessions."""
        self.invalidations.user(user_id)

    def revoked_user(self, user_id: uuid.UUID) -> None:
        """Every access token of the user issued until now is revoked (disable, delete,
        new password, sign out everywhere); caches forget the user's sessions."""
        self.changed_user(user_id)
        self._revoked_users.add(user_id)

    def revocations(self) -> Revoked:
        """What this change revoked, for the feed."""
        return Revoked(frozenset(self._revoked_sessions), frozenset(self._revoked_users))

    def audit(self, event: AuditEvent, who: Who = NO_USER, detail: str = "", **log: str) -> None:
        """Records ``event`` in this transaction; its log line follows the commit.

        ``log`` adds fields to the log line only (ids and labels, never a secret).
        """
        audit.record(
            self.db,
            event,
            time=self.now,
            user_id=who.user_id,
            session_id=who.session_id,
            ip_address=who.ip_address,
            user_agent=who.user_agent,
            detail=_with_claim(detail, who.claimed_ip),
        )
        self._events.append((event, who, log))

    def event(
        self, type_name: str, who: Who = NO_USER, actor: Actor | None = None, /, **data: Any
    ) -> None:
        """Records the account event ``type_name`` about ``who``, committed with this change.

        ``actor`` is who made the change: ``Actor.user(...)`` when the user did it
        themself; by default, the caller of the current RPC (the system outside one).
        ``data`` must be exactly the type's declared fields (``rules.events``): never a
        secret or a hash. Raises ValueError otherwise.
        """
        row = event_row(
            type_name,
            time=self.now,
            actor=actor or current_caller(),
            user_id=who.user_id,
            session_id=who.session_id,
            data=data,
        )
        self._event_rows.append(row)

    def revoked(
        self,
        user_id: uuid.UUID,
        session_ids: Iterable[uuid.UUID],
        why: str,
        actor: Actor | None = None,
    ) -> None:
        """Sessions of ``user_id`` revoked (``why``): caches forget them, each gets its
        ``session.revoked`` event, and the revocation feed carries them (their access
        tokens are refused by verifiers). A refresh, which only replaces a session's
        tokens, is ``ended``, not this."""
        for session_id in session_ids:
            self.ended(session_id)
            self._revoked_sessions.add(session_id)
            self.event("session.revoked", Who(user_id, session_id), actor, why=why)

    def revoked_all(
        self,
        user_id: uuid.UUID,
        session_ids: Iterable[uuid.UUID],
        why: str,
        actor: Actor | None = None,
    ) -> None:
        """``revoked`` for the sessions ended, and ``revoked_user``: every access token
        of the user issued until now is refused too (disable, delete, a new password,
        sign out everywhere)."""
        self.revoked(user_id, session_ids, why, actor)
        self.revoked_user(user_id)

    def append_events(self) -> None:
        """Appends the recorded events to the outbox (last: the lock lasts until commit)."""
        events.append(self.db, self._event_rows)

    def mail(
        self,
        kind: MailKind,
        to: User | UserView | str,
        who: Who = NO_USER,
        *,
        token: str | None = None,
        expires_at: datetime | None = None,
        address: str = "",
        **data: Any,
    ) -> bool:
        """Queues a mail of ``kind`` to the user (or to a bare address) with this change.

        ``token``: the raw single-use token of its link (stored sealed, rendered into
        the link at send time), valid until ``expires_at``. ``address``: another
        recipient than the user's email (the old address, after a change). ``data``:
        template variables beyond the common ones (never a secret). False, queueing
        nothing, when this kind is not sent (``caller`` mode, or a notice turned off).
        """
        if not self.outbox.sends(kind):
            return False
        user = {"email": to, "first_name": "", "last_name": "", "locale": ""}
        user_id = None
        if not isinstance(to, str):
            profile = to.profile if isinstance(to, UserView) else view_of(to).profile
            user = {k: profile[k] for k in user}
            user_id = to.id
        recipient = address or str(user["email"])
        variables: dict[str, Any] = {
            "email": recipient,
            "user": user,
            "time": shown(self.now),
            "ip_address": who.ip_address,
            "user_agent": who.user_agent,
            **data,
        }
        if expires_at is not None:
            variables |= {"expires_at": shown(expires_at), EXPIRES: expires_at.timestamp()}
        letter = Mail(kind, recipient, str(user["locale"]), user_id, variables)
        self._mails.append(PendingMail(letter, token))
        return True

    def mail_nothing(self, kind: MailKind, address: str) -> None:
        """Does what queueing a token mail of ``kind`` to ``address`` costs (its throttle
        count, sealing a token), queueing nothing: an answer that must not show whether
        an account exists does the same work either way."""
        if self.outbox.sends(kind):
            letter = Mail(kind, address)
            self._mails.append(PendingMail(letter, secrets.token_urlsafe(32), pretend=True))

    def notify(self, kind: MailKind, user_id: uuid.UUID, who: Who = NO_USER, **data: Any) -> None:
        """Queues the security notice ``kind`` to the user ``user_id``, if it is sent
        (the user is read only then)."""
        if self.outbox.sends(kind):
            user = self.db.get(User, user_id)
            if user is not None:
                self.mail(kind, user, who, **data)

    def write_mails(self) -> int:
        """Queues the mails of this change (right before it commits)."""
        return self.outbox.write(self.db, self.now, self._mails) if self._mails else 0

    def log_events(self) -> None:
        """Writes the security log line of each audited event (after the commit)."""
        for event, who, fields in self._events:
            extra: dict[str, Any] = {"event": event.log_name, "user_id": text_or_none(who.user_id)}
            if who.session_id is not None:
                extra["session_id"] = str(who.session_id)
            security_log.info("%s", event.log_name, extra={**extra, **fields})


def _with_claim(detail: str, claimed_ip: str) -> str:
    if not claimed_ip:
        return detail
    claim = f"claimed ip {claimed_ip}"
    return f"{detail}; {claim}" if detail else claim


class Changes:
    """Opens audited changes (and plain reads) on one database, for every flow."""

    def __init__(
        self,
        database: Database,
        cache: ValidationCache[Any],
        clock: Clock,
        access_token_ttl: timedelta = timedelta(minutes=5),
        on_revoked: Callable[[], None] = lambda: None,
        outbox: Outbox | None = None,
    ) -> None:
        self.database = database
        self.clock = clock
        self.outbox = outbox or Outbox()
        self._cache = cache
        #: Called after a change that revoked something committed (wakes this
        #: process's revocation feed at once).
        self._on_revoked = on_revoked
        #: How long a revocation matters: the longest an access token lives.
        self.access_token_ttl = access_token_ttl

    @contextmanager
    def open(self) -> Iterator[Change]:
        """A write transaction as a Change: committed when the block ends normally."""
        change: Change | None = None
        mailed = 0
        try:
            with self.database.transaction() as db:
                change = Change(db, self.clock(), self.outbox)
                yield change
                mailed = change.write_mails()
                publish(db, change.invalidations)
                change.append_events()
                self._append_revocations(change)
        finally:
            # Even after a rollback: forgetting too much only costs a lookup.
            if change is not None and change.invalidations:
                done = change.invalidations
                self._cache.invalidate(done.sessions, done.users)
        assert change is not None  # the block ran, and committed
        revoked = change.revocations()
        if revoked.sessions or revoked.users:
            self._on_revoked()
        if mailed:
            self.outbox.wake.set()
        change.log_events()

    def _append_revocations(self, change: Change) -> None:
        # Last before commit: the feed's append lock is held until then. ``not_before``
        # is read under it, not at the change's start, so a token that a concurrent
        # transaction issued before this one commits is covered too.
        revoked = change.revocations()
        if revoked.sessions or revoked.users:
            revocations.append(change.db, revoked, self.clock, self.access_token_ttl)
            notify_revoked(change.db)

    @contextmanager
    def read(self) -> Iterator[DbSession]:
        """A read-only transaction."""
        with self.database.transaction(writes=False) as db:
            yield db

    def record(self, event: AuditEvent, who: Who = NO_USER, detail: str = "", **log: str) -> None:
        """Audits an event that changes nothing else, in its own transaction."""
        with self.open() as change:
            change.audit(event, who, detail, **log)
