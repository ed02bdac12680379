"""The account events outbox: appending in commit order, reading after a cursor, purging.

Positions are commit-ordered. ``append`` takes the append lock (PostgreSQL: a
transaction-scoped advisory lock; SQLite: the database's single writer, already held by
``BEGIN IMMEDIATE``) before the rows get their positions, and the lock is held until the
transaction ends. So a transaction that appends later also commits later: when a reader
sees position ``n`` committed, every position below ``n`` is committed (or rolled back)
already, and paging ``position > last`` never skips an event. The lock is taken at the very
end of the change, so it is held for the insert and the commit only.

On PostgreSQL ``append`` also sends ``NOTIFY authsvc_events`` in the transaction: a
wake-up for streaming readers (delivered on commit, dropped on rollback). The table is
the truth; a lost notice only delays a reader until its next poll.

Consumers see positions as cursors (``rules.cursors``).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session as DbSession

from authsvc.storage.engine import advisory_xact_lock
from authsvc.storage.models import EventRow

#: The PostgreSQL channel that wakes streaming readers when events commit.
CHANNEL = "authsvc_events"
# Any constant 64-bit key, the same on every replica ("authsvc events" in ASCII, cut).
_APPEND_LOCK_KEY = 0x6175_7468_6576_7473
_NOTIFY = text(f"NOTIFY {CHANNEL}")


def append(db: DbSession, rows: Sequence[EventRow]) -> None:
    """Adds ``rows`` to ``db``'s transaction, positioned in commit order (see the module).

    Call it last in the transaction: the append lock it takes is held until commit.
    """
    if not rows:
        return
    advisory_xact_lock(db, _APPEND_LOCK_KEY)
    db.add_all(rows)
    db.flush()
    if db.get_bind().dialect.name == "postgresql":
        db.execute(_NOTIFY)


def events_after(
    db: DbSession,
    after_position: int,
    limit: int,
    types: frozenset[str] = frozenset(),
    up_to: int | None = None,
) -> list[EventRow]:
    """Up to ``limit`` events after ``after_position`` (and up to ``up_to``, when given),
    in position (commit) order; only the ``types`` given, when any are."""
    query = select(EventRow).where(EventRow.position > after_position)
    if up_to is not None:
        query = query.where(EventRow.position <= up_to)
    if types:
        query = query.where(EventRow.type.in_(sorted(types)))
    return list(db.scalars(query.order_by(EventRow.position).limit(limit)))


def read_after(
    db: DbSession, after_position: int, limit: int, types: frozenset[str] = frozenset()
) -> tuple[list[EventRow], int]:
    """The next (up to ``limit``) events after ``after_position``, only the ``types``
    given when any are, and the position read up to: a reader resumes after it.

    The newest position is read first: every event up to it has committed already
    (commit order, see the module), so once the events up to it are read, the reader has
    seen everything there, even those its type filter skips.
    """
    newest = last_position(db)
    rows = events_after(db, after_position, limit, types, up_to=newest)
    if len(rows) == limit:
        return rows, rows[-1].position
    return rows, max(after_position, newest)


def last_position(db: DbSession) -> int:
    """The position of the newest event (0 when there is none)."""
    return int(db.scalar(select(func.max(EventRow.position))) or 0)


def first_position(db: DbSession) -> int | None:
    """The position of the oldest retained event (None when there is none)."""
    found = db.scalar(select(func.min(EventRow.position)))
    return None if found is None else int(found)


def is_expired(db: DbSession, after_position: int) -> bool:
    """True when events after ``after_position`` may have been purged.

    The purge keeps the newest event it could delete (``storage.purge.old_events_batch``),
    so a position that is still retained, or newer than every retained one, has lost
    nothing; one below the oldest retained event was purged itself, so it is older than
    the retention.
    """
    oldest = first_position(db)
    return after_position > 0 and oldest is not None and after_position < oldest
