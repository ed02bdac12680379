"""API keys on a live server: a key names a caller in the caller policy, over plaintext.

Keys are checked against the database, so these run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlalchemy import func, select

from authsvc.edge.caller_policy import load_policy
from authsvc.flows.api_keys import ApiKeys
from authsvc.flows.changes import Changes
from authsvc.rules.tokens import TokenKind, new_token
from authsvc.runtime.assembly import AuthServer
from authsvc.runtime.settings import Settings
from authsvc.storage.engine import Database
from authsvc.storage.errors import StorageUnavailable
from authsvc.storage.models import ApiKey, AuditRecord, ThrottleCounter
from authsvc.storage.validation_cache import ValidationCache
from authsvc_client import AuthClient, AuthClientError
from authsvc_client.v1 import auth_service_pb2 as pb
from authsvc_client.v1 import auth_service_pb2_grpc as pb_grpc
from tests.conftest import FakeClock
from tests.helpers import fails, sign_in, sign_up
from tests.leak_watch import WATCH

AUTH = "/authsvc.v1.AuthService/"
POLICY = """
# These tests call from loopback: the policy alone decides (no loopback privileges).
loopback = "none"
[callers]
# Known by an API key (authsvc api-key create billing-service) or a certificate CN.
"billing-service" = ["CreateUser", "CreateSession", "ValidateToken", "GetUser", "ListUsers"]
"reporting" = ["ListAuditEvents"]
"""
TTL = timedelta(seconds=5)


@pytest.fixture
def policy_file(tmp_path: Path) -> str:
    path = tmp_path / "callers.toml"
    path.write_text(POLICY)
    return str(path)


@pytest.fixture
def server(
    start_server: Callable[..., tuple[AuthServer, pb_grpc.AuthServiceStub]], policy_file: str
) -> AuthServer:
    """A plaintext server (no TLS at all) enforcing POLICY, keys cached for TTL."""
    server, _ = start_server(callers=load_policy(policy_file), api_key_cache_ttl=TTL)
    return server


@pytest.fixture
def call_with(server: AuthServer) -> Iterator[Callable[[str | None], Any]]:
    """Opens stubs that send ``x-api-key`` (None: no key) on every call."""
    channels: list[grpc.Channel] = []

    def open_stub(key: str | None) -> Any:
        channels.append(grpc.insecure_channel(f"127.0.0.1:{server.port}"))
        return KeyedStub(pb_grpc.AuthServiceStub(channels[-1]), key)

    yield open_stub
    for channel in channels:
        channel.close()


class KeyedStub:
    """An AuthService stub whose every call carries the API key."""

    def __init__(self, stub: pb_grpc.AuthServiceStub, key: str | None) -> None:
        self._stub = stub
        self._metadata = (("x-api-key", key),) if key is not None else ()

    def __getattr__(self, name: str) -> Callable[..., Any]:
        rpc = getattr(self._stub, name)

        def call(request: Any, timeout: float = 10) -> Any:
            return rpc(request, timeout=timeout, metadata=self._metadata)

        return call


def create_key(server: AuthServer, name: str) -> str:
    _, key = server.flows.api_keys.create(name)
    WATCH.learn(key)
    return key


def other_replica(database: Database, clock: FakeClock) -> ApiKeys:
    """The API keys as another process (another replica, or the CLI) sees them."""
    return ApiKeys(Changes(database, ValidationCache(0), clock), TTL)


def audited(database: Database, event: str) -> list[str]:
    with database.transaction(writes=False) as db:
        query = select(AuditRecord.detail).where(AuditRecord.event == event)
        return sorted(db.scalars(query))


def assert_key_invalid(call: Callable[..., Any], request: Any) -> None:
    failed = fails(call, request)
    assert (failed.code, failed.reason) == (grpc.StatusCode.UNAUTHENTICATED, "API_KEY_INVALID")


def test_a_key_names_its_caller_in_the_policy(
    server: AuthServer, call_with: Callable[[str | None], Any], database: Database
) -> None:
    billing = call_with(create_key(server, "billing-service"))
    user = sign_up(billing)
    assert [u.id for u in billing.ListUsers(pb.ListUsersRequest()).users] == [user.id]
    assert billing.GetUser(pb.GetUserRequest(id=user.id)).user.email == user.email
    failed = fails(billing.ListAuditEvents, pb.ListAuditEventsRequest())
    assert (failed.code, failed.reason) == (grpc.StatusCode.PERMISSION_DENIED, "CALLER_NOT_ALLOWED")
    assert "billing-service may not call ListAuditEvents" in failed.message
    assert audited(database, "CALLER_DENIED") == [f"billing-service {AUTH}ListAuditEvents"]


def test_each_key_grants_only_its_own_names_methods(
    server: AuthServer, call_with: Callable[[str | None], Any]
) -> None:
    reporting = call_with(create_key(server, "reporting"))
    assert reporting.ListAuditEvents(pb.ListAuditEventsRequest()).audit_events is not None
    failed = fails(reporting.ListUsers, pb.ListUsersRequest())
    assert failed.reason == "CALLER_NOT_ALLOWED"


def test_without_a_key_a_policy_denies_even_loopback_callers(
    server: AuthServer, call_with: Callable[[str | None], Any], database: Database
) -> None:
    failed = fails(call_with(None).ListUsers, pb.ListUsersRequest())
    assert failed.reason == "CALLER_NOT_ALLOWED"
    [detail] = audited(database, "CALLER_DENIED")
    assert detail.startswith("peer ipv4:127.0.0.1:") and detail.endswith(f"{AUTH}ListUsers")


@pytest.mark.parametrize(
    "key",
    [
        new_token(TokenKind.API_KEY),  # well-formed, never issued
        "not-an-api-key-at-all",
        new_token(TokenKind.SESSION),  # a session token is not a key
        new_token(TokenKind.API_KEY) + "x",
    ],
    ids=["unknown", "malformed", "session-token", "too-long"],
)
def test_a_key_that_is_not_live_is_refused_and_audited(
    server: AuthServer, call_with: Callable[[str | None], Any], database: Database, key: str
) -> None:
    create_key(server, "billing-service")
    assert_key_invalid(call_with(key).ListUsers, pb.ListUsersRequest())
    [detail] = audited(database, "API_KEY_REJECTED")
    assert detail.startswith("peer ipv4:127.0.0.1:") and detail.endswith(f"{AUTH}ListUsers")
    assert key not in detail


def test_wrong_keys_are_refused_and_audited_every_time_but_never_throttled(
    server: AuthServer, call_with: Callable[[str | None], Any], database: Database
) -> None:
    stranger = call_with(new_token(TokenKind.API_KEY))
    for _ in range(12):
        assert_key_invalid(stranger.ListUsers, pb.ListUsersRequest())
    assert len(audited(database, "API_KEY_REJECTED")) == 12
    with database.transaction(writes=False) as db:
        assert db.scalar(select(func.count()).select_from(ThrottleCounter)) == 0


def test_a_wrong_key_is_refused_even_when_its_audit_row_cannot_be_written(
    server: AuthServer,
    call_with: Callable[[str | None], Any],
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def unwritable(*args: object, **kwargs: object) -> None:
        raise StorageUnavailable("the audit row could not be written")

    monkeypatch.setattr(Changes, "record", unwritable)
    assert_key_invalid(call_with(new_token(TokenKind.API_KEY)).ListUsers, pb.ListUsersRequest())
    assert audited(database, "API_KEY_REJECTED") == []


def test_a_bad_key_is_refused_on_ordinary_rpcs_too(
    server: AuthServer, call_with: Callable[[str | None], Any]
) -> None:
    stranger = call_with(new_token(TokenKind.API_KEY))
    assert_key_invalid(stranger.ValidateToken, pb.ValidateTokenRequest(session_token="x"))


def test_two_keys_on_one_call_are_refused(
    server: AuthServer, call_with: Callable[[str | None], Any]
) -> None:
    key = create_key(server, "billing-service")
    twice = (("x-api-key", key), ("x-api-key", key))
    with (
        grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel,
        pytest.raises(grpc.RpcError) as caught,
    ):
        pb_grpc.AuthServiceStub(channel).ListUsers(pb.ListUsersRequest(), metadata=twice)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_key_revoked_on_this_replica_is_refused_at_once(
    server: AuthServer, call_with: Callable[[str | None], Any], database: Database
) -> None:
    billing = call_with(create_key(server, "billing-service"))
    billing.ListUsers(pb.ListUsersRequest())  # cached now
    [revoked] = server.flows.api_keys.revoke(name="billing-service")
    assert_key_invalid(billing.ListUsers, pb.ListUsersRequest())
    assert audited(database, "API_KEY_REVOKED") == [f"billing-service ({revoked.id})"]
    assert len(audited(database, "API_KEY_REJECTED")) == 1


def test_a_key_revoked_elsewhere_is_refused_once_the_cache_entry_expires(
    server: AuthServer,
    call_with: Callable[[str | None], Any],
    database: Database,
    clock: FakeClock,
) -> None:
    billing = call_with(create_key(server, "billing-service"))
    billing.ListUsers(pb.ListUsersRequest())  # this replica caches the key for TTL
    other_replica(database, clock).revoke(name="billing-service")
    clock.advance(TTL)  # the documented bound: AUTHSVC_API_KEY_CACHE_TTL
    assert_key_invalid(billing.ListUsers, pb.ListUsersRequest())


def test_without_a_cache_a_revocation_elsewhere_is_refused_on_the_next_call(
    start_server: Callable[..., tuple[AuthServer, pb_grpc.AuthServiceStub]],
    policy_file: str,
    database: Database,
    clock: FakeClock,
) -> None:
    server, _ = start_server(callers=load_policy(policy_file), api_key_cache_ttl=timedelta(0))
    key = create_key(server, "billing-service")
    with AuthClient(f"127.0.0.1:{server.port}", api_key=key) as client:
        client.list_users()
        other_replica(database, clock).revoke(name="billing-service")
        with pytest.raises(AuthClientError) as caught:
            client.list_users()
    assert caught.value.reason == "API_KEY_INVALID"


def test_rotation_two_live_keys_of_one_name_then_revoke_the_old_by_id(
    server: AuthServer, call_with: Callable[[str | None], Any]
) -> None:
    old_record, old = server.flows.api_keys.create("billing-service")
    WATCH.learn(old)
    new = create_key(server, "billing-service")
    assert call_with(old).ListUsers(pb.ListUsersRequest()).users is not None
    server.flows.api_keys.revoke(key_id=old_record.id)
    assert_key_invalid(call_with(old).ListUsers, pb.ListUsersRequest())
    assert call_with(new).ListUsers(pb.ListUsersRequest()).users is not None


def test_the_python_client_sends_its_api_key(server: AuthServer) -> None:
    key = create_key(server, "billing-service")
    with AuthClient(f"127.0.0.1:{server.port}", api_key=key) as client:
        assert client.list_users().users == []
    with (
        AuthClient(f"127.0.0.1:{server.port}") as anonymous,
        pytest.raises(AuthClientError) as caught,
    ):
        anonymous.list_users()
    assert caught.value.reason == "CALLER_NOT_ALLOWED"


def test_the_python_client_refuses_an_empty_api_key() -> None:
    with pytest.raises(ValueError, match="api_key must be non-empty"):
        AuthClient("127.0.0.1:1", api_key="")


def test_a_used_key_records_when_it_was_last_used(
    server: AuthServer,
    call_with: Callable[[str | None], Any],
    database: Database,
    clock: FakeClock,
) -> None:
    billing = call_with(create_key(server, "billing-service"))
    billing.ListUsers(pb.ListUsersRequest())
    with database.transaction(writes=False) as db:
        [row] = db.scalars(select(ApiKey)).all()
    assert (row.name, row.last_used_at, row.revoked_at) == ("billing-service", clock.now, None)
    assert len(row.key_hash) == 32  # the SHA-256, never the key


def test_the_key_never_reaches_the_logs(
    server: AuthServer,
    call_with: Callable[[str | None], Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    key = create_key(server, "billing-service")
    bad = new_token(TokenKind.API_KEY)
    with caplog.at_level(logging.DEBUG):
        billing = call_with(key)
        sign_up(billing)
        sign_in(billing)
        fails(billing.ListAuditEvents, pb.ListAuditEventsRequest())
        server.flows.api_keys.revoke(name="billing-service")
        fails(billing.ListUsers, pb.ListUsersRequest())
        fails(call_with(bad).ListUsers, pb.ListUsersRequest())
    text = caplog.text + "".join(str(vars(r)) for r in caplog.records)
    assert key not in text and bad not in text
    assert "api_key_rejected" in text and "api_key_revoked" in text  # logged, without the key
    # (and the autouse leak check looks for them and their SHA-256 in every record)


def test_the_policy_needs_no_tls(make_settings: Callable[..., Settings], policy_file: str) -> None:
    settings = make_settings(callers=load_policy(policy_file))
    assert (settings.tls_cert, settings.tls_client_ca) == ("", "")
