"""Opaque page tokens (AIP-158) over storage's keyset cursors.

A token names the last row of the previous page and the request it belongs to (its
scope: the RPC and its filter), so a token from another request (another user's
sessions) is refused.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from authsvc.rules.values import Rejected
from authsvc.storage.paging import Cursor


def encode(cursor: Cursor | None, scope: str) -> str:
    """The page token for ``cursor`` within the request named by ``scope`` ("" for none)."""
    if cursor is None:
        return ""
    payload = {"c": cursor.created_at.isoformat(), "i": str(cursor.id), "s": scope}
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decoder(scope: str) -> Callable[[str], Cursor | None]:
    """A parser of page tokens of ``scope``: None for the first page; raises Rejected."""

    def decode(token: str) -> Cursor | None:
        if not token:
            return None
        cursor = _parse(token, scope)
        if cursor is None:
            raise Rejected("is not a page token of this request")
        return cursor

    return decode


def encode_position(position: int | None, scope: str) -> str:
    """The page token of a listing ordered by a position (webhook deliveries)."""
    if position is None:
        return ""
    raw = json.dumps({"p": position, "s": scope}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def position_decoder(scope: str) -> Callable[[str], int | None]:
    """A parser of ``encode_position`` tokens of ``scope``: None for the first page;
    raises Rejected."""

    def decode(token: str) -> int | None:
        if not token:
            return None
        try:
            payload = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        except (ValueError, RecursionError, binascii.Error):
            payload = None
        if not isinstance(payload, dict) or payload.get("s") != scope:
            raise Rejected("is not a page token of this request")
        position = payload.get("p")
        if type(position) is not int or not 0 < position < 2**63:
            raise Rejected("is not a page token of this request")
        return position

    return decode


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
        if not (created_at.isascii() and row_id.isascii()):
            return None  # int() inside these parsers would read "١٢" as 12
        when = datetime.fromisoformat(created_at)
        if when.tzinfo is None:
            return None
        return Cursor(when.astimezone(UTC), uuid.UUID(row_id))
    except (ValueError, OverflowError, RecursionError, binascii.Error):
        return None  # UnicodeDecodeError and JSONDecodeError are ValueErrors


# The scopes of the listing RPCs: a token is valid only for the request it came from.


def users_scope() -> str:
    """ListUsers."""
    return "users"


def sessions_scope(user_id: uuid.UUID | None) -> str:
    """ListSessions of one user."""
    return f"sessions:{user_id}"


def audit_scope(user_id: uuid.UUID | None) -> str:
    """ListAuditEvents, of one user or of all (``*``)."""
    return f"audit:{user_id or '*'}"


def deliveries_scope(webhook_id: uuid.UUID | None) -> str:
    """ListWebhookDeliveries of one endpoint."""
    return f"deliveries:{webhook_id}"
