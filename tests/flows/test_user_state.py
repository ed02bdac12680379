"""Disabling and enabling users, revoking sessions by id or all at once, SetPassword."""

from __future__ import annotations

import uuid
from datetime import timedelta

import grpc
import pytest

from authsvc.rules.sessions import SessionPolicy, open_session
from authsvc_client.v1 import auth_service_pb2 as pb
from tests.flows.lifecycle_helpers import (
    NEW_PASSWORD,
    disable,
    enable,
    events,
    race_each,
    start_reset,
)
from tests.helpers import PASSWORD, fails, sign_in, sign_up

PERMISSION_DENIED = grpc.StatusCode.PERMISSION_DENIED


def validate_reason(stub, token) -> str:
    return fails(stub.ValidateToken, pb.ValidateTokenRequest(session_token=token)).reason


def sessions_of(stub, user_id) -> list[pb.Session]:
    return list(stub.ListSessions(pb.ListSessionsRequest(user_id=user_id), timeout=10).sessions)


def test_disabling_ends_every_session_and_refuses_everything(stub, database):
    user = sign_up(stub)
    a, b = sign_in(stub), sign_in(stub)
    disabled = disable(stub, user.id).user
    assert disabled.state == pb.USER_STATE_DISABLED
    for s in (a, b):
        assert validate_reason(stub, s.session_token) == "TOKEN_INVALID"
        got = fails(stub.RefreshSession, pb.RefreshSessionRequest(update_token=s.update_token))
        assert got.code == grpc.StatusCode.UNAUTHENTICATED
    assert sessions_of(stub, user.id) == []
    right = fails(
        stub.CreateSession, pb.CreateSessionRequest(email="ada@example.com", password=PASSWORD)
    )
    assert (right.code, right.reason) == (PERMISSION_DENIED, "USER_DISABLED")
    wrong = fails(
        stub.CreateSession,
        pb.CreateSessionRequest(email="ada@example.com", password="not the password"),
    )
    assert (wrong.code, wrong.reason) == (grpc.StatusCode.UNAUTHENTICATED, "INVALID_CREDENTIALS")
    assert start_reset(stub).reset_token == ""
    got = fails(stub.StartEmailVerification, pb.StartEmailVerificationRequest(user_id=user.id))
    assert got.reason == "USER_DISABLED"
    assert events(database, "USER_DISABLED") == 1


def test_enabling_lets_the_user_sign_in_again(stub, database):
    user = sign_up(stub)
    disable(stub, user.id)
    enabled = enable(stub, user.id).user
    assert enabled.state == pb.USER_STATE_ACTIVE
    assert sign_in(stub).user.state == pb.USER_STATE_ACTIVE
    assert events(database, "USER_ENABLED") == 1


def test_disabled_state_shows_in_get_and_list(stub):
    user = sign_up(stub)
    disable(stub, user.id)
    assert stub.GetUser(pb.GetUserRequest(id=user.id)).user.state == pb.USER_STATE_DISABLED
    (listed,) = stub.ListUsers(pb.ListUsersRequest()).users
    assert listed.state == pb.USER_STATE_DISABLED


def test_disabling_twice_keeps_the_user_disabled(stub, clock):
    user = sign_up(stub)
    first = disable(stub, user.id).user
    clock.advance(timedelta(minutes=1))
    second = disable(stub, user.id).user
    assert second.state == pb.USER_STATE_DISABLED
    assert second.update_time == first.update_time


@pytest.mark.parametrize("method", ["DisableUser", "EnableUser"])
def test_unknown_or_bad_user_id(stub, method):
    request = getattr(pb, f"{method}Request")
    got = fails(getattr(stub, method), request(id=str(uuid.uuid4())))
    assert (got.code, got.reason) == (grpc.StatusCode.NOT_FOUND, "USER_NOT_FOUND")
    bad = fails(getattr(stub, method), request(id="x"))
    assert (bad.code, bad.fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["id"])


def test_revoke_session_ends_that_session_only(stub, database):
    user = sign_up(stub)
    a, b = sign_in(stub), sign_in(stub)
    stub.RevokeSession(pb.RevokeSessionRequest(session_id=a.session.id), timeout=10)
    assert validate_reason(stub, a.session_token) == "TOKEN_INVALID"
    assert stub.ValidateToken(pb.ValidateTokenRequest(session_token=b.session_token)).user.id
    assert [s.id for s in sessions_of(stub, user.id)] == [b.session.id]
    assert events(database, "SESSION_REVOKED") == 1
    again = fails(stub.RevokeSession, pb.RevokeSessionRequest(session_id=a.session.id))
    assert (again.code, again.reason) == (grpc.StatusCode.NOT_FOUND, "SESSION_NOT_FOUND")


def test_revoke_session_needs_a_session_id(stub):
    for value in ("", "not-a-uuid"):
        got = fails(stub.RevokeSession, pb.RevokeSessionRequest(session_id=value))
        assert (got.code, got.fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["session_id"])


def test_revoke_user_sessions_signs_out_everywhere(stub, database):
    user = sign_up(stub)
    other = sign_up(stub, "bob@example.com")
    made = [sign_in(stub) for _ in range(3)]
    kept = sign_in(stub, "bob@example.com")
    got = stub.RevokeUserSessions(pb.RevokeUserSessionsRequest(user_id=user.id), timeout=10)
    assert got.revoked_count == 3
    for s in made:
        assert validate_reason(stub, s.session_token) == "TOKEN_INVALID"
    assert stub.ValidateToken(pb.ValidateTokenRequest(session_token=kept.session_token)).user.id
    assert sign_in(stub).user.id == user.id  # the user may sign in again
    assert other.id != user.id
    assert events(database, "USER_SESSIONS_REVOKED") == 1
    none_left = stub.RevokeUserSessions(pb.RevokeUserSessionsRequest(user_id=other.id))
    assert none_left.revoked_count == 1


def test_revoke_user_sessions_of_unknown_or_bad_user(stub):
    got = fails(stub.RevokeUserSessions, pb.RevokeUserSessionsRequest(user_id=str(uuid.uuid4())))
    assert got.reason == "USER_NOT_FOUND"
    bad = fails(stub.RevokeUserSessions, pb.RevokeUserSessionsRequest(user_id=""))
    assert bad.fields == ["user_id"]


def test_set_password_ends_every_session(stub, database):
    user = sign_up(stub)
    s = sign_in(stub)
    pending = start_reset(stub).reset_token
    stub.SetPassword(pb.SetPasswordRequest(user_id=user.id, new_password=NEW_PASSWORD))
    assert validate_reason(stub, s.session_token) == "TOKEN_INVALID"
    assert sign_in(stub, password=NEW_PASSWORD).user.id == user.id
    assert (
        fails(
            stub.CompletePasswordReset,
            pb.CompletePasswordResetRequest(
                reset_token=pending, new_password="another good passphrase"
            ),
        ).reason
        == "TOKEN_INVALID"
    )
    assert events(database, "PASSWORD_SET") == 1


@pytest.mark.parametrize(
    ("kw", "fields"),
    [
        ({}, ["user_id", "new_password"]),
        ({"user_id": "x", "new_password": NEW_PASSWORD}, ["user_id"]),
        ({"new_password": "password"}, ["user_id", "new_password"]),
    ],
)
def test_set_password_names_each_missing_or_malformed_field(stub, kw, fields):
    got = fails(stub.SetPassword, pb.SetPasswordRequest(**kw))
    assert (got.code, got.fields) == (grpc.StatusCode.INVALID_ARGUMENT, fields)


def test_set_password_of_an_unknown_user_is_user_not_found(stub):
    got = fails(
        stub.SetPassword,
        pb.SetPasswordRequest(user_id=str(uuid.uuid4()), new_password=NEW_PASSWORD),
    )
    assert got.reason == "USER_NOT_FOUND"


def test_a_session_of_a_disabled_user_never_validates(stub, database, clock):
    user = sign_up(stub)
    disable(stub, user.id)
    policy = SessionPolicy(timedelta(hours=1), timedelta(days=1), timedelta(days=2))
    with database.transaction() as db:  # as if a sign-in had slipped past the disabling
        issued = open_session(db, uuid.UUID(user.id), policy, clock.now)
    assert validate_reason(stub, issued.session_token) == "TOKEN_INVALID"
    enable(stub, user.id)
    assert stub.ValidateToken(pb.ValidateTokenRequest(session_token=issued.session_token)).user


def test_concurrent_sign_ins_and_disabling_leave_no_live_session(stub):
    user = sign_up(stub)
    calls = [lambda: sign_in(stub)] * 5 + [lambda: disable(stub, user.id)]
    results = race_each(calls)
    assert all(r == "USER_DISABLED" or not isinstance(r, str) for r in results)
    assert sessions_of(stub, user.id) == []
    for r in results:
        if isinstance(r, pb.CreateSessionResponse):
            assert validate_reason(stub, r.session_token) == "TOKEN_INVALID"
