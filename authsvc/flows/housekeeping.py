"""Housekeeping: deleting what nothing can use any more, and rotating the signing keys.

The one purge: the timer inside ``serve`` (``AUTHSVC_PURGE_INTERVAL``) and ``authsvc
purge`` both run ``Housekeeping.purge``. What is kept how long is ``rules.retention``;
the deletes are ``storage.purge``. Each batch is an audited change of its own (short
transactions while sign-ins go on), and a purge that deleted anything is audited once,
as DATA_PURGED with how many rows of each kind it deleted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import astuple, dataclass, fields, replace
from datetime import datetime

from sqlalchemy.orm import Session as DbSession

from authsvc.flows.access_tokens import AccessTokens
from authsvc.flows.changes import NO_USER, Changes
from authsvc.rules import audit
from authsvc.rules.audit import AuditEvent
from authsvc.rules.retention import Retention
from authsvc.storage import purge

log = logging.getLogger(__name__)

#: Deletes up to ``batch_size`` rows (the int) in a transaction, given its time.
Batch = Callable[[DbSession, datetime, int], int]


@dataclass(frozen=True)
class Purged:
    """How many rows one purge deleted, by kind."""

    sessions: int
    audit_events: int
    throttle_rows: int
    #: Expired password reset and email verification tokens.
    user_tokens: int = 0
    #: Expired sign-in challenges, passkey ceremonies and unconfirmed TOTP enrolments.
    ceremonies: int = 0
    #: Account events past their retention.
    events: int = 0
    #: Finished webhook deliveries (delivered or failed) older than the event retention.
    webhook_deliveries: int = 0
    #: Revocation-feed entries that no longer concern any unexpired access token.
    revocations: int = 0
    #: Mail sent or failed before the audit retention.
    mails: int = 0
    #: Retired signing keys (no access token they signed is still valid).
    signing_keys: int = 0

    @property
    def anything(self) -> bool:
        """True when the purge deleted at least one row."""
        return any(astuple(self))

    def counts(self) -> dict[str, str]:
        """Each kind and how many of it were deleted, as text (the audit detail, log fields)."""
        return {f.name: str(getattr(self, f.name)) for f in fields(self)}


class Housekeeping:
    """The purge run by ``authsvc purge`` and by the timer inside ``serve``."""

    def __init__(self, changes: Changes, retention: Retention, tokens: AccessTokens) -> None:
        self._changes = changes
        self._retention = retention
        self._tokens = tokens

    def purge(self) -> Purged:
        """Rotates the signing key when due and deletes retired ones; deletes expired
        sessions (in batches), expired reset and verification tokens, expired
        revocations, old audit events, stale throttling rows, expired challenges and
        unconfirmed TOTP enrolments, old sent mail, account events past their retention
        and the finished webhook deliveries as old. Audits what it deleted, if anything."""
        keys = self._tokens.housekeep()
        if keys.created or keys.purged:
            log.info("signing keys: %s created, %d retired", keys.created or "none", keys.purged)
        done = replace(self._purge_rows(), signing_keys=keys.purged)
        if done.anything:
            self._audit(done)
        return done

    def _purge_rows(self) -> Purged:
        keep = self._retention
        sessions = self._in_batches(purge.expired_sessions_batch)
        tokens = self._in_batches(purge.expired_user_tokens_batch)
        revocations = self._in_batches(purge.expired_revocations_batch)
        with self._changes.open() as change:
            db, now = change.db, change.now
            audit_events = purge.old_audit_records(db, keep.audit_before(now))
            throttle_rows = purge.stale_throttling(
                db, now, keep.throttle_failures_before(now), keep.throttle_counters_before(now)
            )
            ceremonies = purge.expired_ceremonies(db, now)
            mails = purge.finished_mail(db, keep.audit_before(now))
        events = self._in_batches(_before(keep.events_before, purge.old_events_batch))
        hooks = self._in_batches(_before(keep.events_before, purge.finished_deliveries_batch))
        return Purged(
            sessions=sessions,
            audit_events=audit_events,
            throttle_rows=throttle_rows,
            user_tokens=tokens,
            ceremonies=ceremonies,
            events=events,
            webhook_deliveries=hooks,
            revocations=revocations,
            mails=mails,
        )

    def _audit(self, done: Purged) -> None:
        counts = done.counts()
        detail = audit.counts_detail(counts)
        log.info("purged %s", detail)
        self._changes.record(AuditEvent.DATA_PURGED, NO_USER, detail, **counts)

    def _in_batches(self, delete_batch: Batch) -> int:
        """Runs ``delete_batch`` in one audited change after another until one deletes
        less than a full batch; returns how many rows they deleted in all."""
        size, total = self._retention.batch_size, 0
        while True:
            with self._changes.open() as change:
                deleted = delete_batch(change.db, change.now, size)
            total += deleted
            if deleted < size:
                return total


def _before(cutoff: Callable[[datetime], datetime], delete_batch: Batch) -> Batch:
    """``delete_batch`` given the retention's cut-off at the transaction's time."""

    def purge_batch(db: DbSession, now: datetime, batch_size: int) -> int:
        return delete_batch(db, cutoff(now), batch_size)

    return purge_batch
