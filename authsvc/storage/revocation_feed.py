"""The replica's view of the revocation feed: one reader of the table for every watcher.

A ``RevocationFeed`` thread reads the new entries (``position > last``) and keeps every
unexpired one in memory; each WatchRevocations stream then answers from memory and
waits on the feed, so a thousand watchers cost one query per change, not a thousand.
It reads when woken and at least every ``poll_interval``:

- PostgreSQL: woken by ``NOTIFY authsvc_revocations``, which ``notify_revoked`` queues
  in the revoking transaction (delivered when it commits), on one ``LISTEN``
  connection per replica; the poll is only a safety net (and proves the database
  answers).
- SQLite (no notifications): woken in-process by ``wake`` after a revoking commit of
  this process, and polling every ``poll_interval`` for other processes' (a
  multi-process SQLite server, ``authsvc`` commands).

``fresh`` tells whether the last read succeeded recently: watchers send heartbeats
only then, so verifiers fed by a replica that lost its database fail closed.
"""

from __future__ import annotations

import bisect
import logging
import os
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import psycopg2
import psycopg2.extensions
from sqlalchemy import text
from sqlalchemy.orm import Session as DbSession

from authsvc.storage.engine import Database, psycopg2_connect_args
from authsvc.storage.models import Revocation

log = logging.getLogger(__name__)

CHANNEL = "authsvc_revocations"
_NOTIFY = text(f"SELECT pg_notify('{CHANNEL}', '')")
#: The poll while the LISTEN connection is down (PostgreSQL).
UNLISTENED_POLL = 0.05
Clock = Callable[[], datetime]


def notify_revoked(db: DbSession) -> None:
    """Queues the feed's wake-up in ``db``'s transaction (PostgreSQL; sent on commit)."""
    if db.get_bind().dialect.name == "postgresql":
        db.execute(_NOTIFY)


@dataclass(frozen=True, slots=True)
class Entry:
    """One revocation as watchers send it (ids as canonical text)."""

    position: int
    session_id: str | None
    user_id: str | None
    not_before: datetime
    expires_at: datetime


def _entry(row: Revocation) -> Entry:
    return Entry(
        row.position,
        str(row.session_id) if row.session_id else None,
        str(row.user_id) if row.user_id else None,
        row.not_before,
        row.expires_at,
    )


ReadAfter = Callable[[DbSession, int, datetime], list[Revocation]]
LastPosition = Callable[[DbSession], int]


class RevocationFeed:
    """Follows the revocations table in a daemon thread; watchers read and wait on it.

    It owns ``database`` (its own pool, disposed of at ``stop``).
    """

    def __init__(
        self,
        database: Database,
        database_url: str,
        clock: Clock,
        reader: tuple[ReadAfter, LastPosition],
        poll_interval: float,
    ) -> None:
        self._database = database
        self._clock = clock
        self._read_after, self._last_position = reader
        self._listen = database_url.startswith("postgresql")
        self._args = psycopg2_connect_args(database_url) if self._listen else {}
        self._poll = poll_interval
        self._positions: list[int] = []
        self._entries: list[Entry] = []
        self._last = 0
        self._read_at: float | None = None  # monotonic time of the last successful read
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        self.ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="authsvc-revocations", daemon=True)

    def start(self) -> None:
        """Starts following the table (the first read loads every unexpired entry)."""
        self._thread.start()

    def stop(self) -> None:
        """Stops the thread, and wakes every watcher (they end)."""
        if self._stop.is_set():
            return
        self._stop.set()
        os.write(self._wake_w, b"x")
        with self._changed:
            self._changed.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        if not self._thread.is_alive():
            os.close(self._wake_r)
            os.close(self._wake_w)
            self._database.dispose()

    def wake(self) -> None:
        """Reads the table now: this process just committed a revocation."""
        if not self._stop.is_set():
            os.write(self._wake_w, b"w")

    @property
    def stopped(self) -> bool:
        """True once ``stop`` was called."""
        return self._stop.is_set()

    def fresh(self, within: float) -> bool:
        """True when the table was read successfully in the last ``within`` seconds."""
        read_at = self._read_at
        return read_at is not None and time.monotonic() - read_at <= within

    def after(self, position: int) -> tuple[list[Entry], int]:
        """The unexpired entries after ``position``, and the position read up to.

        Expiry is judged now, not at the last read: an entry that expired since is left out.
        """
        now = self._clock()
        with self._changed:
            start = bisect.bisect_right(self._positions, position)
            return [e for e in self._entries[start:] if e.expires_at > now], self._last

    def wait(self, position: int, timeout: float) -> None:
        """Waits until the feed has read beyond ``position``, ``timeout`` or stop."""
        with self._changed:
            if self._last <= position and not self._stop.is_set():
                self._changed.wait(timeout)

    # The thread

    def _run(self) -> None:
        conn: psycopg2.extensions.connection | None = None
        while not self._stop.is_set():
            if self._listen and conn is None:
                conn = self._connect()  # LISTEN before reading: no wake-up is missed
            self._read_quietly()
            conn = self._sleep(conn)
        if conn is not None:
            conn.close()

    def _connect(self) -> psycopg2.extensions.connection | None:
        try:
            conn: psycopg2.extensions.connection = psycopg2.connect(
                **self._args, application_name="authsvc-revocations"
            )
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f"LISTEN {CHANNEL}")
            return conn
        except psycopg2.Error as exc:
            log.warning("revocation listener cannot connect: %s", type(exc).__name__)
            return None

    def _sleep(
        self, conn: psycopg2.extensions.connection | None
    ) -> psycopg2.extensions.connection | None:
        """Waits for a notification, the poll interval or stop; returns the live link."""
        if conn is None:
            ready, _, _ = select.select(
                [self._wake_r], [], [], UNLISTENED_POLL if self._listen else self._poll
            )
            self._drain_wakes(ready)
            return None
        try:
            ready, _, _ = select.select([conn.fileno(), self._wake_r], [], [], self._poll)
            self._drain_wakes(ready)
            if conn.fileno() in ready:
                conn.poll()
                conn.notifies.clear()
            return conn
        except (psycopg2.Error, OSError, ValueError) as exc:
            log.warning("revocation listener lost its connection: %s", type(exc).__name__)
            conn.close()
            return None

    def _drain_wakes(self, ready: list[int]) -> None:
        if self._wake_r in ready and not self._stop.is_set():
            os.read(self._wake_r, 4096)

    def _read_quietly(self) -> None:
        try:
            self._read()
        except Exception as exc:  # the database is away: watchers stop their heartbeats
            log.warning("revocation feed cannot read: %s", type(exc).__name__)

    def _read(self) -> None:
        now = self._clock()
        with self._database.transaction(writes=False) as db:
            # The newest position first: every entry up to it has committed (positions
            # commit in order), so the next statement sees them all.
            newest = self._last_position(db)
            rows: list[Revocation] = []
            while self._last < newest:
                page = self._read_after(db, max(self._last, _last_of(rows)), now)
                page = [r for r in page if r.position <= newest]
                if not page:
                    break
                rows += page
        self._publish([_entry(r) for r in rows], newest, now)

    def _publish(self, new: list[Entry], newest: int, now: datetime) -> None:
        with self._changed:
            keep = [e for e in self._entries if e.expires_at > now] + new
            self._entries = keep
            self._positions = [e.position for e in keep]
            self._last = max(self._last, newest)
            self._read_at = time.monotonic()
            self.ready.set()
            self._changed.notify_all()


def _last_of(rows: list[Revocation]) -> int:
    return rows[-1].position if rows else 0
