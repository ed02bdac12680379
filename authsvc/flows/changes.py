"""The audited change: how every flow writes.

A flow states what happened once, in the vocabulary of ``AuditEvent``::

    with self.changes.open() as change:
        session = sessions.revoke(change.db, token)
        change.ended(session.id)
        change.audit(AuditEvent.SIGNED_OUT, Who(session.user_id, session.id))

An account event (the outbox that WatchEvents and webhooks read) is stated the same way,
``change.event("session.revoked", who, why="sign_out")``, and ``Changes`` does the rest:
one transaction; the audit rows and the account events in it (the events appended last,
under the commit-order lock; see ``storage.events``); the notices to
other replicas' validation caches queued in it (delivered only if it commits); this
replica's cache invalidated when it ends; and, once it has committed, one security log
line per audited event. A flow that must keep a change and still fail the call (a
revocation on token reuse, the audit row of a throttled attempt) leaves the block
normally, then raises.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session as DbSession

from authsvc.rules import audit
from authsvc.rules.audit import AuditEvent
from authsvc.rules.events import Actor, current_caller, event_row
from authsvc.storage import events
from authsvc.storage.engine import Database
from authsvc.storage.invalidation import Invalidations, publish
from authsvc.storage.models import EventRow
from authsvc.storage.validation_cache import ValidationCache

security_log = logging.getLogger("authsvc.security")

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Who:
    """Whom an event concerns, and where the end user was (as the caller sent it)."""

    user_id: uuid.UUID | None = None
    session_id: uuid.UUID | None = None
    ip_address: str = ""
    user_agent: str = ""


NOBODY = Who()


@dataclass
class Change:
    """One write transaction of a flow: what it ended or changed, and what it audits."""

    db: DbSession
    now: datetime
    invalidations: Invalidations = field(default_factory=Invalidations)
    _events: list[tuple[AuditEvent, Who, dict[str, str]]] = field(default_factory=list)
    _outbox: list[EventRow] = field(default_factory=list)

    def ended(self, *session_ids: uuid.UUID | str) -> None:
        """Sessions revoked (or whose session token was replaced): caches forget them."""
        self.invalidations.session(*session_ids)

    def changed_user(self, user_id: uuid.UUID | str) -> None:
        """A user changed or deleted: caches forget all of its sessions."""
        self.invalidations.user(user_id)

    def audit(self, event: AuditEvent, who: Who = NOBODY, detail: str = "", **log: str) -> None:
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
            detail=detail,
        )
        self._events.append((event, who, log))

    def event(
        self, type_name: str, who: Who = NOBODY, actor: Actor | None = None, /, **data: Any
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
        self._outbox.append(row)

    def revoked(
        self,
        user_id: uuid.UUID,
        session_ids: Iterable[uuid.UUID],
        why: str,
        actor: Actor | None = None,
    ) -> None:
        """Sessions of ``user_id`` revoked (``why``): caches forget them, and each gets its
        ``session.revoked`` event."""
        for session_id in session_ids:
            self.ended(session_id)
            self.event("session.revoked", Who(user_id, session_id), actor, why=why)

    def append_events(self) -> None:
        """Appends the recorded events to the outbox (last: the lock lasts until commit)."""
        events.append(self.db, self._outbox)

    def log_events(self) -> None:
        """Writes the security log line of each audited event (after the commit)."""
        for event, who, fields in self._events:
            extra: dict[str, Any] = {"event": event.log_name, "user_id": _text(who.user_id)}
            if who.session_id is not None:
                extra["session_id"] = str(who.session_id)
            security_log.info("%s", event.log_name, extra={**extra, **fields})


def _text(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


class Changes:
    """Opens audited changes (and plain reads) on one database, for every flow."""

    def __init__(self, database: Database, cache: ValidationCache[Any], clock: Clock) -> None:
        self.database = database
        self.clock = clock
        self._cache = cache

    @contextmanager
    def open(self) -> Iterator[Change]:
        """A write transaction as a Change: committed when the block ends normally."""
        change: Change | None = None
        try:
            with self.database.transaction() as db:
                change = Change(db, self.clock())
                yield change
                publish(db, change.invalidations)
                change.append_events()
        finally:
            # Even after a rollback: forgetting too much only costs a lookup.
            if change is not None and change.invalidations:
                done = change.invalidations
                self._cache.invalidate(done.sessions, done.users)
        assert change is not None  # the block ran, and committed
        change.log_events()

    @contextmanager
    def read(self) -> Iterator[DbSession]:
        """A read-only transaction."""
        with self.database.transaction(writes=False) as db:
            yield db

    def record(self, event: AuditEvent, who: Who = NOBODY, detail: str = "", **log: str) -> None:
        """Audits an event that changes nothing else, in its own transaction."""
        with self.open() as change:
            change.audit(event, who, detail, **log)
