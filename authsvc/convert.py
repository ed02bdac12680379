"""Model → protobuf. The only place that knows both shapes."""

from __future__ import annotations

from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp

from authsvc import models
from authsvc.v1 import auth_service_pb2 as pb


def timestamp(value: datetime) -> Timestamp:
    """A protobuf Timestamp of an aware datetime."""
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def user(u: models.User) -> pb.User:
    """The public view of a user: never anything about its password."""
    return pb.User(
        id=str(u.id),
        email=u.email,
        first_name=u.first_name,
        last_name=u.last_name,
        create_time=timestamp(u.created_at),
        update_time=timestamp(u.updated_at),
    )


def session(s: models.Session) -> pb.Session:
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
