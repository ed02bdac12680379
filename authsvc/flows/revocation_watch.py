"""WatchRevocations: the snapshot, then live entries, with heartbeats.

A watcher starts after its cursor (0: the beginning) and first gets every unexpired
entry after it (the snapshot: all revocations made within the last access-token TTL,
since older ones concern no live token), then a heartbeat that says "caught up", then
each entry as it commits, and a heartbeat whenever it has sent nothing for
``heartbeat`` seconds. Heartbeats are sent only while this replica reads the table
successfully: a verifier fed by a replica that lost its database hears nothing and
fails closed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime

from authsvc.flows.heartbeats import Heartbeat
from authsvc.storage.revocation_feed import Entry, RevocationFeed


class RevocationWatch:
    """Streams the replica's revocation feed to one watcher at a time."""

    def __init__(
        self, feed: RevocationFeed, heartbeat: float, clock: Callable[[], datetime]
    ) -> None:
        self._feed = feed
        self._heartbeat = heartbeat
        self._clock = clock

    def watch(self, after: int, active: Callable[[], bool]) -> Iterator[Entry | Heartbeat]:
        """Entries after position ``after``, then heartbeats and new entries, while
        ``active()`` and the server runs."""
        feed = self._feed
        feed.ready.wait(self._heartbeat)  # the first read, at start-up
        cursor = after
        sent_at: float | None = None  # no heartbeat before the snapshot is complete
        while active() and not feed.stopped:
            entries, read_up_to = feed.after(cursor)
            yield from entries
            # Every entry up to ``read_up_to`` was in ``entries`` (or has expired).
            cursor = max(cursor, read_up_to)
            due = sent_at is None or time.monotonic() - sent_at >= self._heartbeat
            if due and feed.ready.is_set() and feed.fresh(self._stale_after):
                yield Heartbeat(cursor, self._clock())
                sent_at = time.monotonic()
            feed.wait(cursor, self._until_due(sent_at))

    def _until_due(self, sent_at: float | None) -> float:
        if sent_at is None:
            return self._heartbeat
        return max(0.05, self._heartbeat - (time.monotonic() - sent_at))

    @property
    def _stale_after(self) -> float:
        # The feed reads at least every poll interval (at most a heartbeat apart).
        return 3 * self._heartbeat
