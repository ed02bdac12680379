"""Webhook endpoints: created, listed and deleted (CreateWebhook…, ``authsvc webhook``),
their deliveries listed; and the delivery work the runtime's ``WebhookWorker`` drives.

Each write is an audited change: creating and deleting an endpoint are audited (and
logged) and are account events (``webhook.created``, ``webhook.deleted``), so the
security team and other consumers learn where events go.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from authsvc.errors import InvalidArgument
from authsvc.flows.changes import NO_USER, Changes
from authsvc.rules import webhook_deliveries, webhook_urls, webhooks
from authsvc.rules.audit import AuditEvent
from authsvc.rules.secrets_at_rest import SecretKeys
from authsvc.rules.values import Rejected
from authsvc.rules.webhook_deliveries import Attempt, Outcome
from authsvc.storage.models import Webhook, WebhookDelivery


@dataclass(frozen=True)
class NewWebhook:
    """A CreateWebhook request, checked: an http(s) URL, known event types."""

    url: str
    types: tuple[str, ...]


@dataclass(frozen=True)
class WebhookView:
    """What may be shown about an endpoint: never its secret."""

    id: uuid.UUID
    url: str
    types: tuple[str, ...]
    created_at: datetime
    state: str

    @classmethod
    def of(cls, row: Webhook) -> WebhookView:
        """The showable part of an endpoint."""
        return cls(row.id, row.url, webhooks.types_of(row), row.created_at, row.state)


@dataclass(frozen=True)
class DeliveryView:
    """One delivery of an event to an endpoint, and how its attempts went."""

    event_position: int
    event_id: uuid.UUID
    event_type: str
    state: str
    attempts: int
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    last_status_code: int
    last_error: str

    @classmethod
    def of(cls, row: WebhookDelivery) -> DeliveryView:
        """The view of a stored delivery (``next_attempt_at`` only while PENDING)."""
        pending = row.state == webhook_deliveries.State.PENDING
        return cls(
            row.event_position,
            row.event_id,
            row.event_type,
            row.state,
            row.attempts,
            row.last_attempt_at,
            row.next_attempt_at if pending else None,
            row.last_status_code,
            row.last_error,
        )


@dataclass(frozen=True)
class DeliveryPage:
    """A page of deliveries, newest first, and the event position the next one starts
    before (None on the last page)."""

    items: list[DeliveryView]
    next_before: int | None


@dataclass(frozen=True)
class DeliveryQuery:
    """A checked ListWebhookDeliveries request: the endpoint, the page size, and the
    event position the page starts before (None: the newest)."""

    webhook_id: uuid.UUID
    size: int
    before: int | None = None


@dataclass(frozen=True)
class DeliveryPolicy:
    """How deliveries are attempted (the ``AUTHSVC_WEBHOOK_*`` settings)."""

    retry_schedule: tuple[timedelta, ...]
    timeout: timedelta
    allow_private: bool


class Webhooks:
    """The webhook endpoints and their deliveries."""

    def __init__(self, changes: Changes, keys: SecretKeys, policy: DeliveryPolicy) -> None:
        self._changes = changes
        self._keys = keys
        self.policy = policy

    def create(self, new: NewWebhook) -> tuple[WebhookView, str]:
        """Registers an endpoint; returns it and its signing secret (shown this once).

        Raises InvalidArgument (``url``) when its host resolves to a private address
        (unless allowed), WebhooksNotConfigured without AUTHSVC_SECRET_KEY.
        """
        try:
            webhook_urls.webhook_url(new.url, self.policy.allow_private)
        except Rejected as exc:
            raise InvalidArgument.of("url", str(exc)) from None
        with self._changes.open() as change:
            row, secret = webhooks.create(change.db, new.url, new.types, self._keys, change.now)
            change.audit(AuditEvent.WEBHOOK_CREATED, NO_USER, _detail(row), webhook_id=str(row.id))
            change.event(
                "webhook.created",
                NO_USER,
                webhook_id=str(row.id),
                url=row.url,
                types=list(new.types),
            )
        return WebhookView.of(row), secret

    def list_all(self) -> list[WebhookView]:
        """Every endpoint, oldest first."""
        with self._changes.read() as db:
            return [WebhookView.of(row) for row in webhooks.list_all(db)]

    def delete(self, webhook_id: uuid.UUID) -> WebhookView:
        """Deletes an endpoint, dropping its deliveries. Raises WebhookNotFound."""
        with self._changes.open() as change:
            row = webhooks.remove(change.db, webhook_id)
            change.audit(AuditEvent.WEBHOOK_DELETED, NO_USER, _detail(row), webhook_id=str(row.id))
            change.event("webhook.deleted", NO_USER, webhook_id=str(row.id), url=row.url)
        return WebhookView.of(row)

    def deliveries(self, query: DeliveryQuery) -> DeliveryPage:
        """One page of an endpoint's deliveries, newest event first. Raises WebhookNotFound."""
        with self._changes.read() as db:
            webhooks.get(db, query.webhook_id)
            rows, next_before = webhook_deliveries.page(
                db, query.webhook_id, query.size, query.before
            )
            return DeliveryPage([DeliveryView.of(row) for row in rows], next_before)

    # The delivery work (driven by runtime.webhook_worker)

    def endpoint_ids(self) -> list[uuid.UUID]:
        """Every endpoint's id."""
        with self._changes.read() as db:
            return [row.id for row in webhooks.list_all(db)]

    def dispatch(self) -> list[uuid.UUID]:
        """Turns the new events into deliveries, for every endpoint behind; returns the
        endpoints that got some."""
        with self._changes.read() as db:
            lagging = webhook_deliveries.behind(db)
        fed: list[uuid.UUID] = []
        for webhook_id in lagging:
            while True:
                with self._changes.open() as change:
                    read = webhook_deliveries.dispatch(change.db, webhook_id, change.now)
                if read:
                    fed.append(webhook_id)
                if read < webhook_deliveries.DISPATCH_BATCH:
                    break
        return fed

    def claim(self, webhook_id: uuid.UUID) -> Attempt | None:
        """The endpoint's next due attempt, now leased to the caller; None when none is due."""
        with self._changes.read() as db:
            if not webhook_deliveries.has_due(db, webhook_id, self._changes.clock()):
                return None
        with self._changes.open() as change:
            return webhook_deliveries.claim(change.db, webhook_id, change.now, self.policy.timeout)

    def signed_headers(self, attempt: Attempt) -> dict[str, str]:
        """The Standard Webhooks headers of ``attempt``, signed now with its endpoint's
        secret. Raises AuthError when no configured key opens the secret."""
        secret = self._keys.unseal(attempt.sealed_secret)
        now = self._changes.clock()
        return webhooks.signed_headers(secret, attempt.event_id, now, attempt.payload)

    def record(self, attempt: Attempt, outcome: Outcome) -> None:
        """Writes how an attempt went (delivered, retry later, or failed for good)."""
        with self._changes.open() as change:
            webhook_deliveries.record(
                change.db, attempt, outcome, change.now, self.policy.retry_schedule
            )


def _detail(row: Webhook) -> str:
    # The URL without its query, which may carry a receiver's own token.
    return f"{row.id} {row.url.split('?', 1)[0]}"
