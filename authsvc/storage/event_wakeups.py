"""Waking the replica's event streams when events commit.

One ``Wakeups`` per replica is shared by every stream on it. A stream notes
``generation`` before it reads the table, and when it has read everything calls
``wait(seen, timeout)``: that returns at once if events committed since (the generation
moved), else when they do, or at ``timeout``. The table stays the truth; a wake-up only
says "read again".

PostgreSQL: ``NotifiedWakeups`` holds the replica's one ``LISTEN authsvc_events``
connection (in a daemon thread, reconnecting like ``storage.invalidation.Listener``);
``storage.events.append`` sends the notice in the appending transaction, so it arrives
when the events are visible. While that connection is down, streams fall back to polling
at their ``timeout``. SQLite: ``Wakeups`` itself, which only ever times out (polling).
"""

from __future__ import annotations

import logging
import os
import select
import threading

import psycopg2
import psycopg2.extensions

from authsvc.storage.engine import psycopg2_connect_args
from authsvc.storage.events import CHANNEL
from authsvc.storage.invalidation import RECONNECT_DELAYS

log = logging.getLogger(__name__)


class Wakeups:
    """A generation counter streams wait on; without a listener, waiting is polling."""

    #: How long a stream waits before reading again when nothing wakes it (seconds).
    poll_interval = 0.25

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._generation = 0

    @property
    def generation(self) -> int:
        """Moves whenever events may have committed."""
        return self._generation

    def wake(self) -> None:
        """Wakes every waiting stream (events committed, or a stream must look again)."""
        with self._changed:
            self._generation += 1
            self._changed.notify_all()

    def wait(self, seen: int, timeout: float) -> None:
        """Returns once the generation differs from ``seen``, or after ``timeout`` seconds
        (at most ``poll_interval``)."""
        with self._changed:
            self._changed.wait_for(
                lambda: self._generation != seen, min(timeout, self.poll_interval)
            )

    def start(self) -> None:
        """Starts listening (nothing to do when polling)."""

    def stop(self) -> None:
        """Stops listening (nothing to do when polling)."""


class NotifiedWakeups(Wakeups):
    """Wakes streams on ``NOTIFY authsvc_events``, from one connection per replica."""

    #: While listening, reading again now and then only guards against a lost notice.
    poll_interval = 2.0
    _polling_interval = Wakeups.poll_interval

    def __init__(self, database_url: str) -> None:
        super().__init__()
        self._args = psycopg2_connect_args(database_url)
        self._args.update(
            application_name="authsvc-events",
            keepalives=1,
            keepalives_idle=5,
            keepalives_interval=2,
            keepalives_count=3,
        )
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        self.listening = threading.Event()
        self._thread = threading.Thread(target=self._run, name="authsvc-events", daemon=True)

    def wait(self, seen: int, timeout: float) -> None:
        """As ``Wakeups.wait``, polling fast while the listener is not connected."""
        interval = self.poll_interval if self.listening.is_set() else self._polling_interval
        with self._changed:
            self._changed.wait_for(lambda: self._generation != seen, min(timeout, interval))

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
        if not self._thread.is_alive():
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            try:
                conn = psycopg2.connect(**self._args)
                conn.autocommit = True
                with conn.cursor() as cur:
                    cur.execute(f"LISTEN {CHANNEL}")
            except psycopg2.Error as exc:
                log.warning("events listener cannot connect: %s", type(exc).__name__)
            else:
                attempt = 0
                self._listen(conn)
            delay = RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)]
            attempt += 1
            self._stop.wait(delay)

    def _listen(self, conn: psycopg2.extensions.connection) -> None:
        self.listening.set()
        self.wake()  # events may have committed while no one listened
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([conn.fileno(), self._wake_r], [], [])
                if self._wake_r in ready:
                    continue
                conn.poll()
                if conn.notifies:
                    conn.notifies.clear()
                    self.wake()
        except (psycopg2.Error, OSError, ValueError) as exc:
            log.warning("events listener lost its connection: %s", type(exc).__name__)
        finally:
            self.listening.clear()
            conn.close()
