"""A connection pool whose checkout ends at the calling RPC's deadline."""

from __future__ import annotations

from sqlalchemy.pool import ConnectionPoolEntry, QueuePool
from sqlalchemy.util import queue as sqla_queue

from authsvc.deadlines import wait_limit
from authsvc.storage.errors import ConnectionWaitExpired


class _DeadlineQueue(sqla_queue.Queue[ConnectionPoolEntry]):
    """The pool's queue of idle connections; a blocking get ends at the call's deadline."""

    def get(self, block: bool = True, timeout: float | None = None) -> ConnectionPoolEntry:
        if not block:
            return super().get(block, timeout)
        limit, by_deadline = wait_limit(timeout, expired=ConnectionWaitExpired)
        try:
            return super().get(True, limit)
        except sqla_queue.Empty:
            if by_deadline:
                raise ConnectionWaitExpired() from None
            raise


class DeadlineQueuePool(QueuePool):
    """A QueuePool whose checkout waits no longer than the calling RPC's deadline.

    Waiting ends with ConnectionWaitExpired (the edge answers DEADLINE_EXCEEDED, as for
    any wait that outlives its call); the pool's own ``pool_timeout`` still applies
    (and raises SQLAlchemy's TimeoutError) when it comes first.
    """

    _queue_class = _DeadlineQueue
