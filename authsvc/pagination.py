"""Opaque page tokens for keyset pagination over (created_at, id) (AIP-158).

A token names the last row of the previous page and the query it belongs to, so a
token from another query (another user's sessions) is refused.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy import Select, tuple_
from sqlalchemy.orm import Session

from authsvc.errors import InvalidArgument
from authsvc.models import Base

M = TypeVar("M", bound=Base)


@dataclass(frozen=True)
class Cursor:
    """The position after which the next page starts."""

    created_at: datetime
    id: uuid.UUID


def encode(cursor: Cursor, scope: str) -> str:
    """The page token for ``cursor`` within the query named by ``scope``."""
    payload = {"c": cursor.created_at.isoformat(), "i": str(cursor.id), "s": scope}
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(token: str, scope: str, field: str = "page_token") -> Cursor | None:
    """The cursor in ``token`` (None for the first page); raises InvalidArgument."""
    if not token:
        return None
    cursor = _parse(token, scope)
    if cursor is None:
        raise InvalidArgument.of(field, "is not a page token of this request")
    return cursor


def _parse(token: str, scope: str) -> Cursor | None:
    # Page tokens come from callers: anything may be in them (wrong JSON types, dates
    # that overflow when moved to UTC, nesting deep enough to exhaust the recursion limit).
    try:
        payload = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if not isinstance(payload, dict) or payload.get("s") != scope:
            return None
        created_at, row_id = payload.get("c"), payload.get("i")
        if not isinstance(created_at, str) or not isinstance(row_id, str):
            return None
        when = datetime.fromisoformat(created_at)
        if when.tzinfo is None:
            return None
        return Cursor(when.astimezone(UTC), uuid.UUID(row_id))
    except (ValueError, OverflowError, RecursionError, binascii.Error):
        return None  # UnicodeDecodeError and JSONDecodeError are ValueErrors


def page(
    db: Session,
    query: Select[M],
    model: type[M],
    size: int,
    token: str,
    scope: str,
    *,
    newest_first: bool = False,
) -> tuple[list[M], str]:
    """One page of ``query``'s rows, oldest (or newest) first, and the next page's token
    ("" on the last).

    Raises InvalidArgument for a token that is not from this ``scope``.
    """
    cursor = decode(token, scope)
    position = tuple_(model.created_at, model.id)
    if newest_first:
        query = query.order_by(model.created_at.desc(), model.id.desc())
    else:
        query = query.order_by(model.created_at, model.id)
    query = query.limit(size + 1)
    if cursor:
        after = (cursor.created_at, cursor.id)
        query = query.where(position < after if newest_first else position > after)
    rows = list(db.scalars(query))
    if len(rows) <= size:
        return rows, ""
    last = rows[size - 1]
    return rows[:size], encode(Cursor(last.created_at, last.id), scope)
