"""The audited change: how every flow writes.

A flow states what happened once, in the vocabulary of ``AuditEvent``::

    with self.changes.open() as change:
        session = sessions.revoke(change.db, token)
        change.revoked(session.id)
        change.audit(AuditEvent.SIGNED_OUT, Who(session.user_id, session.id))

and ``Changes`` does the rest: one transaction; the audit rows in it; the notices to
other replicas' validation caches queued in it (delivered only if it commits); this
replica's cache invalidated when it ends; and, once it has committed, one security log
line per audited event. A flow that must keep a change and still fail the call (a
revocation on token reuse, the audit row of a throttled attempt) leaves the block
normally, then raises.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session as DbSession

from authsvc.rules import audit, revocations
from authsvc.rules.audit import AuditEvent
from authsvc.rules.revocations import Revoked
from authsvc.storage.engine import Database
from authsvc.storage.invalidation import Invalidations, publish
from authsvc.storage.revocation_feed import notify_revoked
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
    _revoked_sessions: set[uuid.UUID] = field(default_factory=set)
    _revoked_users: set[uuid.UUID] = field(default_factory=set)
    _events: list[tuple[AuditEvent, Who, dict[str, str]]] = field(default_factory=list)

    def ended(self, *session_ids: uuid.UUID | str) -> None:
        """Sessions revoked (or whose session token was replaced): caches forget them."""
        self.invalidations.session(*session_ids)

    def changed_user(self, user_id: uuid.UUID | str) -> None:
        """A user changed or deleted: caches forget all of its sessions."""
        self.invalidations.user(user_id)

    def revoked(self, *session_ids: uuid.UUID) -> None:
        """Sessions revoked: caches forget them, and the revocation feed carries them
        (their access tokens are refused by verifiers). A refresh, which only replaces
        a session's tokens, is ``ended``, not this."""
        self.ended(*session_ids)
        self._revoked_sessions.update(session_ids)

    def revoked_user(self, user_id: uuid.UUID) -> None:
        """Every access token of the user issued until now is revoked (disable, delete,
        new password, sign out everywhere); caches forget the user's sessions."""
        self.changed_user(user_id)
        self._revoked_users.add(user_id)

    def revocations(self) -> Revoked:
        """What this change revoked, for the feed."""
        return Revoked(frozenset(self._revoked_sessions), frozenset(self._revoked_users))

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

    def __init__(
        self,
        database: Database,
        cache: ValidationCache[Any],
        clock: Clock,
        access_token_ttl: timedelta = timedelta(minutes=5),
        on_revoked: Callable[[], None] = lambda: None,
    ) -> None:
        self.database = database
        self.clock = clock
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
        try:
            with self.database.transaction() as db:
                change = Change(db, self.clock())
                yield change
                publish(db, change.invalidations)
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

    def record(self, event: AuditEvent, who: Who = NOBODY, detail: str = "", **log: str) -> None:
        """Audits an event that changes nothing else, in its own transaction."""
        with self.open() as change:
            change.audit(event, who, detail, **log)
