"""Account events for consumers: ListEvents (one page) and WatchEvents (a stream).

A stream first sends every retained event after the consumer's cursor, then waits for
new ones (woken by ``storage.event_wakeups``), and sends a heartbeat carrying the
current cursor whenever it has been quiet for the heartbeat interval. The consumer's
position is its own: the server keeps nothing per consumer.

Each stream holds a handler thread for its whole life (grpcio's sync server), on a pool
of its own (``edge.pool_interceptors.OwnPools``), so streams never take the threads of the
other calls; ``StreamSlots`` refuses one more than the limit at once (RESOURCE_EXHAUSTED)
instead of letting it queue unseen.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session as DbSession

from authsvc.errors import CursorExpired, TooManyStreams
from authsvc.flows.changes import Changes
from authsvc.flows.heartbeats import Heartbeat
from authsvc.storage import events
from authsvc.storage.event_wakeups import Wakeups
from authsvc.storage.views import EventView

#: Events read per query while catching up.
BATCH = 500


@dataclass(frozen=True)
class EventQuery:
    """A checked ListEvents or WatchEvents request."""

    #: Resume after this position (0: from the oldest retained event); None: "now".
    after: int | None
    types: frozenset[str] = frozenset()
    page_size: int = 100


@dataclass(frozen=True)
class EventPage:
    """One page of ListEvents, and where the next one starts."""

    events: list[EventView]
    next_position: int | None  # None: the request's own cursor ("" stays "")


class StreamSlots:
    """At most ``limit`` concurrent streams; one more is refused, never queued."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._free = threading.BoundedSemaphore(limit)

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Holds one slot for the block. Raises TooManyStreams when none is free."""
        if not self._free.acquire(blocking=False):
            raise TooManyStreams()
        try:
            yield
        finally:
            self._free.release()


class EventFeed:
    """ListEvents and WatchEvents over the outbox."""

    def __init__(
        self,
        changes: Changes,
        wakeups: Wakeups,
        heartbeat_interval: timedelta,
        slots: StreamSlots,
    ) -> None:
        self._changes = changes
        self._wakeups = wakeups
        self._heartbeat = heartbeat_interval.total_seconds()
        self._slots = slots

    def list_events(self, query: EventQuery) -> EventPage:
        """Up to ``page_size`` events after the cursor. Raises CursorExpired."""
        with self._changes.read() as db:
            after = self._start(db, query.after)
            found = events.events_after(db, after, query.page_size, query.types)
            rows = [EventView.of(row) for row in found]
        if rows:
            return EventPage(rows, rows[-1].position)
        return EventPage([], None if query.after is not None else after)

    def watch(
        self, query: EventQuery, active: Callable[[], bool]
    ) -> Iterator[EventView | Heartbeat]:
        """Events after the cursor, then new ones as they commit, with heartbeats; until
        ``active()`` turns false. Raises CursorExpired or TooManyStreams (at the start)."""
        with self._slots.slot():
            with self._changes.read() as db:
                position = self._start(db, query.after)
            yield from self._follow(position, query.types, active)

    def _follow(
        self, position: int, types: frozenset[str], active: Callable[[], bool]
    ) -> Iterator[EventView | Heartbeat]:
        beat_at = time.monotonic() + self._heartbeat
        while active():
            seen = self._wakeups.generation  # before reading: a commit after it wakes us
            rows, position = self._read(position, types)
            yield from rows
            now = time.monotonic()
            if rows:
                beat_at = now + self._heartbeat  # events show the stream is alive
                if len(rows) == BATCH:
                    continue
            if now >= beat_at:
                yield Heartbeat(position, self._changes.clock())
                beat_at = now + self._heartbeat
            else:
                self._wakeups.wait(seen, beat_at - now)

    def _read(self, position: int, types: frozenset[str]) -> tuple[list[EventView], int]:
        """The next events after ``position`` and the position read up to."""
        with self._changes.read() as db:
            rows, read_up_to = events.read_after(db, position, BATCH, types)
            return [EventView.of(row) for row in rows], read_up_to

    def _start(self, db: DbSession, after: int | None) -> int:
        if after is None:
            return events.last_position(db)
        if events.is_expired(db, after):
            raise CursorExpired()
        return after
