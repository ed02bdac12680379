"""The audit trail: which events are written, with what, and how they are listed and purged."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from sqlalchemy import select

from authsvc.rules import audit
from authsvc.rules.audit import AuditEvent
from authsvc.storage.models import AuditRecord, Session, ThrottleCounter, ThrottleFailure, User
from authsvc_client.v1 import auth_service_pb2 as pb
from tests.helpers import PASSWORD, fails, sign_in, sign_up

UA = "Mozilla/5.0 (X11; Linux x86_64)"
IP = "198.51.100.23"


def rows(database):
    """Every audit row, oldest first (ties in the order they were written)."""
    with database.transaction(writes=False) as db:
        return list(db.scalars(select(AuditRecord).order_by(AuditRecord.created_at)))


def summary(database):
    return [r.event for r in rows(database)]


def only(database, event):
    """The one row of ``event``."""
    (row,) = [r for r in rows(database) if r.event == event]
    return row


def test_sign_in_success_and_failures_are_audited(stub, database, clock):
    user = sign_up(stub)
    uid = uuid.UUID(user.id)
    clock.advance(timedelta(seconds=1))
    fails(stub.CreateSession, pb.CreateSessionRequest(email=user.email, password="wrong one"))
    clock.advance(timedelta(seconds=1))
    fails(
        stub.CreateSession,
        pb.CreateSessionRequest(
            email="nobody@example.com", password=PASSWORD, ip_address=IP, user_agent=UA
        ),
    )
    clock.advance(timedelta(seconds=1))
    s = sign_in(stub, ip_address=IP, user_agent=UA)
    created, wrong, unknown, ok = rows(database)
    assert (created.event, created.user_id) == ("USER_CREATED", uid)
    assert (wrong.event, wrong.user_id, wrong.ip_address) == ("SIGN_IN_FAILED", uid, "")
    assert (unknown.event, unknown.user_id) == ("SIGN_IN_FAILED", None)
    assert (unknown.ip_address, unknown.user_agent) == (IP, UA)
    assert unknown.detail == ""  # the unknown email is not kept
    assert (ok.event, ok.user_id, ok.session_id) == (
        "SIGN_IN_SUCCEEDED",
        uid,
        uuid.UUID(s.session.id),
    )
    assert (ok.ip_address, ok.user_agent, ok.created_at) == (IP, UA, clock.now)


def test_throttled_sign_in_is_audited(stub, database):
    user = sign_up(stub)
    for _ in range(5):
        fails(stub.CreateSession, pb.CreateSessionRequest(email=user.email, password="wrong"))
    request = pb.CreateSessionRequest(email=user.email, password=PASSWORD, ip_address=IP)
    assert fails(stub.CreateSession, request).reason == "TOO_MANY_ATTEMPTS"
    last = only(database, "SIGN_IN_THROTTLED")
    assert (last.event, last.user_id, last.ip_address) == (
        "SIGN_IN_THROTTLED",
        uuid.UUID(user.id),
        IP,
    )


def test_throttled_password_change_is_audited(stub, database):
    user = sign_up(stub)
    s = sign_in(stub)
    request = pb.ChangePasswordRequest(
        session_token=s.session_token,
        current_password="not it",
        new_password="another fine passphrase",
    )
    for _ in range(5):
        assert fails(stub.ChangePassword, request).reason == "INVALID_CREDENTIALS"
    assert fails(stub.ChangePassword, request).reason == "TOO_MANY_ATTEMPTS"
    got = [(e.event, e.user_id, e.session_id) for e in rows(database)]
    who = (uuid.UUID(user.id), uuid.UUID(s.session.id))
    assert sorted(e for e in got if e[0].startswith("PASSWORD")) == [
        ("PASSWORD_CHANGE_FAILED", *who)
    ] * 5 + [("PASSWORD_CHANGE_THROTTLED", *who)]


def test_session_lifecycle_and_user_changes_are_audited(stub, database):
    user = sign_up(stub)
    uid = uuid.UUID(user.id)
    s = sign_in(stub)
    sid = uuid.UUID(s.session.id)
    r = stub.RefreshSession(pb.RefreshSessionRequest(update_token=s.update_token))
    request = pb.ChangePasswordRequest(
        session_token=r.session_token,
        current_password="not it",
        new_password="another fine passphrase",
    )
    assert fails(stub.ChangePassword, request).reason == "INVALID_CREDENTIALS"
    stub.ChangePassword(
        pb.ChangePasswordRequest(
            session_token=r.session_token,
            current_password=PASSWORD,
            new_password="another fine passphrase",
        )
    )
    stub.DeleteSession(pb.DeleteSessionRequest(session_token=r.session_token))
    stub.DeleteUser(pb.DeleteUserRequest(id=user.id))
    got = [(e.event, e.user_id, e.session_id) for e in rows(database)]
    # Sorted: events of one instant have no order.
    assert sorted(got, key=str) == sorted(
        [
            ("USER_CREATED", uid, None),
            ("SIGN_IN_SUCCEEDED", uid, sid),
            ("SESSION_REFRESHED", uid, sid),
            ("PASSWORD_CHANGE_FAILED", uid, sid),
            ("PASSWORD_CHANGED", uid, sid),
            ("SIGNED_OUT", uid, sid),
            ("USER_DELETED", uid, None),
        ],
        key=str,
    )


def test_theft_detection_is_audited_although_the_call_fails(stub, database):
    user = sign_up(stub)
    s = sign_in(stub)
    stub.RefreshSession(pb.RefreshSessionRequest(update_token=s.update_token))
    reused = fails(stub.RefreshSession, pb.RefreshSessionRequest(update_token=s.update_token))
    assert reused.reason == "REFRESH_TOKEN_REUSED"
    theft = only(database, "REFRESH_TOKEN_REUSED")
    assert (theft.event, theft.user_id, theft.session_id) == (
        "REFRESH_TOKEN_REUSED",
        uuid.UUID(user.id),
        uuid.UUID(s.session.id),
    )
    with database.transaction(writes=False) as db:
        assert db.get(Session, uuid.UUID(s.session.id)) is None  # and the revocation too


def test_a_change_that_fails_leaves_no_event(stub, database):
    user = sign_up(stub)
    fails(
        stub.CreateUser,
        pb.CreateUserRequest(email=user.email, password=PASSWORD, first_name="A", last_name="B"),
    )
    fails(stub.DeleteUser, pb.DeleteUserRequest(id=str(uuid.uuid4())))
    fails(stub.DeleteSession, pb.DeleteSessionRequest(session_token="asv_st_" + "A" * 43))
    fails(stub.RefreshSession, pb.RefreshSessionRequest(update_token="asv_ut_" + "A" * 43))
    assert summary(database) == ["USER_CREATED"]


def test_no_secret_ever_reaches_the_audit_trail(stub, database):
    sign_up(stub)
    s = sign_in(stub, ip_address=IP, user_agent=UA)
    r = stub.RefreshSession(pb.RefreshSessionRequest(update_token=s.update_token))
    fails(stub.RefreshSession, pb.RefreshSessionRequest(update_token=s.update_token))
    s2 = sign_in(stub)
    stub.ChangePassword(
        pb.ChangePasswordRequest(
            session_token=s2.session_token,
            current_password=PASSWORD,
            new_password="another fine passphrase",
        )
    )
    fails(stub.CreateSession, pb.CreateSessionRequest(email="x@example.com", password="guess-1"))
    with database.transaction(writes=False) as db:
        password_hash = db.scalars(select(User.password_hash)).one()
    secrets = [
        PASSWORD,
        "another fine passphrase",
        "guess-1",
        "x@example.com",
        password_hash,
        s.session_token,
        s.update_token,
        r.session_token,
        r.update_token,
        s2.session_token,
        s2.update_token,
    ]
    stored = " ".join(repr(vars(e)) for e in rows(database))
    listed = stub.ListAuditEvents(pb.ListAuditEventsRequest()).SerializeToString()
    assert len(rows(database)) == 7
    for secret in secrets:
        assert secret not in stored
        assert secret.encode() not in listed


def list_all(stub, **kw):
    pages, token = [], ""
    while True:
        reply = stub.ListAuditEvents(pb.ListAuditEventsRequest(page_token=token, **kw))
        pages.append(list(reply.audit_events))
        token = reply.next_page_token
        if not token:
            return pages


def test_list_audit_events_pages_newest_first(stub, clock):
    for i in range(7):
        sign_up(stub, f"user{i}@example.com")
        clock.advance(timedelta(seconds=1))
    pages = list_all(stub, page_size=3)
    assert [len(p) for p in pages] == [3, 3, 1]
    events = [e for page in pages for e in page]
    times = [e.event_time.ToDatetime() for e in events]
    assert times == sorted(times, reverse=True)
    assert len({e.id for e in events}) == 7
    assert {e.type for e in events} == {pb.AUDIT_EVENT_TYPE_USER_CREATED}
    assert events[0].event_time.ToDatetime() == (clock.now - timedelta(seconds=1)).replace(
        tzinfo=None
    )
    assert len(list_all(stub)[0]) == 7  # page_size 0 means 50


def test_list_audit_events_pages_through_events_of_the_same_instant(stub):
    for i in range(5):
        sign_up(stub, f"user{i}@example.com")  # the clock does not move
    events = [e.id for page in list_all(stub, page_size=2) for e in page]
    assert len(events) == len(set(events)) == 5


def test_list_audit_events_of_one_user(stub, clock):
    ada = sign_up(stub)
    bob = sign_up(stub, "bob@example.com")
    clock.advance(timedelta(seconds=1))
    sign_in(stub, ip_address=IP, user_agent=UA)
    sign_in(stub, email="bob@example.com")
    events = list_all(stub, user_id=ada.id)[0]
    assert [e.type for e in events] == [
        pb.AUDIT_EVENT_TYPE_SIGN_IN_SUCCEEDED,
        pb.AUDIT_EVENT_TYPE_USER_CREATED,
    ]
    signed_in = events[0]
    assert (signed_in.user_id, signed_in.ip_address, signed_in.user_agent) == (ada.id, IP, UA)
    assert signed_in.session_id
    assert all(e.user_id == bob.id for e in list_all(stub, user_id=bob.id)[0])


@pytest.mark.parametrize(
    ("request_kw", "field"),
    [
        ({"user_id": "not-a-uuid"}, "user_id"),
        ({"page_size": -1}, "page_size"),
        ({"page_token": "garbage"}, "page_token"),
    ],
)
def test_list_audit_events_bad_requests_name_the_field(stub, request_kw, field):
    f = fails(stub.ListAuditEvents, pb.ListAuditEventsRequest(**request_kw))
    assert (f.code, f.fields) == (grpc.StatusCode.INVALID_ARGUMENT, [field])


def test_a_page_token_is_only_good_for_its_filter(stub):
    ada = sign_up(stub)
    sign_up(stub, "bob@example.com")
    token = stub.ListAuditEvents(pb.ListAuditEventsRequest(page_size=1)).next_page_token
    assert token
    request = pb.ListAuditEventsRequest(page_size=1, user_id=ada.id, page_token=token)
    assert fails(stub.ListAuditEvents, request).fields == ["page_token"]


def test_record_is_the_api_for_caller_denied(stub, database, clock):
    with database.transaction() as db:
        audit.record(
            db,
            AuditEvent.CALLER_DENIED,
            time=clock.now,
            ip_address="ipv6:[::1]:5000" * 10,
            detail="CN=web /authsvc.v1.AuthService/ListUsers",
        )
    (event,) = list_all(stub)[0]
    assert event.type == pb.AUDIT_EVENT_TYPE_CALLER_DENIED
    assert event.detail == "CN=web /authsvc.v1.AuthService/ListUsers"
    assert (event.user_id, event.session_id) == ("", "")
    assert len(event.ip_address) == 45  # cut to fit, never an error


def test_every_event_has_a_proto_type():
    names = {v.name for v in pb.AuditEventType.DESCRIPTOR.values}
    assert {f"AUDIT_EVENT_TYPE_{e.name}" for e in AuditEvent} | {
        "AUDIT_EVENT_TYPE_UNSPECIFIED"
    } == names


def test_purge_deletes_events_past_the_retention(server_and_stub, database, clock):
    server, stub = server_and_stub
    sign_up(stub)
    clock.advance(timedelta(days=60))
    sign_up(stub, "bob@example.com")
    clock.advance(timedelta(days=31))
    server.flows.housekeeping.purge()  # as `authsvc purge` and serve's purge timer do
    kept, purged = rows(database)
    assert (kept.event, kept.created_at) == ("USER_CREATED", clock.now - timedelta(days=31))
    assert purged.event == "DATA_PURGED"


def test_a_purge_is_audited_with_how_many_rows_of_each_kind_it_deleted(
    server_and_stub, database, clock
):
    server, stub = server_and_stub
    sign_up(stub)
    sign_in(stub)
    fails(stub.CreateSession, pb.CreateSessionRequest(email="a@example.com", password="x"))
    clock.advance(timedelta(days=91))
    done = server.flows.housekeeping.purge()
    purged = only(database, "DATA_PURGED")
    counts = dict(pair.split("=") for pair in purged.detail.split())
    assert (purged.user_id, purged.created_at) == (None, clock.now)
    assert counts == {kind: str(count) for kind, count in vars(done).items()}
    assert (counts["sessions"], counts["audit_events"]) == ("1", "3")
    assert counts["throttle_rows"] != "0"  # the failed sign-in's


def test_a_purge_that_deletes_nothing_audits_nothing(server_and_stub, database):
    server, stub = server_and_stub
    sign_up(stub)
    assert not server.flows.housekeeping.purge().anything
    assert summary(database) == ["USER_CREATED"]


def test_purge_deletes_stale_throttling_state(server_and_stub, database, clock):
    server, stub = server_and_stub
    for _ in range(3):
        fails(stub.CreateSession, pb.CreateSessionRequest(email="a@example.com", password="x"))

    def purged():
        done = server.flows.housekeeping.purge()
        return done.audit_events, done.throttle_rows

    assert purged() == (0, 0)  # still in use
    clock.advance(timedelta(days=1))
    assert purged() == (0, 4)  # 3 failures and their counter
    with database.transaction(writes=False) as db:
        assert db.scalars(select(ThrottleCounter)).all() == []
        assert db.scalars(select(ThrottleFailure)).all() == []


def test_purge_command_purges_old_audit_events(db_url, database):
    now = datetime.now(UTC)
    with database.transaction() as db:
        audit.record(db, AuditEvent.USER_CREATED, time=now - timedelta(days=11))
        audit.record(db, AuditEvent.USER_DELETED, time=now - timedelta(days=9))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSVC_")}
    env |= {"AUTHSVC_DATABASE_URL": db_url, "AUTHSVC_AUDIT_RETENTION": "10d"}
    done = subprocess.run(
        [sys.executable, "-m", "authsvc", "purge"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "purged 1 audit events" in done.stdout
    assert summary(database) == ["USER_DELETED", "DATA_PURGED"]
    assert "audit_events=1" in only(database, "DATA_PURGED").detail.split()
