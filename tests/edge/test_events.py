"""Account events over gRPC: which changes write which events, ListEvents and WatchEvents."""

from __future__ import annotations

import uuid
from datetime import timedelta

import grpc
import pytest
from google.protobuf.json_format import MessageToDict
from sqlalchemy import select

from authsvc.edge.caller_interceptor import caller_actor
from authsvc.rules.events import EVENT_TYPES, Actor, ActorKind
from authsvc.storage.models import AuditRecord
from authsvc_client.v1 import auth_service_pb2 as pb
from tests.helpers import PASSWORD, fails, sign_in, sign_up, wait_until

HEARTBEAT = timedelta(milliseconds=200)


@pytest.fixture
def server_and_stub(start_server):
    return start_server(event_heartbeat_interval=HEARTBEAT)


def listed(stub, after="", types=(), page_size=1000):
    reply = stub.ListEvents(
        pb.ListEventsRequest(after_cursor=after, types=types, page_size=page_size), timeout=10
    )
    return list(reply.events)


def data(event):
    return MessageToDict(event.data)


def kinds(stub, **kw):
    return [e.type for e in listed(stub, **kw)]


def next_event(stream):
    """The stream's next event, past any heartbeat."""
    while (item := next(stream)).type == "heartbeat":
        pass
    return item


def test_sign_up_and_profile_changes_write_their_events(stub, database):
    user = sign_up(stub)
    stub.UpdateUser(
        pb.UpdateUserRequest(
            user=pb.User(id=user.id, email="ada@example.org", first_name="Ada"),
            update_mask={"paths": ["email", "first_name"]},
        ),
        timeout=10,
    )
    created, updated = listed(stub)
    assert (created.type, created.user_id) == ("user.created", user.id)
    assert data(created) == {
        "email": "ada@example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
    }
    assert created.actor.kind == pb.ACTOR_KIND_CALLER  # loopback, no key
    assert uuid.UUID(created.id) and created.cursor < updated.cursor
    # Only the fields whose value changed, and both addresses.
    assert data(updated) == {
        "fields": ["email"],
        "old_email": "ada@example.com",
        "new_email": "ada@example.org",
    }
    with database.transaction(writes=False) as db:
        (row,) = db.scalars(select(AuditRecord).where(AuditRecord.event == "USER_UPDATED"))
    assert (str(row.user_id), row.detail) == (user.id, "email")


def test_sessions_write_created_and_revoked_with_why(stub):
    user = sign_up(stub)
    signed_in = sign_in(stub, ip_address="198.51.100.7", user_agent="curl/8")
    stub.ValidateToken(pb.ValidateTokenRequest(session_token=signed_in.session_token), timeout=10)
    stub.DeleteSession(pb.DeleteSessionRequest(session_token=signed_in.session_token), timeout=10)
    other = sign_in(stub)
    stub.RevokeSession(pb.RevokeSessionRequest(session_id=other.session.id), timeout=10)
    _, created, signed_out, _, revoked = listed(stub)  # ValidateToken wrote nothing
    assert (created.type, created.session_id) == ("session.created", signed_in.session.id)
    assert data(created) == {
        "methods": ["PASSWORD"],
        "assurance_level": 1,
        "ip_address": "198.51.100.7",
        "user_agent": "curl/8",
    }
    assert (created.actor.kind, created.actor.name) == (pb.ACTOR_KIND_USER, user.id)
    assert (signed_out.type, data(signed_out)) == ("session.revoked", {"why": "sign_out"})
    assert signed_out.actor.kind == pb.ACTOR_KIND_USER
    assert (revoked.session_id, data(revoked)) == (other.session.id, {"why": "revoked"})
    assert revoked.actor.kind == pb.ACTOR_KIND_CALLER


def test_failed_attempts_write_no_event(stub):
    sign_up(stub)
    fails(stub.CreateSession, pb.CreateSessionRequest(email="ada@example.com", password="nope"))
    fails(stub.CreateSession, pb.CreateSessionRequest(email="bob@example.com", password="nope"))
    assert kinds(stub) == ["user.created"]


def test_lifecycle_events_carry_why_and_how(stub):
    user = sign_up(stub)
    session = sign_in(stub).session
    new_password = pb.SetPasswordRequest(user_id=user.id, new_password=PASSWORD + "!")
    stub.SetPassword(new_password, timeout=10)
    first = sign_in(stub, password=PASSWORD + "!")
    kept = sign_in(stub, password=PASSWORD + "!")
    stub.ChangePassword(
        pb.ChangePasswordRequest(
            session_token=kept.session_token,
            current_password=PASSWORD + "!",
            new_password=PASSWORD,
        ),
        timeout=10,
    )
    stub.DisableUser(pb.DisableUserRequest(id=user.id), timeout=10)
    stub.DisableUser(pb.DisableUserRequest(id=user.id), timeout=10)  # no change: no event
    stub.EnableUser(pb.EnableUserRequest(id=user.id), timeout=10)
    stub.DeleteUser(pb.DeleteUserRequest(id=user.id), timeout=10)
    summary = [
        (e.type, e.session_id, data(e).get("why") or data(e).get("how")) for e in listed(stub)
    ][2:]
    assert summary == [
        ("session.revoked", session.id, "password_changed"),
        ("user.password_changed", "", "set"),
        ("session.created", first.session.id, None),
        ("session.created", kept.session.id, None),
        ("session.revoked", first.session.id, "password_changed"),
        ("user.password_changed", kept.session.id, "change"),
        ("session.revoked", kept.session.id, "disabled"),
        ("user.disabled", "", None),
        ("user.enabled", "", None),
        ("user.deleted", "", None),
    ]
    assert data(listed(stub)[-1]) == {"email": "ada@example.com"}


def test_refresh_token_reuse_is_detected_and_revokes(stub):
    sign_up(stub)
    signed_in = sign_in(stub)
    old = signed_in.update_token
    stub.RefreshSession(pb.RefreshSessionRequest(update_token=old), timeout=10)
    fails(stub.RefreshSession, pb.RefreshSessionRequest(update_token=old))
    reused, revoked = listed(stub)[-2:]
    assert (reused.type, reused.session_id) == ("session.reuse_detected", signed_in.session.id)
    assert (revoked.type, data(revoked)) == ("session.revoked", {"why": "reuse_detected"})
    assert revoked.actor.kind == pb.ACTOR_KIND_SYSTEM


def test_list_events_pages_and_filters(stub):
    for i in range(5):
        sign_up(stub, email=f"u{i}@example.com")
        sign_in(stub, email=f"u{i}@example.com")
    first = stub.ListEvents(pb.ListEventsRequest(page_size=3), timeout=10)
    assert len(first.events) == 3 and first.next_cursor == first.events[-1].cursor
    rest = listed(stub, after=first.next_cursor)
    assert [e.type for e in first.events] + [e.type for e in rest] == kinds(stub)
    assert len(rest) == 7
    assert kinds(stub, types=["session.created"]) == ["session.created"] * 5
    empty = stub.ListEvents(pb.ListEventsRequest(after_cursor=rest[-1].cursor), timeout=10)
    assert (list(empty.events), empty.next_cursor) == ([], rest[-1].cursor)


# "ffff…": no position is that large (it was INTERNAL on SQLite); "r1": a revocation cursor.
@pytest.mark.parametrize("bad", ["nope", "00000000000000zz", " now", "1", "f" * 16, "r1"])
def test_a_malformed_cursor_is_an_invalid_argument(stub, bad):
    for call, request in (
        (stub.ListEvents, pb.ListEventsRequest(after_cursor=bad)),
        (
            lambda r, timeout: next(stub.WatchEvents(r, timeout=timeout)),
            pb.WatchEventsRequest(after_cursor=bad),
        ),
    ):
        failure = fails(call, request)
        assert (failure.code, failure.reason) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_ARGUMENT",
        )
        assert failure.fields == ["after_cursor"]


def test_an_unknown_type_is_an_invalid_argument(stub):
    request = pb.WatchEventsRequest(types=["user.created", "user.exploded"])
    failure = fails(lambda r, timeout: next(stub.WatchEvents(r, timeout=timeout)), request)
    assert (failure.code, failure.fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["types[1]"])
    failure = fails(stub.ListEvents, pb.ListEventsRequest(types=["heartbeat"]))
    assert failure.fields == ["types[0]"]


def test_watch_sends_existing_then_new_events_then_heartbeats(stub):
    sign_up(stub, email="a@example.com")
    stream = stub.WatchEvents(pb.WatchEventsRequest(), timeout=30)
    try:
        first = next(stream)
        assert (first.type, data(first)["email"]) == ("user.created", "a@example.com")
        sign_up(stub, email="b@example.com")
        second = next_event(stream)
        assert (second.type, data(second)["email"]) == ("user.created", "b@example.com")
        beat = next(stream)  # nothing else happens: a heartbeat with the current cursor
        assert (beat.type, beat.cursor, beat.id) == ("heartbeat", second.cursor, "")
        assert beat.HasField("time")
    finally:
        stream.cancel()


def test_watch_from_now_and_with_types(stub):
    sign_up(stub, email="a@example.com")
    now = stub.WatchEvents(pb.WatchEventsRequest(after_cursor="now"), timeout=30)
    only_sessions = stub.WatchEvents(pb.WatchEventsRequest(types=["session.created"]), timeout=30)
    try:
        beat = next(now)  # nothing new yet
        assert beat.type == "heartbeat"
        sign_up(stub, email="b@example.com")
        sign_in(stub, email="b@example.com")
        got = [next_event(now), next_event(now)]
        assert [e.type for e in got] == ["user.created", "session.created"]
        assert data(got[0])["email"] == "b@example.com"
        session = next_event(only_sessions)
        assert (session.type, session.cursor) == ("session.created", got[1].cursor)
        assert next(only_sessions).type == "heartbeat"
    finally:
        now.cancel()
        only_sessions.cancel()


def test_a_cursor_older_than_the_retention_has_expired(server_and_stub, clock):
    server, stub = server_and_stub
    sign_up(stub, email="a@example.com")
    sign_up(stub, email="b@example.com")
    oldest, kept = listed(stub)
    clock.advance(timedelta(days=8))
    sign_up(stub, email="c@example.com")
    assert server.flows.housekeeping.purge().events == 1
    assert listed(stub)[0].cursor == kept.cursor  # the newest old one stays
    for call, request in (
        (stub.ListEvents, pb.ListEventsRequest(after_cursor=oldest.cursor)),
        (
            lambda r, timeout: next(stub.WatchEvents(r, timeout=timeout)),
            pb.WatchEventsRequest(after_cursor=oldest.cursor),
        ),
    ):
        failure = fails(call, request)
        assert (failure.code, failure.reason) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            "CURSOR_EXPIRED",
        )
    assert [data(e)["email"] for e in listed(stub, after=kept.cursor)] == ["c@example.com"]


def test_one_stream_too_many_is_refused_at_once(start_server):
    _, stub = start_server(event_streams=1, event_heartbeat_interval=HEARTBEAT)
    first = stub.WatchEvents(pb.WatchEventsRequest(), timeout=30)
    try:
        assert next(first).type == "heartbeat"
        failure = fails(
            lambda r, timeout: next(stub.WatchEvents(r, timeout=timeout)), pb.WatchEventsRequest()
        )
        assert (failure.code, failure.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "OVERLOADED")
    finally:
        first.cancel()
    # The slot comes free once the consumer is gone.
    wait_until(lambda: _streams_again(stub), what="the stream to serve again")


def _streams_again(stub):
    stream = stub.WatchEvents(pb.WatchEventsRequest(), timeout=10)
    try:
        return next(stream).type == "heartbeat"
    except grpc.RpcError:
        return False
    finally:
        stream.cancel()


def test_every_type_has_documented_data():
    for declared in EVENT_TYPES:
        assert declared.doc and all(declared.data.values()), declared.name


class FakeContext:
    """What ``caller_actor`` reads of a call: its certificate's identities."""

    def __init__(self, auth: dict[str, list[bytes]]) -> None:
        self._auth = auth

    def auth_context(self) -> dict[str, list[bytes]]:
        return self._auth


def test_the_caller_is_its_key_then_its_certificate_then_anonymous():
    cert = FakeContext({"x509_common_name": [b"orders"], "peer_dns": [b"orders.internal"]})
    assert caller_actor(cert, ("billing",)) == Actor(ActorKind.API_KEY, "billing")
    assert caller_actor(cert, ()) == Actor(ActorKind.MTLS, "orders")
    assert caller_actor(FakeContext({}), ()) == Actor(ActorKind.CALLER)
