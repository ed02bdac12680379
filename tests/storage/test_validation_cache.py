"""ValidateToken's fast path and its cache: every revocation is seen at once, expiry still holds."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

import grpc
from google.protobuf import field_mask_pb2

from authsvc.storage.invalidation import Invalidations as Changes
from authsvc.storage.validation_cache import ValidationCache
from authsvc_client.v1 import auth_service_pb2 as pb
from tests.helpers import PASSWORD, fails, sign_in, sign_up, wait_until

NEW_PASSWORD = "a different but long passphrase"


def validate(stub, token):
    return stub.ValidateToken(pb.ValidateTokenRequest(session_token=token), timeout=10)


def refused(stub, token) -> str:
    return fails(stub.ValidateToken, pb.ValidateTokenRequest(session_token=token)).reason


def cached_server(start_server, **overrides):
    """A server whose validation cache is on and (on PostgreSQL) listening."""
    server, stub = start_server(validation_cache=100, **overrides)
    if server.infra.listener:
        assert server.infra.listener.listening.wait(10), "listener never connected"
    assert server.infra.cache.active
    return server, stub


def warm(server, stub, token):
    """Validates until an answer comes from the cache (a late notice may empty it once)."""

    def answered_from_the_cache():
        hits = server.infra.cache.hits
        reply = validate(stub, token)
        return reply if server.infra.cache.hits > hits else None

    return wait_until(answered_from_the_cache, interval=0.01, what="an answer from the cache")


def test_validate_returns_user_and_session_like_sign_in(stub):
    user = sign_up(stub)
    s = sign_in(stub, user_agent="curl/8", ip_address="192.0.2.1")
    v = validate(stub, s.session_token)
    assert v.user == user
    assert v.session == s.session
    assert v.session.user_agent == "curl/8"


def test_cache_hit_answers_like_the_database(start_server):
    server, stub = cached_server(start_server)
    user = sign_up(stub)
    s = sign_in(stub)
    first = validate(stub, s.session_token)
    assert warm(server, stub, s.session_token) == first
    assert first.user == user


def test_cached_token_still_expires_on_the_clock(start_server, clock):
    server, stub = cached_server(start_server, session_ttl=timedelta(minutes=5))
    sign_up(stub)
    s = sign_in(stub)
    warm(server, stub, s.session_token)
    clock.advance(timedelta(minutes=5))
    hits = server.infra.cache.hits
    assert refused(stub, s.session_token) == "TOKEN_EXPIRED"
    assert server.infra.cache.hits == hits + 1  # refused by the hit itself


def test_sign_out_is_seen_at_once_with_the_cache_on(start_server):
    server, stub = cached_server(start_server)
    sign_up(stub)
    s = sign_in(stub)
    warm(server, stub, s.session_token)
    stub.DeleteSession(pb.DeleteSessionRequest(session_token=s.session_token), timeout=10)
    assert refused(stub, s.session_token) == "TOKEN_INVALID"


def test_refresh_retires_the_cached_session_token(start_server):
    server, stub = cached_server(start_server)
    sign_up(stub)
    s = sign_in(stub)
    warm(server, stub, s.session_token)
    r = stub.RefreshSession(pb.RefreshSessionRequest(update_token=s.update_token), timeout=10)
    assert refused(stub, s.session_token) == "TOKEN_INVALID"
    assert validate(stub, r.session_token).session.id == s.session.id


def test_update_token_reuse_revokes_the_cached_session(start_server):
    server, stub = cached_server(start_server)
    sign_up(stub)
    s = sign_in(stub)
    r = stub.RefreshSession(pb.RefreshSessionRequest(update_token=s.update_token), timeout=10)
    warm(server, stub, r.session_token)
    reuse = fails(stub.RefreshSession, pb.RefreshSessionRequest(update_token=s.update_token))
    assert reuse.reason == "REFRESH_TOKEN_REUSED"
    assert refused(stub, r.session_token) == "TOKEN_INVALID"


def test_password_change_ends_other_cached_sessions(start_server):
    server, stub = cached_server(start_server)
    sign_up(stub)
    kept, other = sign_in(stub), sign_in(stub)
    warm(server, stub, other.session_token)
    warm(server, stub, kept.session_token)
    stub.ChangePassword(
        pb.ChangePasswordRequest(
            session_token=kept.session_token, current_password=PASSWORD, new_password=NEW_PASSWORD
        ),
        timeout=10,
    )
    assert refused(stub, other.session_token) == "TOKEN_INVALID"
    assert validate(stub, kept.session_token).user.email == "ada@example.com"


def test_deleted_user_is_refused_at_once(start_server):
    server, stub = cached_server(start_server)
    user = sign_up(stub)
    s = sign_in(stub)
    warm(server, stub, s.session_token)
    stub.DeleteUser(pb.DeleteUserRequest(id=user.id), timeout=10)
    assert refused(stub, s.session_token) == "TOKEN_INVALID"


def test_user_update_is_seen_at_once(start_server):
    server, stub = cached_server(start_server)
    user = sign_up(stub)
    s = sign_in(stub)
    warm(server, stub, s.session_token)
    stub.UpdateUser(
        pb.UpdateUserRequest(
            user=pb.User(id=user.id, first_name="Augusta"),
            update_mask=field_mask_pb2.FieldMask(paths=["first_name"]),
        ),
        timeout=10,
    )
    assert validate(stub, s.session_token).user.first_name == "Augusta"


def test_sessions_ended_by_the_per_user_limit_are_refused_at_once(start_server, clock):
    server, stub = cached_server(start_server, max_sessions_per_user=1)
    sign_up(stub)
    old = sign_in(stub)
    warm(server, stub, old.session_token)
    clock.advance(timedelta(seconds=1))  # the newest session is the one kept
    new = sign_in(stub)
    assert refused(stub, old.session_token) == "TOKEN_INVALID"
    validate(stub, new.session_token)


def test_cache_off_never_caches(start_server):
    server, stub = start_server(validation_cache=0)
    sign_up(stub)
    s = sign_in(stub)
    validate(stub, s.session_token)
    validate(stub, s.session_token)
    assert server.infra.cache.hits == 0
    assert len(server.infra.cache) == 0


def test_malformed_and_unknown_tokens_are_invalid(stub):
    assert refused(stub, "asv_st_short") == "TOKEN_INVALID"
    assert refused(stub, "asv_st_" + "A" * 43) == "TOKEN_INVALID"
    empty = fails(stub.ValidateToken, pb.ValidateTokenRequest(session_token=""))
    assert (empty.code, empty.fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["session_token"])


def test_lost_database_is_unavailable(start_server, db_url):
    if db_url.startswith("sqlite"):
        missing = "sqlite:////nonexistent-dir/authsvc.db"
    else:
        missing = db_url.rsplit("/", 1)[0] + "/authsvc_no_such_database"
    _, stub = start_server(database_url=missing, validation_cache=0)
    failed = fails(stub.ValidateToken, pb.ValidateTokenRequest(session_token="asv_st_" + "A" * 43))
    assert (failed.code, failed.reason) == (grpc.StatusCode.UNAVAILABLE, "DATABASE_UNAVAILABLE")


# The cache on its own


@dataclass(frozen=True)
class Entry:
    session_id: str
    user_id: str


def entry(user: str = "u1") -> Entry:
    return Entry(str(uuid.uuid4()), user)


def test_cache_is_bounded_and_evicts_the_least_recently_used():
    cache: ValidationCache[Entry] = ValidationCache(2)
    a, b, c = entry(), entry(), entry()
    cache.put(b"a", a, cache.epoch)
    cache.put(b"b", b, cache.epoch)
    assert cache.get(b"a") == a  # now b is the oldest
    cache.put(b"c", c, cache.epoch)
    assert (cache.get(b"a"), cache.get(b"b"), cache.get(b"c")) == (a, None, c)
    assert len(cache) == 2


def test_lookup_racing_an_invalidation_is_not_cached():
    cache: ValidationCache[Entry] = ValidationCache(10)
    e = entry()
    epoch = cache.epoch  # a lookup starts, reads the row
    cache.invalidate(sessions=[e.session_id])  # the session is revoked meanwhile
    cache.put(b"t", e, epoch)  # the stale row must not land in the cache
    assert cache.get(b"t") is None


def test_invalidation_by_session_and_by_user():
    cache: ValidationCache[Entry] = ValidationCache(10)
    a, b, c = entry("u1"), entry("u1"), entry("u2")
    for key, e in ((b"a", a), (b"b", b), (b"c", c)):
        cache.put(key, e, cache.epoch)
    cache.invalidate(sessions=[a.session_id])
    assert (cache.get(b"a"), cache.get(b"b")) == (None, b)
    cache.invalidate(users=["u1"])
    assert (cache.get(b"b"), cache.get(b"c")) == (None, c)


def test_suspended_cache_is_empty_and_bypassed_until_resumed():
    cache: ValidationCache[Entry] = ValidationCache(10)
    e = entry()
    cache.put(b"t", e, cache.epoch)
    cache.suspend()
    cache.put(b"t", e, cache.epoch)
    assert cache.get(b"t") is None and len(cache) == 0
    cache.resume()
    cache.put(b"t", e, cache.epoch)
    assert cache.get(b"t") == e


def test_changes_travel_in_notices_within_postgresqls_payload_limit():
    changes = Changes()
    changes.session(*(uuid.uuid4() for _ in range(500)))
    changes.user(uuid.uuid4())
    payloads = list(changes.payloads())
    assert len(payloads) > 1
    assert all(len(p.encode()) < 8000 for p in payloads)
    received = Changes()
    for p in payloads:
        parsed = Changes.parse(p)
        received.sessions |= parsed.sessions
        received.users |= parsed.users
    assert received == changes
