"""The audit trail as callers see it: listing events, and auditing refused callers."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from authsvc.flows.changes import NO_USER, Changes
from authsvc.rules import audit
from authsvc.rules.audit import AuditEvent
from authsvc.storage.paging import Page, PageRequest
from authsvc.storage.views import AuditEventView

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuditQuery:
    """A checked ListAuditEvents request: whose events (None: everyone's), which page."""

    user_id: uuid.UUID | None
    page: PageRequest


class AuditTrail:
    """ListAuditEvents, and the CALLER_DENIED events of the caller policy."""

    def __init__(self, changes: Changes) -> None:
        self._changes = changes

    def list_events(self, query: AuditQuery) -> Page[AuditEventView]:
        """One page of audit events, newest first, optionally of one user."""
        with self._changes.read() as db:
            return audit.list_events(db, query.page, query.user_id).map(AuditEventView.of)

    def caller_denied(self, identities: tuple[str, ...], method: str) -> None:
        """Audits (and logs) a call the caller policy refused.

        Never raises: the call is refused whether or not the event could be written.
        """
        caller = ", ".join(identities)
        detail = f"{caller or '(no identity)'} {method}"
        try:
            self._changes.record(
                AuditEvent.CALLER_DENIED, NO_USER, detail, caller=caller, method=method
            )
        except Exception:  # a denial stays a denial, even with the database down
            log.warning("could not audit a denied caller", exc_info=True)
