"""Several replicas on one PostgreSQL database: shared state, cross-replica invalidation.

PostgreSQL only: replicas of authsvc share a PostgreSQL database (SQLite is single-host).
"""

from __future__ import annotations

import pytest
from google.protobuf import field_mask_pb2
from sqlalchemy import text

from authsvc.rules.tokens import token_hash
from authsvc.storage import notifications
from authsvc.storage.token_lookup import PostgresLookup
from authsvc_client.v1 import auth_service_pb2 as pb
from tests.helpers import PASSWORD, fails, sign_in, sign_up, wait_until
from tests.storage.test_validation_cache import refused, validate, warm

pytestmark = pytest.mark.parametrize("migrated_url", ["postgresql"], indirect=True)

# How long a test waits for another replica to see a change before failing: a hang
# guard, not a timing. The delivery time itself is measured by `python -m bench.invalidation`.
GIVE_UP_SECONDS = 10.0


def replicas(start_server, count=2, **overrides):
    """``count`` servers on the test database, caches on and listening."""
    started = [start_server(validation_cache=100, **overrides) for _ in range(count)]
    for server, _ in started:
        assert server.infra.listener is not None
        assert server.infra.listener.listening.wait(10), "listener never connected"
    return started


def wait_until_forgotten(server, token) -> None:
    """Waits until ``server``'s cache drops ``token``; fails if it never does."""
    digest = token_hash(token)
    wait_until(
        lambda: digest not in server.infra.cache,
        GIVE_UP_SECONDS,
        interval=0.001,
        what="the cache to forget the token",
    )


def assert_refused_on(server, stub, token):
    """The other replica's cache forgets ``token`` on its own, and then refuses it."""
    wait_until_forgotten(server, token)
    assert refused(stub, token) == "TOKEN_INVALID"


def test_session_made_on_one_replica_validates_on_another(start_server):
    (_, a), (_, b) = replicas(start_server)
    user = sign_up(a)
    s = sign_in(a)
    assert validate(b, s.session_token).user.id == user.id


def test_sign_out_on_one_replica_is_refused_on_another(start_server):
    (_, a), (server_b, b) = replicas(start_server)
    sign_up(a)
    s = sign_in(a)
    warm(server_b, b, s.session_token)  # B answers from its cache from now on
    a.DeleteSession(pb.DeleteSessionRequest(session_token=s.session_token), timeout=10)
    assert_refused_on(server_b, b, s.session_token)


def test_every_kind_of_revocation_reaches_the_other_replica(start_server):
    (_, a), (server_b, b) = replicas(start_server)
    user = sign_up(a)
    refreshed, stolen = sign_in(a), sign_in(a)
    r = a.RefreshSession(pb.RefreshSessionRequest(update_token=stolen.update_token), timeout=10)
    warm(server_b, b, refreshed.session_token)
    warm(server_b, b, r.session_token)
    a.RefreshSession(pb.RefreshSessionRequest(update_token=refreshed.update_token), timeout=10)
    assert_refused_on(server_b, b, refreshed.session_token)
    reuse = fails(a.RefreshSession, pb.RefreshSessionRequest(update_token=stolen.update_token))
    assert reuse.reason == "REFRESH_TOKEN_REUSED"
    assert_refused_on(server_b, b, r.session_token)
    last = sign_in(a)
    warm(server_b, b, last.session_token)
    a.DeleteUser(pb.DeleteUserRequest(id=user.id), timeout=10)
    assert_refused_on(server_b, b, last.session_token)


def test_user_update_on_one_replica_reaches_the_other(start_server):
    (_, a), (server_b, b) = replicas(start_server)
    user = sign_up(a)
    s = sign_in(a)
    warm(server_b, b, s.session_token)
    a.UpdateUser(
        pb.UpdateUserRequest(
            user=pb.User(id=user.id, last_name="King"),
            update_mask=field_mask_pb2.FieldMask(paths=["last_name"]),
        ),
        timeout=10,
    )
    wait_until_forgotten(server_b, s.session_token)
    assert validate(b, s.session_token).user.last_name == "King"


def test_user_deleted_on_one_replica_cannot_sign_in_on_another(start_server):
    (_, a), (_, b) = replicas(start_server)
    user = sign_up(a)
    sign_in(a)
    b.DeleteUser(pb.DeleteUserRequest(id=user.id), timeout=10)
    failed = fails(a.CreateSession, pb.CreateSessionRequest(email=user.email, password=PASSWORD))
    assert failed.reason == "INVALID_CREDENTIALS"


def test_replica_bypasses_its_cache_while_its_listener_is_down(start_server, database, monkeypatch):
    # Slow reconnection, so the test can act while the listener is down.
    monkeypatch.setattr(notifications, "RECONNECT_DELAYS", (2.0,))
    (_, a), (server_b, b) = replicas(start_server)
    listener, cache = server_b.infra.listener, server_b.infra.cache
    sign_up(a)
    revoked, live = sign_in(a), sign_in(a)
    warm(server_b, b, revoked.session_token)
    warm(server_b, b, live.session_token)
    drops = listener.drops
    with database.engine.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": listener.backend_pid})
    wait_until(
        lambda: listener.drops != drops,
        interval=0.005,
        what="the listener to notice its connection died",
    )
    # While down, revocations cannot reach B's cache: B must ask the database.
    assert not cache.active and len(cache) == 0
    # A revocation B is never told about (deleted behind authsvc's back, no NOTIFY).
    with database.transaction() as db:
        db.execute(text("DELETE FROM sessions WHERE id = :id"), {"id": revoked.session.id})
    assert refused(b, revoked.session_token) == "TOKEN_INVALID"
    hits = cache.hits
    validate(b, live.session_token)
    validate(b, live.session_token)
    assert cache.hits == hits  # bypassed
    assert listener.listening.wait(10), "the listener did not reconnect"
    warm(server_b, b, live.session_token)  # cached again
    assert refused(b, revoked.session_token) == "TOKEN_INVALID"


def test_broken_validation_connection_is_replaced(start_server, database):
    _, stub = start_server(validation_cache=0)
    sign_up(stub)
    s = sign_in(stub)
    validate(stub, s.session_token)
    with database.engine.connect() as conn:
        cut = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = 'authsvc-validate' AND datname = current_database()"
            )
        ).scalar()
    assert cut >= 1
    for _ in range(20):  # every server thread's connection is broken: each is replaced
        validate(stub, s.session_token)


def test_lost_prepared_statement_is_prepared_again(db_url):
    # As after a pooler's DISCARD ALL: the connection lives, its prepared statement doesn't.
    lookup = PostgresLookup(db_url)
    try:
        assert lookup.find(b"\0" * 32) is None
        conn, fresh = lookup._conns.get()
        assert not fresh
        with conn.cursor() as cur:
            cur.execute("DEALLOCATE authsvc_validate")
        lookup._conns.put(conn)
        assert lookup.find(b"\0" * 32) is None
    finally:
        lookup.close()


def test_disabling_a_user_on_one_replica_is_refused_on_another(start_server):
    (_, a), (server_b, b) = replicas(start_server)
    user = sign_up(a)
    s1, s2 = sign_in(a), sign_in(a)
    warm(server_b, b, s1.session_token)
    warm(server_b, b, s2.session_token)
    a.DisableUser(pb.DisableUserRequest(id=user.id), timeout=10)
    assert_refused_on(server_b, b, s1.session_token)
    assert_refused_on(server_b, b, s2.session_token)
    refused_sign_in = fails(
        b.CreateSession, pb.CreateSessionRequest(email=user.email, password=PASSWORD)
    )
    assert refused_sign_in.reason == "USER_DISABLED"


def test_every_lifecycle_revocation_reaches_the_other_replica(start_server):
    (_, a), (server_b, b) = replicas(start_server)
    user = sign_up(a)
    revoked, everywhere = sign_in(a), sign_in(a)
    warm(server_b, b, revoked.session_token)
    a.RevokeSession(pb.RevokeSessionRequest(session_id=revoked.session.id), timeout=10)
    assert_refused_on(server_b, b, revoked.session_token)
    warm(server_b, b, everywhere.session_token)
    a.RevokeUserSessions(pb.RevokeUserSessionsRequest(user_id=user.id), timeout=10)
    assert_refused_on(server_b, b, everywhere.session_token)
    reset = sign_in(a)
    warm(server_b, b, reset.session_token)
    token = a.StartPasswordReset(pb.StartPasswordResetRequest(email=user.email)).reset_token
    request = pb.CompletePasswordResetRequest(reset_token=token, new_password="reset passphrase 7")
    a.CompletePasswordReset(request, timeout=10)
    assert_refused_on(server_b, b, reset.session_token)
    admin = sign_in(a, password="reset passphrase 7")
    warm(server_b, b, admin.session_token)
    a.SetPassword(pb.SetPasswordRequest(user_id=user.id, new_password=PASSWORD), timeout=10)
    assert_refused_on(server_b, b, admin.session_token)
