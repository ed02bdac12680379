"""The views flows return for passkeys, audit events and account events.

Plain frozen dataclasses with UUID ids, each with ``of(row)``: the edge renders these,
never the ORM rows (an import-linter contract keeps ``edge`` off ``storage.models``).
Sessions have theirs in ``storage.read_model`` (ValidateToken's read model).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from authsvc.storage.models import AuditRecord, EventRow, Passkey


@dataclass(frozen=True, slots=True)
class PasskeyView:
    """What may be shown about a passkey: never its key or credential id."""

    id: uuid.UUID
    name: str
    created_at: datetime
    last_used_at: datetime | None

    @classmethod
    def of(cls, row: Passkey) -> PasskeyView:
        """The showable part of a stored passkey."""
        return cls(row.id, row.name, row.created_at, row.last_used_at)


@dataclass(frozen=True, slots=True)
class AuditEventView:
    """One audit event (which never holds a secret); ``created_at`` is when it happened."""

    id: uuid.UUID
    created_at: datetime
    event: str
    user_id: uuid.UUID | None
    session_id: uuid.UUID | None
    ip_address: str
    user_agent: str
    detail: str

    @classmethod
    def of(cls, row: AuditRecord) -> AuditEventView:
        """The view of a stored audit event."""
        return cls(
            row.id,
            row.created_at,
            row.event,
            row.user_id,
            row.session_id,
            row.ip_address,
            row.user_agent,
            row.detail,
        )


@dataclass(frozen=True, slots=True)
class EventView:
    """One account event as consumers see it; ``data`` holds its type's fields."""

    id: uuid.UUID
    position: int
    type: str
    time: datetime
    user_id: uuid.UUID | None
    session_id: uuid.UUID | None
    actor_kind: str
    actor_name: str
    data: Mapping[str, Any]

    @classmethod
    def of(cls, row: EventRow) -> EventView:
        """The view of a stored event (its data parsed from the stored JSON)."""
        data: dict[str, Any] = json.loads(row.data)
        return cls(
            row.id,
            row.position,
            row.type,
            row.time,
            row.user_id,
            row.session_id,
            row.actor_kind,
            row.actor_name,
            data,
        )
