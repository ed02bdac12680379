"""Model → protobuf. The only place that knows both shapes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Protocol

from google.protobuf.timestamp_pb2 import Timestamp

from authsvc.models import AuditRecord
from authsvc.v1 import auth_service_pb2 as pb
from authsvc.validation import Validated


class UserFields(Protocol):
    """What ``user`` reads: a models.User or a validation.UserView."""

    @property
    def id(self) -> uuid.UUID | str: ...
    @property
    def email(self) -> str: ...
    @property
    def first_name(self) -> str: ...
    @property
    def last_name(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def updated_at(self) -> datetime: ...


class SessionFields(Protocol):
    """What ``session`` reads: a models.Session or a validation.SessionView."""

    @property
    def id(self) -> uuid.UUID | str: ...
    @property
    def user_id(self) -> uuid.UUID | str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def expires_at(self) -> datetime: ...
    @property
    def refresh_expires_at(self) -> datetime: ...
    @property
    def user_agent(self) -> str: ...
    @property
    def ip_address(self) -> str: ...


def timestamp(value: datetime) -> Timestamp:
    """A protobuf Timestamp of an aware datetime."""
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def user(u: UserFields) -> pb.User:
    """The public view of a user: never anything about its password."""
    return pb.User(
        id=str(u.id),
        email=u.email,
        first_name=u.first_name,
        last_name=u.last_name,
        create_time=timestamp(u.created_at),
        update_time=timestamp(u.updated_at),
    )


def session(s: SessionFields) -> pb.Session:
    """The public view of a session: never a token or its hash."""
    return pb.Session(
        id=str(s.id),
        user_id=str(s.user_id),
        create_time=timestamp(s.created_at),
        expire_time=timestamp(s.expires_at),
        refresh_expire_time=timestamp(s.refresh_expires_at),
        user_agent=s.user_agent,
        ip_address=s.ip_address,
    )


def validation(v: Validated) -> pb.ValidateTokenResponse:
    """ValidateToken's response, rendered once per validated entry.

    A cache hit returns the same entry, so it reuses the message (gRPC only reads it
    to serialize) instead of building seven fields and five timestamps again.
    """
    if v.rendered is None:
        v.rendered = pb.ValidateTokenResponse(user=user(v.user), session=session(v.session))
    rendered: pb.ValidateTokenResponse = v.rendered
    return rendered


def audit_event(e: AuditRecord) -> pb.AuditEvent:
    """The public view of an audit event (which never holds a secret)."""
    return pb.AuditEvent(
        id=str(e.id),
        event_time=timestamp(e.created_at),
        type=f"AUDIT_EVENT_TYPE_{e.event}",
        user_id=str(e.user_id) if e.user_id else "",
        session_id=str(e.session_id) if e.session_id else "",
        ip_address=e.ip_address,
        user_agent=e.user_agent,
        detail=e.detail,
    )
