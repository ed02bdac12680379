"""Sign-in, validation, rotation, expiry and sign-out, as a caller observes them."""

from __future__ import annotations

import hashlib
import threading
import uuid
from datetime import timedelta

import grpc
import pytest
from sqlalchemy import select, text

from authsvc.storage.models import RotatedToken, Session
from authsvc_client.v1 import auth_service_pb2 as pb
from tests.helpers import PASSWORD, fails, failure, sign_in, sign_up


def validate(stub, token):
    return stub.ValidateToken(pb.ValidateTokenRequest(session_token=token), timeout=10)


def validate_fails(stub, token):
    return fails(stub.ValidateToken, pb.ValidateTokenRequest(session_token=token))


def refresh(stub, token):
    return stub.RefreshSession(pb.RefreshSessionRequest(update_token=token), timeout=10)


def refresh_fails(stub, token):
    return fails(stub.RefreshSession, pb.RefreshSessionRequest(update_token=token))


def test_sign_in_returns_session_tokens_and_user(stub, clock):
    user = sign_up(stub)
    reply = sign_in(
        stub, email=" ADA@example.com", user_agent="Firefox/130", ip_address="2001:db8::0:1"
    )
    assert reply.user == user
    assert reply.session_token.startswith("asv_st_")
    assert reply.update_token.startswith("asv_ut_")
    assert len(reply.session_token) >= 7 + 43  # 256 bits
    s = reply.session
    assert uuid.UUID(s.id) and s.user_id == user.id
    assert (s.user_agent, s.ip_address) == ("Firefox/130", "2001:db8::1")
    assert s.create_time.ToDatetime() == clock.now.replace(tzinfo=None)
    assert s.expire_time.ToDatetime() - s.create_time.ToDatetime() == timedelta(hours=1)
    assert s.refresh_expire_time.ToDatetime() - s.create_time.ToDatetime() == timedelta(days=7)


def test_wrong_password_and_unknown_email_fail_alike(stub):
    sign_up(stub)
    wrong = fails(
        stub.CreateSession, pb.CreateSessionRequest(email="ada@example.com", password="nope-nope")
    )
    unknown = fails(
        stub.CreateSession, pb.CreateSessionRequest(email="bob@example.com", password=PASSWORD)
    )
    assert (wrong.code, wrong.reason, wrong.message) == (
        unknown.code,
        unknown.reason,
        unknown.message,
    )
    assert (wrong.code, wrong.reason) == (grpc.StatusCode.UNAUTHENTICATED, "INVALID_CREDENTIALS")


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"ip_address": "999.1.1.1"}, "ip_address"),
        ({"user_agent": "x" * 513}, "user_agent"),
        ({"user_agent": "evil\r\nheader"}, "user_agent"),
        ({"password": ""}, "password"),
        ({"email": ""}, "email"),
    ],
)
def test_bad_sign_in_fields_are_named(stub, kw, field):
    sign_up(stub)
    request = pb.CreateSessionRequest(email="ada@example.com", password=PASSWORD)
    for key, value in kw.items():
        setattr(request, key, value)
    f = fails(stub.CreateSession, request)
    assert (f.code, f.fields) == (grpc.StatusCode.INVALID_ARGUMENT, [field])


def test_database_holds_only_sha256_of_tokens(stub, database):
    sign_up(stub)
    reply = sign_in(stub)
    with database.transaction(writes=False) as db:
        row = db.scalars(select(Session)).one()
        dump = repr([tuple(r) for r in db.execute(text("SELECT * FROM sessions"))])
    assert row.token_hash == hashlib.sha256(reply.session_token.encode()).digest()
    assert row.update_token_hash == hashlib.sha256(reply.update_token.encode()).digest()
    assert reply.session_token not in dump and reply.update_token not in dump


def test_validate_returns_user_and_session(stub):
    user = sign_up(stub)
    reply = sign_in(stub)
    validated = validate(stub, reply.session_token)
    assert validated.user == user
    assert validated.session == reply.session


@pytest.mark.parametrize(
    "token", ["asv_st_" + "A" * 43, "garbage", "asv_st_short", "asv_ut_" + "A" * 43, "' OR 1=1 --"]
)
def test_unknown_or_malformed_token_is_invalid(stub, token):
    f = validate_fails(stub, token)
    assert (f.code, f.reason) == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_INVALID")


def test_empty_token_names_the_field(stub):
    f = validate_fails(stub, "")
    assert (f.code, f.fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["session_token"])


def test_tokens_of_one_kind_are_never_accepted_as_the_other(stub):
    sign_up(stub)
    reply = sign_in(stub)
    assert validate_fails(stub, reply.update_token).reason == "TOKEN_INVALID"
    assert refresh_fails(stub, reply.session_token).reason == "TOKEN_INVALID"
    twin = "asv_ut_" + reply.session_token.removeprefix("asv_st_")
    assert refresh_fails(stub, twin).reason == "TOKEN_INVALID"


def test_session_token_expires_after_its_ttl(stub, clock):
    sign_up(stub)
    reply = sign_in(stub)
    clock.advance(timedelta(minutes=59, seconds=59))
    validate(stub, reply.session_token)
    clock.advance(timedelta(seconds=1))
    f = validate_fails(stub, reply.session_token)
    assert (f.code, f.reason) == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_EXPIRED")


def test_refresh_after_expiry_renews_both_lifetimes(stub, clock):
    sign_up(stub)
    first = sign_in(stub)
    clock.advance(timedelta(hours=2))
    second = refresh(stub, first.update_token)
    assert validate(stub, second.session_token).session.id == first.session.id
    s = second.session
    assert s.expire_time.ToDatetime() == (clock.now + timedelta(hours=1)).replace(tzinfo=None)
    assert s.refresh_expire_time.ToDatetime() == (clock.now + timedelta(days=7)).replace(
        tzinfo=None
    )


def test_idle_session_dies_after_the_refresh_ttl(start_server, clock):
    _, stub = start_server(session_ttl=timedelta(seconds=90), refresh_ttl=timedelta(minutes=15))
    sign_up(stub)
    reply = sign_in(stub)
    clock.advance(timedelta(minutes=15))
    assert refresh_fails(stub, reply.update_token).reason == "TOKEN_EXPIRED"
    assert validate_fails(stub, reply.session_token).reason == "TOKEN_EXPIRED"


def test_max_age_caps_the_session_whatever_the_refreshes(start_server, clock):
    _, stub = start_server(
        session_ttl=timedelta(minutes=15),
        refresh_ttl=timedelta(hours=1),
        session_max_age=timedelta(hours=2),
    )
    sign_up(stub)
    update = sign_in(stub).update_token
    for _ in range(3):
        clock.advance(timedelta(minutes=30))
        reply = refresh(stub, update)
        update = reply.update_token
    # 1h30 in: the refresh expiry is capped at sign-in + 2h, not now + 1h.
    assert (
        reply.session.refresh_expire_time.ToDatetime()
        == reply.session.create_time.ToDatetime() + timedelta(hours=2)
    )
    clock.advance(timedelta(minutes=30))
    assert refresh_fails(stub, update).reason == "TOKEN_EXPIRED"
    assert validate_fails(stub, reply.session_token).reason == "TOKEN_EXPIRED"


def test_refresh_rotates_both_tokens_and_old_ones_stop_at_once(stub):
    sign_up(stub)
    first = sign_in(stub)
    second = refresh(stub, first.update_token)
    assert second.session_token != first.session_token
    assert second.update_token != first.update_token
    assert validate_fails(stub, first.session_token).reason == "TOKEN_INVALID"
    assert validate(stub, second.session_token)
    third = refresh(stub, second.update_token)
    assert validate(stub, third.session_token)


def test_reused_update_token_revokes_the_whole_session(stub, database):
    sign_up(stub)
    first = sign_in(stub)
    second = refresh(stub, first.update_token)
    third = refresh(stub, second.update_token)
    f = refresh_fails(stub, first.update_token)  # a thief replays an old token
    assert (f.code, f.reason) == (grpc.StatusCode.UNAUTHENTICATED, "REFRESH_TOKEN_REUSED")
    assert validate_fails(stub, third.session_token).reason == "TOKEN_INVALID"
    assert refresh_fails(stub, third.update_token).reason == "TOKEN_INVALID"
    with database.transaction(writes=False) as db:
        assert db.scalars(select(Session)).all() == []
        assert db.scalars(select(RotatedToken)).all() == []


def test_other_sessions_survive_a_theft_detection(stub):
    sign_up(stub)
    victim = sign_in(stub)
    other = sign_in(stub)
    refresh(stub, victim.update_token)
    assert refresh_fails(stub, victim.update_token).reason == "REFRESH_TOKEN_REUSED"
    assert validate(stub, other.session_token)


def test_concurrent_refreshes_with_one_token_at_most_one_wins(stub):
    sign_up(stub)
    reply = sign_in(stub)
    results: list[object] = []
    barrier = threading.Barrier(6)

    def attempt() -> None:
        barrier.wait()
        try:
            results.append(refresh(stub, reply.update_token))
        except grpc.RpcError as exc:
            results.append(failure(exc).reason)

    threads = [threading.Thread(target=attempt) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [r for r in results if not isinstance(r, str)]
    assert len(winners) <= 1
    assert set(r for r in results if isinstance(r, str)) <= {
        "REFRESH_TOKEN_REUSED",
        "TOKEN_INVALID",
    }
    # Every loser presented a rotated-away token: the session is revoked for everyone.
    for winner in winners:
        assert validate_fails(stub, winner.session_token).reason == "TOKEN_INVALID"


def test_sign_out_revokes_the_session_only(stub):
    sign_up(stub)
    mine, other = sign_in(stub), sign_in(stub)
    stub.DeleteSession(pb.DeleteSessionRequest(session_token=mine.session_token))
    assert validate_fails(stub, mine.session_token).reason == "TOKEN_INVALID"
    assert refresh_fails(stub, mine.update_token).reason == "TOKEN_INVALID"
    assert validate(stub, other.session_token)
    again = fails(stub.DeleteSession, pb.DeleteSessionRequest(session_token=mine.session_token))
    assert again.reason == "TOKEN_INVALID"


def test_sign_out_works_with_an_expired_session_token(stub, clock):
    sign_up(stub)
    reply = sign_in(stub)
    clock.advance(timedelta(hours=3))
    stub.DeleteSession(pb.DeleteSessionRequest(session_token=reply.session_token))
    assert refresh_fails(stub, reply.update_token).reason == "TOKEN_INVALID"


def test_many_sessions_per_user_by_default(stub, clock):
    user = sign_up(stub)
    replies = []
    for i in range(5):
        replies.append(sign_in(stub, user_agent=f"device {i}"))
        clock.advance(timedelta(milliseconds=1))
    for reply in replies:
        assert validate(stub, reply.session_token)
    listed = stub.ListSessions(pb.ListSessionsRequest(user_id=user.id)).sessions
    assert [s.user_agent for s in listed] == [f"device {i}" for i in range(5)]


def test_max_sessions_per_user_ends_the_oldest(start_server, clock):
    _, stub = start_server(max_sessions_per_user=2)
    sign_up(stub)
    replies = []
    for _ in range(3):
        replies.append(sign_in(stub))
        clock.advance(timedelta(seconds=1))
    assert validate_fails(stub, replies[0].session_token).reason == "TOKEN_INVALID"
    assert validate(stub, replies[1].session_token)
    assert validate(stub, replies[2].session_token)


def test_one_session_per_user_like_the_seed(start_server, clock):
    _, stub = start_server(max_sessions_per_user=1)
    sign_up(stub)
    first = sign_in(stub)
    clock.advance(timedelta(seconds=1))
    second = sign_in(stub)
    assert validate_fails(stub, first.session_token).reason == "TOKEN_INVALID"
    assert validate(stub, second.session_token)


def test_list_sessions_pages_and_omits_dead_sessions(start_server, clock):
    _, stub = start_server(refresh_ttl=timedelta(hours=1))
    user = sign_up(stub)
    sign_in(stub, user_agent="old")
    clock.advance(timedelta(hours=1))
    for i in range(5):
        sign_in(stub, user_agent=f"new {i}")
        clock.advance(timedelta(seconds=1))
    agents, token = [], ""
    while True:
        reply = stub.ListSessions(
            pb.ListSessionsRequest(user_id=user.id, page_size=2, page_token=token)
        )
        agents += [s.user_agent for s in reply.sessions]
        token = reply.next_page_token
        if not token:
            break
    assert agents == [f"new {i}" for i in range(5)]


def test_list_sessions_refuses_another_users_page_token_an_unknown_user_and_a_bad_id(stub):
    user = sign_up(stub)
    other = sign_up(stub, email="bob@example.com")
    for _ in range(2):
        sign_in(stub)
    page = stub.ListSessions(pb.ListSessionsRequest(user_id=user.id, page_size=1))
    wrong_scope = pb.ListSessionsRequest(user_id=other.id, page_token=page.next_page_token)
    assert fails(stub.ListSessions, wrong_scope).fields == ["page_token"]
    unknown = fails(stub.ListSessions, pb.ListSessionsRequest(user_id=str(uuid.uuid4())))
    assert (unknown.code, unknown.reason) == (grpc.StatusCode.NOT_FOUND, "USER_NOT_FOUND")
    assert fails(stub.ListSessions, pb.ListSessionsRequest(user_id="x")).fields == ["user_id"]


def change_password(stub, token, current=PASSWORD, new="a brand new passphrase"):
    return stub.ChangePassword(
        pb.ChangePasswordRequest(session_token=token, current_password=current, new_password=new),
        timeout=10,
    )


def test_change_password_keeps_this_session_and_ends_the_others(stub):
    sign_up(stub)
    mine, other = sign_in(stub), sign_in(stub)
    change_password(stub, mine.session_token)
    assert validate(stub, mine.session_token)
    assert validate_fails(stub, other.session_token).reason == "TOKEN_INVALID"
    assert refresh_fails(stub, other.update_token).reason == "TOKEN_INVALID"
    f = fails(
        stub.CreateSession, pb.CreateSessionRequest(email="ada@example.com", password=PASSWORD)
    )
    assert f.reason == "INVALID_CREDENTIALS"
    assert sign_in(stub, password="a brand new passphrase").session_token


def test_change_password_needs_the_current_password(stub):
    sign_up(stub)
    reply = sign_in(stub)
    with pytest.raises(grpc.RpcError) as caught:
        change_password(stub, reply.session_token, current="not my password")
    f = failure(caught.value)
    assert (f.code, f.reason) == (grpc.StatusCode.UNAUTHENTICATED, "INVALID_CREDENTIALS")
    assert sign_in(stub).session_token  # unchanged


def test_change_password_needs_a_live_session(stub, clock):
    sign_up(stub)
    reply = sign_in(stub)
    with pytest.raises(grpc.RpcError) as caught:
        change_password(stub, "asv_st_" + "B" * 43)
    assert failure(caught.value).reason == "TOKEN_INVALID"
    clock.advance(timedelta(hours=2))
    with pytest.raises(grpc.RpcError) as caught:
        change_password(stub, reply.session_token)
    assert failure(caught.value).reason == "TOKEN_EXPIRED"


@pytest.mark.parametrize(
    ("kw", "fields"),
    [
        ({"new": "short"}, ["new_password"]),
        ({"new": "password123"}, ["new_password"]),
        ({"current": ""}, ["current_password"]),
        ({"token": ""}, ["session_token"]),
    ],
)
def test_change_password_refuses_a_weak_new_or_missing_current_password_or_token(stub, kw, fields):
    sign_up(stub)
    kw = dict(kw)  # parametrized dicts are shared between the two databases
    token = kw.pop("token", None)
    token = sign_in(stub).session_token if token is None else token
    with pytest.raises(grpc.RpcError) as caught:
        change_password(stub, token, **kw)
    f = failure(caught.value)
    assert (f.code, f.fields) == (grpc.StatusCode.INVALID_ARGUMENT, fields)


def test_sign_in_rehashes_a_password_stored_with_another_method(start_server, database):
    _, old = start_server(password_hash="pbkdf2:sha256:1000")
    sign_up(old)
    _, new = start_server(password_hash="pbkdf2:sha256:2000")
    assert sign_in(new).session_token
    with database.transaction(writes=False) as db:
        stored = db.execute(text("SELECT password_hash FROM users")).scalar_one()
    assert stored.startswith("pbkdf2:sha256:2000$")
    assert sign_in(new).session_token


def test_default_hash_is_scrypt_n32768_r8_p3(start_server, database):
    _, stub = start_server(password_hash="scrypt:32768:8:3")
    sign_up(stub)
    with database.transaction(writes=False) as db:
        stored = db.execute(text("SELECT password_hash FROM users")).scalar_one()
    assert stored.startswith("scrypt:32768:8:3$")
    assert sign_in(stub).session_token


def test_unknown_email_costs_a_hash_like_a_wrong_password(stub, monkeypatch):
    from authsvc.rules.hashing import Hasher

    checked: list[bool] = []
    original = Hasher.verify

    def counting(self, password_hash, password):
        checked.append(password_hash is None)
        return original(self, password_hash, password)

    sign_up(stub)
    monkeypatch.setattr(Hasher, "verify", counting)
    fails(
        stub.CreateSession, pb.CreateSessionRequest(email="nobody@example.com", password=PASSWORD)
    )
    fails(
        stub.CreateSession, pb.CreateSessionRequest(email="ada@example.com", password="wrong-pass")
    )
    assert checked == [True, False]  # the unknown email was checked against the dummy hash
