"""The purge deletes finished webhook deliveries as old as the events, never pending ones."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select

from authsvc.storage.engine import Database
from authsvc.storage.models import Webhook, WebhookDelivery
from authsvc.storage.purge import finished_deliveries_batch
from tests.conftest import FakeClock

EVENT_RETENTION = timedelta(days=7)


def test_finished_deliveries_go_with_their_events_pending_ones_stay(
    database: Database, clock: FakeClock
) -> None:
    old, recent = clock() - timedelta(days=8), clock() - timedelta(days=1)
    with database.transaction() as db:
        hook = Webhook(url="http://example.com/", types="[]", secret="x", state="ACTIVE")
        hook.event_position = 0
        hook.created_at = hook.updated_at = old
        db.add(hook)
        db.flush()
        rows = {
            ("DELIVERED", old): None,
            ("FAILED", old): None,
            ("PENDING", old): clock(),
            ("DELIVERED", recent): None,
        }
        for position, ((state, when), next_at) in enumerate(rows.items(), 1):
            db.add(
                WebhookDelivery(
                    webhook_id=hook.id,
                    event_position=position,
                    event_id=uuid.uuid4(),
                    event_type="user.enabled",
                    payload="{}",
                    state=state,
                    next_attempt_at=next_at,
                    created_at=when,
                    updated_at=when,
                )
            )
    with database.transaction() as db:
        assert finished_deliveries_batch(db, clock() - EVENT_RETENTION, 10) == 2
    with database.transaction(writes=False) as db:
        kept = sorted(db.scalars(select(WebhookDelivery.event_position)))
    assert kept == [3, 4]  # the old pending one and the recent delivered one
