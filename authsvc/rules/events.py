"""Account events: the types and their data (declared once), and who made a change.

``EVENT_TYPES`` is the one table of event types: each type's name, what it means and the
fields of its ``data``. ``Change.event`` checks the data it is given against it, the
stream's ``types`` filter accepts only its names, and the README's "Events" section is
generated from it (``make gen``). ``data`` never holds a secret or a hash.

The actor is who made the change: the user themself (the flow says so: the user proved
it with a session, a password or a mailed token), or else the caller of the RPC (an API
key by name, an mTLS identity, or a caller without identity), or authsvc itself (the
command line, housekeeping). The edge knows the caller; it states it for the duration of
a call with ``calling_as``, so flows need not thread it through every command. Outside a
call (the command line, timers) the caller is the system.
"""

from __future__ import annotations

import enum
import json
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from authsvc.rules import cursors
from authsvc.rules.profile import EVENT_FIELDS
from authsvc.rules.values import Rejected
from authsvc.storage.models import EventRow


class ActorKind(enum.StrEnum):
    """What kind of actor made a change (the proto's ``ActorKind`` without its prefix)."""

    USER = "USER"
    API_KEY = "API_KEY"
    MTLS = "MTLS"
    SYSTEM = "SYSTEM"
    CALLER = "CALLER"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made a change: the user id (USER), the key's name (API_KEY), the certificate
    identity (MTLS), or nothing (SYSTEM, CALLER)."""

    kind: ActorKind
    name: str = ""

    @classmethod
    def user(cls, user_id: uuid.UUID) -> Actor:
        """The user themself."""
        return cls(ActorKind.USER, str(user_id))


SYSTEM = Actor(ActorKind.SYSTEM)
ANONYMOUS_CALLER = Actor(ActorKind.CALLER)

# Resolved only when an event is written: calls that write none (ValidateToken) pay nothing.
_caller: ContextVar[Callable[[], Actor]] = ContextVar("authsvc_caller", default=lambda: SYSTEM)


@contextmanager
def calling_as(resolve: Callable[[], Actor]) -> Iterator[None]:
    """Within the block, changes without a user actor are made by ``resolve()``."""
    token = _caller.set(resolve)
    try:
        yield
    finally:
        _caller.reset(token)


def current_caller() -> Actor:
    """The caller making changes now (the system outside an RPC)."""
    return _caller.get()()


@dataclass(frozen=True)
class EventType:
    """One event type: its dotted name, what it means, and its data fields (name → doc)."""

    name: str
    doc: str
    data: Mapping[str, str]


_WHY = "sign_out, revoked, password_changed, disabled, reuse_detected or deleted"

#: Every event type, in the order the README lists them. Add a type here, nowhere else.
EVENT_TYPES: tuple[EventType, ...] = (
    EventType(
        "user.created",
        "A user signed up (CreateUser).",
        EVENT_FIELDS,
    ),
    EventType(
        "user.updated",
        "UpdateUser changed the profile.",
        {
            "fields": "The names of the fields whose value changed (a list).",
            "old_email": "The previous email address when `email` changed, else empty.",
            "new_email": "The new email address when `email` changed, else empty.",
        },
    ),
    EventType("user.deleted", "The user was deleted.", {"email": "The email address it had."}),
    EventType("user.disabled", "The user was disabled (each session gets `session.revoked`).", {}),
    EventType("user.enabled", "The user was enabled again.", {}),
    EventType(
        "user.email_verified", "The user proved the email address.", {"email": "The address."}
    ),
    EventType(
        "user.password_changed",
        "The password changed (not when an imported hash is upgraded on sign-in).",
        {"how": "change (ChangePassword), reset (CompletePasswordReset) or set (SetPassword)."},
    ),
    EventType(
        "user.imported",
        "A user was imported (ImportUsers, `authsvc import-users`).",
        EVENT_FIELDS,
    ),
    EventType(
        "session.created",
        "A sign-in opened a session (password, second factor or passkey).",
        {
            "methods": "How the user authenticated (a list: PASSWORD, TOTP, RECOVERY_CODE, "
            "PASSKEY).",
            "assurance_level": "1, or 2 with a second factor or a passkey.",
            "ip_address": "The end user's address, as the caller sent it.",
            "user_agent": "The end user's user agent, as the caller sent it.",
        },
    ),
    EventType("session.revoked", "A session ended before its expiry.", {"why": _WHY}),
    EventType(
        "session.reuse_detected",
        "A rotated-away update token was presented again: likely theft. The session "
        "is revoked (`session.revoked`, why reuse_detected).",
        {},
    ),
    EventType("mfa.totp_enrolled", "The user confirmed a TOTP authenticator.", {}),
    EventType("mfa.totp_removed", "The user removed the TOTP (and its recovery codes).", {}),
    EventType(
        "passkey.added",
        "The user registered a passkey.",
        {"passkey_id": "The passkey's id.", "name": "Its name."},
    ),
    EventType("passkey.removed", "The user removed a passkey.", {"passkey_id": "Its id."}),
    EventType(
        "api_key.created",
        "An API key was created.",
        {"api_key_id": "The key's id.", "name": "The key's name (its callers' identity)."},
    ),
    EventType(
        "api_key.revoked",
        "An API key was revoked.",
        {"api_key_id": "The key's id.", "name": "The key's name."},
    ),
    EventType(
        "webhook.created",
        "A webhook endpoint was registered.",
        {"webhook_id": "Its id.", "url": "Its URL.", "types": "Its event types (a list)."},
    ),
    EventType(
        "webhook.deleted",
        "A webhook endpoint was deleted.",
        {"webhook_id": "Its id.", "url": "Its URL."},
    ),
)
EVENT_TYPE_NAMES = frozenset(t.name for t in EVENT_TYPES)
_BY_NAME = {t.name: t for t in EVENT_TYPES}
#: The type of the stream's keep-alive message (not stored, never filtered out).
HEARTBEAT = "heartbeat"


def event_row(
    type_name: str,
    *,
    time: datetime,
    actor: Actor,
    user_id: uuid.UUID | None,
    session_id: uuid.UUID | None,
    data: Mapping[str, Any],
) -> EventRow:
    """The outbox row of one event. Raises ValueError for an unknown type, or data
    fields other than its declared ones (a programming error)."""
    declared = _BY_NAME.get(type_name)
    if declared is None:
        raise ValueError(f"unknown event type {type_name!r}")
    if set(data) != set(declared.data):
        raise ValueError(f"{type_name} data must be {sorted(declared.data)}, not {sorted(data)}")
    return EventRow(
        id=uuid.uuid4(),
        type=type_name,
        time=time,
        created_at=time,
        updated_at=time,
        user_id=user_id,
        session_id=session_id,
        actor_kind=actor.kind.value,
        actor_name=actor.name,
        data=json.dumps(dict(data), separators=(",", ":"), sort_keys=True),
    )


def event_data(row: EventRow) -> dict[str, Any]:
    """The data of a stored event."""
    loaded: dict[str, Any] = json.loads(row.data)
    return loaded


#: The most type names a request may filter on (there are fewer types than this).
MAX_TYPE_FILTERS = 64


def after_cursor(text: str) -> int | None:
    """The position a consumer resumes after: 0 for "" (the oldest retained event), None
    for "now" (the end). Raises Rejected for anything that is not an event's cursor."""
    return None if text == "now" else cursors.EVENTS.after(text)


def event_type(name: str) -> str:
    """One event type name of a filter. Raises Rejected when no type has that name."""
    if name not in EVENT_TYPE_NAMES:
        raise Rejected("is not an event type (see the README's Events section)")
    return name


def type_count(names: Sequence[str]) -> Sequence[str]:
    """A filter's names, when there are not too many. Raises Rejected otherwise."""
    if len(names) > MAX_TYPE_FILTERS:
        raise Rejected(f"must name at most {MAX_TYPE_FILTERS} types")
    return names
