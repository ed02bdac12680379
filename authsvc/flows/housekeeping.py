"""Housekeeping: purging what nothing can use any more."""

from __future__ import annotations

import logging

from authsvc.flows.changes import Changes
from authsvc.storage.purge import Purged, Retention, purge_all

log = logging.getLogger(__name__)


class Housekeeping:
    """The purge run by ``authsvc purge`` and by the timer inside ``serve``."""

    def __init__(self, changes: Changes, retention: Retention) -> None:
        self._changes = changes
        self._retention = retention

    def purge(self) -> Purged:
        """Deletes expired sessions (in batches), expired reset and verification tokens, old
        audit events, stale throttling rows, expired challenges, unconfirmed TOTP enrolments and
        account events past their retention."""
        done = purge_all(self._changes.database, self._changes.clock, self._retention)
        if (
            done.sessions
            or done.audit_events
            or done.throttle_rows
            or done.user_tokens
            or done.ceremonies
            or done.events
        ):
            log.info(
                "purged %d expired sessions, %d expired reset/verification tokens, "
                "%d audit events, %d throttling rows, %d expired ceremonies and %d account events",
                done.sessions,
                done.user_tokens,
                done.audit_events,
                done.throttle_rows,
                done.ceremonies,
                done.events,
            )
        return done
