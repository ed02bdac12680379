"""The read model of a validated token: its user and session, declared once.

``USER_COLUMNS`` and ``SESSION_COLUMNS`` name what ValidateToken returns; ``STATEMENT``
selects them through the unique index on ``sessions.token_hash``; ``from_row`` maps a
row (values already converted to Python by the columns' types) to a ``Validated``. The
fast lookup (``storage.token_lookup``, raw DB-API on both databases) and the ORM paths
(``lookup_in``, inside a flow's transaction) share all three, so a new field is one
column here, one field of its view, and one line where the edge renders it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session as DbSession

from authsvc.storage.models import Authentication, Session, User

USER_COLUMNS = (
    User.id,
    User.email,
    User.first_name,
    User.last_name,
    User.created_at,
    User.updated_at,
    User.email_verified_at,
    User.disabled_at,
    User.locale,
)
SESSION_COLUMNS = (
    Session.id,
    Session.user_id,
    Session.created_at,
    Session.expires_at,
    Session.refresh_expires_at,
    Session.user_agent,
    Session.ip_address,
    Session.authentication_methods,
)

#: The user and session of a token digest (parameter ``digest``).
STATEMENT = (
    select(*USER_COLUMNS, *SESSION_COLUMNS)
    .join_from(Session, User, Session.user_id == User.id)
    .where(Session.token_hash == bindparam("digest"))
    # Disabling a user deletes its sessions; this keeps a session that raced past it
    # (or one made by hand) from ever validating.
    .where(User.disabled_at.is_(None))
)


#: The user and session of a session id (parameter ``session_id``): access tokens.
BY_SESSION_ID = (
    select(*USER_COLUMNS, *SESSION_COLUMNS)
    .join_from(Session, User, Session.user_id == User.id)
    .where(Session.id == bindparam("session_id"))
    .where(User.disabled_at.is_(None))
)


@dataclass(frozen=True, slots=True)
class UserView:
    """The public fields of a user, as ValidateToken returns them (ids as canonical text)."""

    id: str
    email: str
    first_name: str
    last_name: str
    created_at: datetime
    updated_at: datetime
    email_verified_at: datetime | None
    disabled_at: datetime | None
    locale: str


@dataclass(frozen=True, slots=True)
class SessionView:
    """The public fields of a session: what ValidateToken, ListSessions, a sign-in, a
    refresh and a step-up return (never a token or its digest)."""

    id: uuid.UUID
    user_id: uuid.UUID
    created_at: datetime
    expires_at: datetime
    refresh_expires_at: datetime
    user_agent: str
    ip_address: str
    authentication_methods: tuple[Authentication, ...]

    @classmethod
    def of(cls, row: Session) -> SessionView:
        """The view of a stored session (loaded, or just written and flushed)."""
        return cls(*(getattr(row, column.key) for column in SESSION_COLUMNS))

    def authenticated_since(self) -> datetime | None:
        """When the session last proved any method (None: never recorded)."""
        return max((a.time for a in self.authentication_methods), default=None)


@dataclass(frozen=True, slots=True, eq=False, weakref_slot=True)
class Validated:
    """A live token's user and session: what the validation cache holds.

    Compared by identity, so the edge can key what it renders for it on the object.
    """

    user: UserView
    session: SessionView

    @property
    def session_id(self) -> str:
        """The session's id (canonical UUID text), for invalidation."""
        return str(self.session.id)

    @property
    def user_id(self) -> str:
        """The user's id (canonical UUID text), for invalidation."""
        return self.user.id


_USERS = len(USER_COLUMNS)


def from_row(row: Sequence[Any]) -> Validated:
    """The Validated of one row of ``STATEMENT`` (typed values: UUIDs, aware datetimes)."""
    user = UserView(*_ids(row[:_USERS]))
    return Validated(user, SessionView(*row[_USERS:]))


def _ids(values: Sequence[Any]) -> list[Any]:
    return [str(v) if isinstance(v, uuid.UUID) else v for v in values]


def lookup_in(db: DbSession, digest: bytes) -> Validated | None:
    """The Validated of ``digest`` inside a transaction (the ORM paths), if any."""
    row = db.execute(STATEMENT, {"digest": digest}).one_or_none()
    return None if row is None else from_row(row)


def session_in(db: DbSession, session_id: uuid.UUID) -> Validated | None:
    """The Validated of a session by id inside a transaction (access tokens), if any."""
    row = db.execute(BY_SESSION_ID, {"session_id": session_id}).one_or_none()
    return None if row is None else from_row(row)
