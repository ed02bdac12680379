"""Webhook endpoints: their types, their signing secret (sealed at rest), their rows.

A secret is ``whsec_`` + base64 of 32 random bytes, the Standard Webhooks form that its
verifiers (PyPI and npm ``standardwebhooks``) take as is. It is shown once, when the
endpoint is created; the row keeps it encrypted with ``AUTHSVC_SECRET_KEY`` (Fernet,
``rules.secrets_at_rest``), because signing needs the secret itself, not a hash of it.

A new endpoint starts at the newest event: it receives the events that commit after it
(its own ``webhook.created`` among them), never the history before it.

Functions take a SQLAlchemy session and never commit; the calling flow owns the
transaction.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import uuid
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session as DbSession
from standardwebhooks.webhooks import Webhook as Signer

from authsvc.errors import WebhookNotFound, WebhooksNotConfigured
from authsvc.rules.events import EVENT_TYPE_NAMES
from authsvc.rules.secrets_at_rest import SecretKeys
from authsvc.rules.values import Rejected
from authsvc.storage import events
from authsvc.storage.models import Webhook, WebhookDelivery

SECRET_PREFIX = "whsec_"  # noqa: S105 (the prefix of every secret, not a secret)
SECRET_BYTES = 32
TYPES_MAX = 64
_TYPE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


class State:
    """An endpoint's ``state`` column."""

    ACTIVE = "ACTIVE"
    FAILING = "FAILING"


def event_types(values: list[str]) -> tuple[str, ...]:
    """The distinct known event types of ``values``, in the order given (empty: all).

    Raises Rejected naming the first unknown type.
    """
    if len(values) > TYPES_MAX:
        raise Rejected(f"must hold at most {TYPES_MAX} types")
    for value in values:
        if not _TYPE.match(value) or value not in EVENT_TYPE_NAMES:
            raise Rejected(f"{value[:64]!r} is not an event type (see the README's Events)")
    return tuple(dict.fromkeys(values))


def new_secret() -> str:
    """A fresh signing secret: ``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def signed_headers(secret: str, event_id: uuid.UUID, when: datetime, body: str) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt: ``webhook-id`` (the event id, the
    same on every attempt), ``webhook-timestamp`` (this attempt's time, Unix seconds) and
    ``webhook-signature`` (``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body``)."""
    msg_id = str(event_id)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": Signer(secret).sign(msg_id, when, body.encode()),
    }


def create(
    db: DbSession, url: str, types: tuple[str, ...], keys: SecretKeys, now: datetime
) -> tuple[Webhook, str]:
    """Adds an endpoint (``url`` and ``types`` already checked); returns it and its secret.

    Raises WebhooksNotConfigured when no AUTHSVC_SECRET_KEY can seal the secret.
    """
    if not keys.configured:
        raise WebhooksNotConfigured()
    secret = new_secret()
    row = Webhook(
        url=url,
        types=json.dumps(list(types)),
        secret=keys.seal(secret),
        state=State.ACTIVE,
        event_position=events.last_position(db),
        created_at=now,
        updated_at=now,
    )
    db.add(row)
    db.flush()
    return row, secret


def types_of(row: Webhook) -> tuple[str, ...]:
    """The event types an endpoint receives (empty: every type)."""
    return tuple(json.loads(row.types))


def list_all(db: DbSession) -> list[Webhook]:
    """Every endpoint, oldest first."""
    return list(db.scalars(select(Webhook).order_by(Webhook.created_at, Webhook.id)))


def get(db: DbSession, webhook_id: uuid.UUID) -> Webhook:
    """The endpoint ``webhook_id``. Raises WebhookNotFound."""
    row = db.get(Webhook, webhook_id)
    if row is None:
        raise WebhookNotFound()
    return row


def remove(db: DbSession, webhook_id: uuid.UUID) -> Webhook:
    """Deletes the endpoint and its deliveries (pending ones are dropped); returns it.

    Raises WebhookNotFound.
    """
    row = db.scalars(select(Webhook).where(Webhook.id == webhook_id).with_for_update()).first()
    if row is None:
        raise WebhookNotFound()
    db.execute(delete(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id))
    db.delete(row)
    db.flush()
    return row
