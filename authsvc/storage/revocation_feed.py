"""The replica's view of the revocation feed: one reader of the table for every watcher.

A ``RevocationFeed`` thread reads the new entries (``position > last``) and keeps every
unexpired one in memory; each WatchRevocations stream then answers from memory and
waits on the feed, so a thousand watchers cost one query per change, not a thousand.
It reads when woken and at least every ``poll_interval``:

- PostgreSQL: woken by ``NOTIFY authsvc_revocations``, which ``notify_revoked`` queues
  in the revoking transaction (delivered when it commits), heard on the replica's one
  ``LISTEN`` connection (``storage.notifications``); the poll is only a safety net (and
  proves the database answers). While that connection is down the feed polls every
  ``UNLISTENED_POLL``, and it reads again as soon as the listener listens again.
- SQLite (no notifications): woken in-process by ``wake`` after a revoking commit of
  this process, and polling every ``poll_interval`` for other processes' (a
  multi-process SQLite server, ``authsvc`` commands).

``fresh`` tells whether the last read succeeded recently: watchers send heartbeats
only then, so verifiers fed by a replica that lost its database fail closed.
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session as DbSession

from authsvc.storage.engine import Database
from authsvc.storage.models import Revocation
from authsvc.storage.notifications import Listener, Subscription

log = logging.getLogger(__name__)

CHANNEL = "authsvc_revocations"
_NOTIFY = text(f"SELECT pg_notify('{CHANNEL}', '')")
#: The poll while the listener is not listening (PostgreSQL).
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

    It owns ``database`` (its own pool, disposed of at ``stop``). ``listener``: the
    replica's (PostgreSQL), None where nothing notifies (SQLite).
    """

    def __init__(
        self,
        database: Database,
        clock: Clock,
        reader: tuple[ReadAfter, LastPosition],
        poll_interval: float,
        listener: Listener | None,
    ) -> None:
        self._database = database
        self._clock = clock
        self._read_after, self._last_position = reader
        self._poll = poll_interval
        self._listening = listener.listening if listener else None
        self._positions: list[int] = []
        self._entries: list[Entry] = []
        self._last = 0
        self._read_at: float | None = None  # monotonic time of the last successful read
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._woken = threading.Event()
        self.ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="authsvc-revocations", daemon=True)
        if listener:
            # Read on every notice; and whenever the listener listens again or goes deaf:
            # notices may have been missed, and the poll changes.
            listener.subscribe(
                Subscription(
                    CHANNEL,
                    notified=lambda _payloads: self.wake(),
                    listening=self.wake,
                    deaf=self.wake,
                )
            )

    def start(self) -> None:
        """Starts following the table (the first read loads every unexpired entry)."""
        self._thread.start()

    def stop(self) -> None:
        """Stops the thread, and wakes every watcher (they end)."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._woken.set()
        with self._changed:
            self._changed.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self._database.dispose()

    def wake(self) -> None:
        """Reads the table now: a revocation committed (this process's, or notified)."""
        self._woken.set()

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
        while not self._stop.is_set():
            self._woken.clear()  # before reading: a wake-up from now on is not lost
            self._read_quietly()
            self._woken.wait(self._interval())

    def _interval(self) -> float:
        """Until the next read when nothing wakes the feed."""
        if self._listening is None or self._listening.is_set():
            return self._poll
        return UNLISTENED_POLL

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
