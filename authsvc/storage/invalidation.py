"""Telling every replica's validation cache about revocations and user changes.

The replica that revokes invalidates its own cache at once (``Invalidations`` →
``ValidationCache.invalidate`` after commit). The others learn it from PostgreSQL:
``publish`` runs ``pg_notify`` inside the revoking transaction, so the notice is
delivered exactly when (and only if) the revocation commits, and each replica's
``Listener`` receives it on a dedicated ``LISTEN`` connection within milliseconds.

If that connection drops, notices sent meanwhile are lost, so the listener suspends
(flushes and bypasses) the cache until it is listening again.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg2
import psycopg2.extensions
from sqlalchemy import text
from sqlalchemy.orm import Session as DbSession

from authsvc.storage.engine import psycopg2_connect_args
from authsvc.storage.validation_cache import ValidationCache

log = logging.getLogger(__name__)

CHANNEL = "authsvc_invalidate"
_NOTIFY = text("SELECT pg_notify(:channel, :payload)")
_MAX_PAYLOAD = 7000  # PostgreSQL's limit is 8000 bytes
# Waits between reconnection attempts of the listener, then the last one repeats.
RECONNECT_DELAYS = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0)


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


class Listener:
    """LISTENs for changes in a background thread and applies them to ``cache``.

    The cache is used only while the listener is connected: it starts suspended, is
    resumed (empty) once ``LISTEN`` is in place, and suspended again on any failure.
    """

    def __init__(self, database_url: str, cache: ValidationCache[Any]) -> None:
        self._args = psycopg2_connect_args(database_url)
        self._args.update(
            application_name="authsvc-listener",
            # Notice a silently dead link in seconds rather than hours.
            keepalives=1,
            keepalives_idle=5,
            keepalives_interval=2,
            keepalives_count=3,
        )
        self._cache = cache
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()  # wakes the select() at stop
        self.listening = threading.Event()
        self.backend_pid: int | None = None
        self.drops = 0
        self._thread = threading.Thread(target=self._run, name="authsvc-listener", daemon=True)
        cache.suspend()

    def start(self) -> None:
        """Starts listening in a daemon thread (connecting in the background)."""
        self._thread.start()

    def stop(self) -> None:
        """Stops the thread and closes its connection."""
        if self._stop.is_set():
            return
        self._stop.set()
        os.write(self._wake_w, b"x")
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        if not self._thread.is_alive():  # else the (daemon) thread may still select on them
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            try:
                conn = self._connect()
            except psycopg2.Error as exc:
                log.warning("invalidation listener cannot connect: %s", type(exc).__name__)
            else:
                attempt = 0
                self._listen(conn)
            delay = RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)]
            attempt += 1
            self._stop.wait(delay)

    def _connect(self) -> psycopg2.extensions.connection:
        conn: psycopg2.extensions.connection = psycopg2.connect(**self._args)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f"LISTEN {CHANNEL}")
        return conn

    def _listen(self, conn: psycopg2.extensions.connection) -> None:
        # Anything may have been revoked while we were not listening: start empty.
        self._cache.resume()
        self.backend_pid = conn.get_backend_pid()
        self.listening.set()
        log.info("invalidation listener connected; validation cache on")
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([conn.fileno(), self._wake_r], [], [])
                if self._wake_r not in ready:
                    self._drain(conn)
        except (psycopg2.Error, OSError, ValueError) as exc:
            log.warning("invalidation listener lost its connection: %s", type(exc).__name__)
        finally:
            # Without the listener, revocations elsewhere would go unseen: bypass the cache.
            self.listening.clear()
            self._cache.suspend()
            conn.close()
            if not self._stop.is_set():
                self.drops += 1

    def _drain(self, conn: psycopg2.extensions.connection) -> None:
        conn.poll()
        while conn.notifies:
            notice = conn.notifies.pop(0)
            changes = Invalidations.parse(notice.payload)
            self._cache.invalidate(changes.sessions, changes.users)
