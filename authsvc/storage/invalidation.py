"""Telling every replica's validation cache about revocations and user changes.

The replica that revokes invalidates its own cache at once (``Invalidations`` →
``ValidationCache.invalidate`` after commit). The others learn it from PostgreSQL:
``publish`` runs ``pg_notify`` inside the revoking transaction, so the notice is
delivered exactly when (and only if) the revocation commits, and each replica's
``storage.notifications.Listener`` receives it on its ``LISTEN`` connection within
milliseconds (``subscribe``).

If that connection drops, notices sent meanwhile are lost, so the cache is suspended
(flushed and bypassed) until the listener is listening again.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session as DbSession

from authsvc.storage.notifications import Listener, Subscription
from authsvc.storage.validation_cache import ValidationCache

log = logging.getLogger(__name__)

CHANNEL = "authsvc_invalidate"
_NOTIFY = text("SELECT pg_notify(:channel, :payload)")
_MAX_PAYLOAD = 7000  # PostgreSQL's limit is 8000 bytes


@dataclass
class Invalidations:
    """The sessions ended and users changed by one flow (canonical UUID text)."""

    sessions: set[str] = field(default_factory=set)
    users: set[str] = field(default_factory=set)

    def session(self, *session_ids: uuid.UUID | str) -> None:
        """Records ended (or rotated) sessions."""
        self.sessions.update(str(s) for s in session_ids)

    def user(self, user_id: uuid.UUID | str) -> None:
        """Records a changed or deleted user (all its cached sessions are forgotten)."""
        self.users.add(str(user_id))

    def __bool__(self) -> bool:
        return bool(self.sessions or self.users)

    def payloads(self) -> Iterator[str]:
        """The changes as ``s:<id> u:<id> ...`` notice payloads, each within the limit."""
        words = [f"s:{s}" for s in sorted(self.sessions)] + [f"u:{u}" for u in sorted(self.users)]
        per_notice = _MAX_PAYLOAD // len("s:00000000-0000-0000-0000-000000000000 ")
        for start in range(0, len(words), per_notice):
            yield " ".join(words[start : start + per_notice])

    @classmethod
    def parse(cls, payload: str) -> Invalidations:
        """The changes in a notice payload; unknown words are ignored."""
        changes = cls()
        for word in payload.split():
            kind, _, value = word.partition(":")
            if kind == "s":
                changes.sessions.add(value)
            elif kind == "u":
                changes.users.add(value)
        return changes


def publish(db: DbSession, changes: Invalidations) -> None:
    """Queues the notices for ``changes`` in ``db``'s transaction (PostgreSQL only).

    PostgreSQL delivers them when the transaction commits, and drops them on rollback.
    """
    if not changes or db.get_bind().dialect.name != "postgresql":
        return
    for payload in changes.payloads():
        db.execute(_NOTIFY, {"channel": CHANNEL, "payload": payload})


def subscribe(listener: Listener, cache: ValidationCache[Any]) -> None:
    """Keeps ``cache`` in step with other replicas' changes, heard on ``listener``.

    The cache is used only while the listener listens: it is suspended now, resumed
    (empty) once ``LISTEN`` is in place, and suspended again whenever the connection fails.
    """
    cache.suspend()
    listener.subscribe(
        Subscription(
            CHANNEL,
            notified=lambda payloads: _apply(cache, payloads),
            listening=lambda: _resume(cache),
            # Without the listener, revocations elsewhere would go unseen: bypass the cache.
            deaf=cache.suspend,
        )
    )


def _resume(cache: ValidationCache[Any]) -> None:
    # Anything may have been revoked while we were not listening: start empty.
    cache.resume()
    log.info("invalidation listener connected; validation cache on")


def _apply(cache: ValidationCache[Any], payloads: Sequence[str]) -> None:
    for payload in payloads:
        changes = Invalidations.parse(payload)
        cache.invalidate(changes.sessions, changes.users)
