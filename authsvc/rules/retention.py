"""The retention policy: how long each kind of row matters, so the housekeeping knows
what it may delete (``flows.housekeeping``; the deletes are ``storage.purge``).

What has expired (sessions, mailed tokens, challenges, revocations) matters until it
expires; the audit trail and sent mail for ``AUTHSVC_AUDIT_RETENTION``; account events
and finished webhook deliveries for ``AUTHSVC_EVENT_RETENTION``; throttling state for
the longest window of any throttle.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from authsvc.rules.throttle_policies import ThrottleSettings, every_throttle
from authsvc.rules.throttling import ThrottlePolicy


@dataclass(frozen=True)
class Retention:
    """How long each kind of row matters, and how many rows one purge transaction deletes."""

    batch_size: int
    audit: timedelta
    #: Throttling failures count within this window (the longest of the policies').
    throttle_window: timedelta
    #: A throttling counter untouched this long holds nothing that still counts.
    throttle_idle: timedelta
    #: Account events older than this are purged (their cursors expire).
    events: timedelta = timedelta(days=7)

    @classmethod
    def covering(
        cls,
        throttles: Iterable[ThrottlePolicy],
        *,
        batch_size: int,
        audit: timedelta,
        events: timedelta,
    ) -> Retention:
        """A retention that keeps throttling state as long as any of ``throttles`` counts it."""
        policies = list(throttles)
        return cls(
            batch_size=batch_size,
            audit=audit,
            events=events,
            throttle_window=max(max(p.subject_window, p.ip_window) for p in policies),
            throttle_idle=max(p.forget_after for p in policies),
        )

    def audit_before(self, now: datetime) -> datetime:
        """Audit events (and sent or failed mail) older than this are purged."""
        return now - self.audit

    def events_before(self, now: datetime) -> datetime:
        """Account events (and finished webhook deliveries) older than this are purged."""
        return now - self.events

    def throttle_failures_before(self, now: datetime) -> datetime:
        """Throttling failures older than this count in no window any more."""
        return now - self.throttle_window

    def throttle_counters_before(self, now: datetime) -> datetime:
        """A throttling counter untouched since this (and blocking nobody) holds nothing."""
        return now - max(self.throttle_idle, self.throttle_window)


class RetentionSettings(ThrottleSettings, Protocol):
    """The settings the retention is built from (``runtime.settings.Settings`` has them)."""

    @property
    def purge_batch_size(self) -> int: ...
    @property
    def audit_retention(self) -> timedelta: ...
    @property
    def event_retention(self) -> timedelta: ...


def retention(settings: RetentionSettings) -> Retention:
    """What the purge keeps, from the settings (the longest of every throttle's windows)."""
    return Retention.covering(
        every_throttle(settings),
        batch_size=settings.purge_batch_size,
        audit=settings.audit_retention,
        events=settings.event_retention,
    )
