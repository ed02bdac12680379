"""Deleting expired sessions in small batches, so the table does not grow without bound;
and audit events past their retention, with throttling state that no longer counts.

A session is purgeable once nothing can use it any more: its update token has expired
(``refresh_expires_at``, already capped by the absolute lifetime) and so has its session
token. Their rotated update tokens go with them (ON DELETE CASCADE). Nothing needs
invalidating: a cached entry of a purged session has expired, so it is refused anyway.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session as DbSession

from authsvc import audit, throttle
from authsvc.db import Database
from authsvc.models import Session

log = logging.getLogger(__name__)


def delete_expired(db: DbSession, now: datetime, batch_size: int) -> int:
    """Deletes up to ``batch_size`` sessions expired at ``now``; returns how many.

    Small batches keep each transaction (and its locks) short while sign-ins go on.
    """
    batch = list(
        db.scalars(
            select(Session.id)
            .where(Session.refresh_expires_at <= now, Session.expires_at <= now)
            .order_by(Session.refresh_expires_at)
            .limit(batch_size)
        )
    )
    if batch:
        db.execute(
            delete(Session)
            .where(Session.id.in_(batch))
            .execution_options(synchronize_session=False)
        )
    return len(batch)


def purge_expired(db: Database, clock: Callable[[], datetime], batch_size: int) -> int:
    """Deletes every expired session, one short transaction per batch; returns how many."""
    total = 0
    while True:
        with db.transaction() as session:
            deleted = delete_expired(session, clock(), batch_size)
        total += deleted
        if deleted < batch_size:
            return total


def purge_audit_and_throttling(
    db: Database, now: datetime, retention: timedelta, policy: throttle.ThrottlePolicy
) -> tuple[int, int]:
    """Deletes audit events older than ``retention`` and stale throttling state.

    Returns how many audit events and throttling rows went.
    """
    with db.transaction() as session:
        events = audit.purge(session, now - retention)
        state = throttle.purge(session, now, policy)
    if events or state:
        log.info("purged %d audit events and %d throttling rows", events, state)
    return events, state


@dataclass(frozen=True)
class Purged:
    """How many rows one purge deleted."""

    sessions: int
    audit_events: int
    throttle_rows: int


def purge_all(
    db: Database,
    clock: Callable[[], datetime],
    batch_size: int,
    retention: timedelta,
    policy: throttle.ThrottlePolicy,
) -> Purged:
    """Everything a purge does (``authsvc purge`` and the timer inside ``serve``)."""
    sessions = purge_expired(db, clock, batch_size)
    events, state = purge_audit_and_throttling(db, clock(), retention, policy)
    return Purged(sessions, events, state)


class PurgeTimer:
    """Runs ``purge`` every ``interval`` seconds in a daemon thread until stopped."""

    def __init__(self, purge: Callable[[], int], interval: float) -> None:
        self._purge = purge
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="authsvc-purge", daemon=True)

    def start(self) -> None:
        """Starts the timer; the first purge runs one interval from now."""
        self._thread.start()

    def stop(self) -> None:
        """Stops the timer (a purge in progress finishes its batch first)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                deleted = self._purge()
            except Exception:  # a failed round (database down) is retried next interval
                log.warning("purging expired sessions failed", exc_info=True)
            else:
                if deleted:
                    log.info("purged %d expired sessions", deleted)
