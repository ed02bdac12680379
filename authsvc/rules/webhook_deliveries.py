"""Webhook deliveries: made from the events table, claimed, attempted, retried.

Everything is driven from the database, so a restart loses nothing:

- **Dispatch.** An endpoint's ``event_position`` says how far its events have become
  deliveries. ``dispatch`` reads the endpoint's types of events after it as the event
  streams do (``storage.events.read_after``: commit-ordered positions, none is
  skipped), adds a PENDING delivery for each and advances the position to where it
  read, in one transaction: an event becomes a delivery exactly once. The endpoint row
  is locked (PostgreSQL ``FOR UPDATE SKIP LOCKED``), so replicas dispatching at the
  same time take turns.
- **Claim.** ``claim`` takes the oldest due PENDING delivery of an endpoint whose user
  has no earlier PENDING delivery there (one endpoint receives one user's events in
  order), counts the attempt and moves ``next_attempt_at`` past the attempt's timeout:
  that is its lease. The row is locked with ``FOR UPDATE SKIP LOCKED``, so two replicas
  never take the same attempt; a replica that dies mid-attempt leaves a lease that runs
  out, and another replica (or this one, restarted) makes the attempt again.
- **Outcome.** ``record`` marks a 2xx DELIVERED; anything else waits for the next step
  of the retry schedule (plus up to 20% jitter) or, after the last, becomes FAILED (kept for
  inspection) and marks the endpoint FAILING. A later success marks it ACTIVE again.

Delivery is at least once: an attempt whose answer is lost (a crash after the POST) is
made again. Receivers deduplicate on ``webhook-id`` (the event id).

Functions take a SQLAlchemy session and never commit; the calling flow owns the
transaction.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session as DbSession
from sqlalchemy.orm import aliased

from authsvc.rules.events import event_data
from authsvc.rules.webhooks import State as EndpointState
from authsvc.rules.webhooks import types_of
from authsvc.storage import events
from authsvc.storage.models import EventRow, Webhook, WebhookDelivery

#: Events read per dispatch transaction.
DISPATCH_BATCH = 500
#: A claimed attempt's lease: three timeouts (connect, send, answer each have one) and
#: this much more. Past it, the attempt is presumed dead and is made again.
LEASE_MARGIN = timedelta(seconds=5)
ERROR_MAX = 255
JITTER = 0.2

Jitter = Callable[[float, float], float]


class State:
    """A delivery's ``state`` column."""

    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"


@dataclass(frozen=True)
class Attempt:
    """A claimed attempt: what to send where, and which attempt of its delivery it is."""

    delivery_id: uuid.UUID
    number: int
    url: str
    event_id: uuid.UUID
    payload: str
    sealed_secret: str


@dataclass(frozen=True)
class Outcome:
    """How an attempt went: the HTTP status (0 when none came back) and why it failed."""

    status_code: int
    error: str = ""

    @property
    def delivered(self) -> bool:
        """True for a 2xx answer."""
        return 200 <= self.status_code < 300


def payload(row: EventRow) -> str:
    """The JSON body of an event's delivery (documented in the README's Webhooks)."""
    body: dict[str, Any] = {
        "id": str(row.id),
        "type": row.type,
        "time": row.time.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "user_id": str(row.user_id) if row.user_id else None,
        "session_id": str(row.session_id) if row.session_id else None,
        "actor": {"kind": row.actor_kind, "name": row.actor_name},
        "data": event_data(row),
    }
    return json.dumps(body, separators=(",", ":"))


def behind(db: DbSession) -> list[uuid.UUID]:
    """The endpoints with events still to dispatch."""
    newest = events.last_position(db)
    return list(db.scalars(select(Webhook.id).where(Webhook.event_position < newest)))


def dispatch(db: DbSession, webhook_id: uuid.UUID, now: datetime) -> int:
    """Turns up to DISPATCH_BATCH of the endpoint's events after its position into
    deliveries and advances it. Returns how many it made (below DISPATCH_BATCH: caught
    up; 0 also when the endpoint is gone or another replica is dispatching it now)."""
    query = select(Webhook).where(Webhook.id == webhook_id).with_for_update(skip_locked=True)
    endpoint = db.scalars(query).first()
    if endpoint is None:
        return 0
    wanted = frozenset(types_of(endpoint))
    found, read_up_to = events.read_after(db, endpoint.event_position, DISPATCH_BATCH, wanted)
    for event in found:
        db.add(_delivery(webhook_id, event, now))
    if read_up_to > endpoint.event_position:
        endpoint.event_position = read_up_to
        endpoint.updated_at = now
    db.flush()
    return len(found)


def _delivery(webhook_id: uuid.UUID, event: EventRow, now: datetime) -> WebhookDelivery:
    return WebhookDelivery(
        webhook_id=webhook_id,
        event_position=event.position,
        event_id=event.id,
        event_type=event.type,
        user_id=event.user_id,
        payload=payload(event),
        state=State.PENDING,
        attempts=0,
        next_attempt_at=now,
        last_status_code=0,
        last_error="",
        created_at=now,
        updated_at=now,
    )


def _due(webhook_id: uuid.UUID, now: datetime) -> Any:
    earlier = aliased(WebhookDelivery)
    blocked = exists().where(
        earlier.webhook_id == WebhookDelivery.webhook_id,
        earlier.user_id == WebhookDelivery.user_id,
        earlier.state == State.PENDING,
        earlier.event_position < WebhookDelivery.event_position,
    )
    return (
        select(WebhookDelivery)
        .where(
            WebhookDelivery.webhook_id == webhook_id,
            WebhookDelivery.state == State.PENDING,
            WebhookDelivery.next_attempt_at <= now,
            ~blocked,
        )
        .order_by(WebhookDelivery.event_position)
        .limit(1)
    )


def has_due(db: DbSession, webhook_id: uuid.UUID, now: datetime) -> bool:
    """True when the endpoint has a delivery ``claim`` could take now."""
    return db.scalars(_due(webhook_id, now)).first() is not None


def claim(
    db: DbSession, webhook_id: uuid.UUID, now: datetime, timeout: timedelta
) -> Attempt | None:
    """Takes the endpoint's next due delivery for one attempt (see the module), or None."""
    row = db.scalars(_due(webhook_id, now).with_for_update(skip_locked=True)).first()
    if row is None:
        return None
    endpoint = db.get(Webhook, webhook_id)
    if endpoint is None:
        return None
    row.attempts += 1
    row.last_attempt_at = now
    row.next_attempt_at = now + 3 * timeout + LEASE_MARGIN
    row.updated_at = now
    db.flush()
    return Attempt(row.id, row.attempts, endpoint.url, row.event_id, row.payload, endpoint.secret)


def retry_delay(
    schedule: Sequence[timedelta], attempt: int, jitter: Jitter = random.uniform
) -> timedelta | None:
    """The wait after failed attempt number ``attempt`` (1 is the first try): the
    schedule's step lengthened by 0 to 20% at random (so endpoints that failed together
    are not retried in lockstep, and the schedule stays a minimum); None once the
    schedule has run out."""
    if attempt > len(schedule):
        return None
    return schedule[attempt - 1] * jitter(1, 1 + JITTER)


def record(
    db: DbSession,
    attempt: Attempt,
    outcome: Outcome,
    now: datetime,
    schedule: Sequence[timedelta],
    jitter: Jitter = random.uniform,
) -> None:
    """Writes an attempt's outcome (see the module). Does nothing when the delivery is
    gone (its endpoint was deleted) or another attempt took it over meanwhile."""
    query = select(WebhookDelivery).where(WebhookDelivery.id == attempt.delivery_id)
    row = db.scalars(query.with_for_update()).first()
    if row is None or row.state != State.PENDING or row.attempts != attempt.number:
        return
    row.last_status_code = outcome.status_code
    row.last_error = outcome.error[:ERROR_MAX]
    row.updated_at = now
    if outcome.delivered:
        row.state, row.next_attempt_at = State.DELIVERED, None
        _mark(db, row.webhook_id, EndpointState.ACTIVE, now)
        return
    delay = retry_delay(schedule, attempt.number, jitter)
    if delay is not None:
        row.next_attempt_at = now + delay
        return
    row.state, row.next_attempt_at = State.FAILED, None
    _mark(db, row.webhook_id, EndpointState.FAILING, now)


def _mark(db: DbSession, webhook_id: uuid.UUID, state: str, now: datetime) -> None:
    db.execute(
        update(Webhook)
        .where(Webhook.id == webhook_id, Webhook.state != state)
        .values(state=state, updated_at=now)
    )
    db.flush()


def page(
    db: DbSession, webhook_id: uuid.UUID, size: int, before: int | None
) -> tuple[list[WebhookDelivery], int | None]:
    """Up to ``size`` deliveries of an endpoint, newest event first, before the event
    position ``before`` (None: from the newest); and where the next page starts (None
    on the last page)."""
    query = select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
    if before is not None:
        query = query.where(WebhookDelivery.event_position < before)
    query = query.order_by(WebhookDelivery.event_position.desc()).limit(size + 1)
    rows = list(db.scalars(query))
    if len(rows) <= size:
        return rows, None
    return rows[:size], rows[size - 1].event_position
