"""require_session in a real second gRPC service that calls a real authsvc."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent import futures
from datetime import timedelta
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from authsvc_client import AuthClient, RetryPolicy, current_session, current_user, require_session
from tests.helpers import PASSWORD, failure

WHOAMI = "/demo.v1.Profile/WhoAmI"
SESSIONS = "/demo.v1.Profile/StreamIdentity"
HEALTH_CHECK = "/grpc.health.v1.Health/Check"


def _whoami(request: bytes, context: grpc.ServicerContext) -> bytes:
    return current_user().email.encode()


def _stream_identity(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
    yield current_user().id.encode()
    yield current_session().id.encode()


def start_profile_service(auth: AuthClient) -> tuple[grpc.Server, int]:
    """The "other service": raw-bytes methods behind require_session, health exempt."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=4),
        interceptors=[require_session(auth, exempt={HEALTH_CHECK})],
    )
    handlers = {
        "WhoAmI": grpc.unary_unary_rpc_method_handler(_whoami),
        "StreamIdentity": grpc.unary_stream_rpc_method_handler(_stream_identity),
    }
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler("demo.v1.Profile", handlers)]
    )
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


class World:
    """A real authsvc, a client of it, and the profile service using that client."""

    def __init__(self, auth: AuthClient, channel: grpc.Channel) -> None:
        self.auth = auth
        self.whoami = channel.unary_unary(WHOAMI)
        self.stream = channel.unary_stream(SESSIONS)
        self.health = health_pb2_grpc.HealthStub(channel)

    def sign_in(self) -> Any:
        self.auth.create_user("ada@example.com", PASSWORD, "Ada", "Lovelace")
        return self.auth.create_session("ada@example.com", PASSWORD)


@pytest.fixture
def world(server_address: str) -> Iterator[World]:
    auth = AuthClient(server_address, timeout=10)
    profile, port = start_profile_service(auth)
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield World(auth, channel)
    channel.close()
    profile.stop(0)
    auth.close()


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def refused(call: Any, metadata: Any = None) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as caught:
        reply = call(b"", metadata=metadata, timeout=10)
        if not isinstance(reply, bytes):
            list(reply)  # a stream fails when read
    f = failure(caught.value)
    return f.code, f.reason


def test_live_token_reaches_the_handler_with_its_user(world: World):
    signed_in = world.sign_in()
    assert world.whoami(b"", metadata=bearer(signed_in.session_token), timeout=10) == (
        b"ada@example.com"
    )
    streamed = list(world.stream(b"", metadata=bearer(signed_in.session_token), timeout=10))
    assert streamed == [signed_in.user.id.encode(), signed_in.session.id.encode()]


def test_scheme_is_case_insensitive(world: World):
    token = world.sign_in().session_token
    metadata = (("authorization", f"bearer {token}"),)
    assert world.whoami(b"", metadata=metadata, timeout=10) == b"ada@example.com"


def test_missing_or_malformed_authorization_is_unauthenticated(world: World):
    token = world.sign_in().session_token
    unauthenticated = grpc.StatusCode.UNAUTHENTICATED
    assert refused(world.whoami) == (unauthenticated, "AUTHORIZATION_MISSING")
    for value in (f"Basic {token}", token, "Bearer ", "Bearer"):
        metadata = (("authorization", value),)
        assert refused(world.whoami, metadata) == (unauthenticated, "AUTHORIZATION_MALFORMED")
    assert refused(world.stream) == (unauthenticated, "AUTHORIZATION_MISSING")


def test_invalid_and_expired_tokens_pass_authsvc_reason_through(world: World, clock):
    signed_in = world.sign_in()
    unauthenticated = grpc.StatusCode.UNAUTHENTICATED
    assert refused(world.whoami, bearer("not-a-token")) == (unauthenticated, "TOKEN_INVALID")
    clock.advance(timedelta(hours=2))
    assert refused(world.whoami, bearer(signed_in.session_token)) == (
        unauthenticated,
        "TOKEN_EXPIRED",
    )


def test_exempt_methods_need_no_session(world: World):
    reply = world.health.Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_unreachable_authsvc_is_unavailable_not_unauthenticated(db_url):
    # Nothing listens on the reserved port 1: every ValidateToken fails UNAVAILABLE.
    fast = RetryPolicy(max_attempts=2, initial_backoff=0.01, max_backoff=0.01)
    with AuthClient("127.0.0.1:1", timeout=5, retry=fast) as auth:
        profile, port = start_profile_service(auth)
        try:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                call = channel.unary_unary(WHOAMI)
                assert refused(call, bearer("some-token")) == (
                    grpc.StatusCode.UNAVAILABLE,
                    "AUTH_UNAVAILABLE",
                )
        finally:
            profile.stop(0)


def test_token_never_reaches_the_logs(world: World, caplog):
    signed_in = world.sign_in()
    token = signed_in.session_token
    with caplog.at_level(logging.DEBUG):
        world.whoami(b"", metadata=bearer(token), timeout=10)
        refused(world.whoami, (("authorization", f"Basic {token}"),))
        refused(world.whoami, bearer(token + "x"))
    assert any(r.name.startswith("authsvc_client") for r in caplog.records)
    for record in caplog.records:
        text = record.getMessage() + repr(vars(record))
        assert token not in text


def test_current_user_outside_a_call_raises():
    with pytest.raises(LookupError):
        current_user()
