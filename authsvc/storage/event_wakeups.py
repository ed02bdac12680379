"""Waking the replica's event streams when events commit.

One ``Wakeups`` per replica is shared by every stream on it. A stream notes
``generation`` before it reads the table, and when it has read everything calls
``wait(seen, timeout)``: that returns at once if events committed since (the generation
moved), else when they do, or at ``timeout``. The table stays the truth; a wake-up only
says "read again".

PostgreSQL: ``NotifiedWakeups`` subscribes to ``authsvc_events`` on the replica's one
``LISTEN`` connection (``storage.notifications``); ``storage.events.append`` sends the
notice in the appending transaction, so it arrives when the events are visible. While that
connection is down, streams fall back to polling fast, and once it listens again every
stream is woken to read what it may have missed. SQLite: ``Wakeups`` itself, which only
ever times out (polling).
"""

from __future__ import annotations

import threading

from authsvc.storage.events import CHANNEL
from authsvc.storage.notifications import Listener, Subscription


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


class NotifiedWakeups(Wakeups):
    """Wakes streams on ``NOTIFY authsvc_events``, heard on the replica's ``Listener``."""

    #: While listening, reading again now and then only guards against a lost notice.
    poll_interval = 2.0
    _polling_interval = Wakeups.poll_interval

    def __init__(self, listener: Listener) -> None:
        super().__init__()
        self._listening = listener.listening
        listener.subscribe(
            Subscription(
                CHANNEL,
                notified=lambda _payloads: self.wake(),
                listening=self.wake,  # events may have committed while no one listened
            )
        )

    def wait(self, seen: int, timeout: float) -> None:
        """As ``Wakeups.wait``, polling fast while the listener is not connected."""
        interval = self.poll_interval if self._listening.is_set() else self._polling_interval
        with self._changed:
            self._changed.wait_for(lambda: self._generation != seen, min(timeout, interval))
