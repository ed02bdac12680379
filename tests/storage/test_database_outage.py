"""A real database outage: the test stops its own PostgreSQL under a running authsvc.

Calls must fail fast with UNAVAILABLE / DATABASE_UNAVAILABLE (not hang until their
deadline), health must turn NOT_SERVING, and both must recover once the database is
back, with the same server process and no restart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy.exc import TimeoutError as PoolTimeout

from authsvc.edge.status import as_auth_error
from authsvc.runtime.assembly import create_server
from authsvc.runtime.health import SERVICE_NAME
from authsvc.runtime.settings import Settings
from authsvc.storage import migrate
from authsvc.storage.engine import make_engine
from authsvc_client.v1 import auth_service_pb2 as pb
from authsvc_client.v1 import auth_service_pb2_grpc as pb_grpc
from tests.conftest import CHEAP_HASH
from tests.helpers import PASSWORD, failure, sign_in, sign_up, wait_until
from tests.pgcluster import PgCluster

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
DEADLINE = 10.0  # seconds; every call below must end (one way or another) before it


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgCluster]:
    pg = PgCluster()
    pg.init()
    pg.start()
    yield pg
    pg.destroy()


@contextmanager
def serving(cluster: PgCluster, health_interval: timedelta) -> Iterator[grpc.Channel]:
    engine = make_engine(cluster.url)
    migrate.upgrade(engine)
    engine.dispose()
    settings = Settings(
        address="127.0.0.1:0",
        database_url=cluster.url,
        password_hash=CHEAP_HASH,
        health_interval=health_interval,
        rpc_threads=8,
    )
    server, port = create_server(settings)
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield channel
    finally:
        channel.close()
        server.stop(0)


@pytest.fixture
def served(cluster: PgCluster) -> Iterator[tuple[None, grpc.Channel]]:
    with serving(cluster, timedelta(milliseconds=100)) as channel:
        yield None, channel


def health_of(channel: grpc.Channel, service: str = "") -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=DEADLINE)
    return int(reply.status)


def database_calls(stub: pb_grpc.AuthServiceStub, token: str, user_id: str) -> list[Callable]:
    """One call of every kind that needs the database (hash-free ones and a sign-in)."""
    return [
        lambda: stub.ValidateToken(pb.ValidateTokenRequest(session_token=token), timeout=DEADLINE),
        lambda: stub.GetUser(pb.GetUserRequest(id=user_id), timeout=DEADLINE),
        lambda: stub.ListUsers(pb.ListUsersRequest(), timeout=DEADLINE),
        lambda: stub.ListSessions(pb.ListSessionsRequest(user_id=user_id), timeout=DEADLINE),
        lambda: sign_in(stub, "outage@example.com", PASSWORD),
        lambda: sign_up(stub, "other@example.com"),
    ]


def test_outage_fails_fast_turns_health_off_and_recovers_without_restart(cluster, served):
    _server, channel = served
    stub = pb_grpc.AuthServiceStub(channel)
    user = sign_up(stub, "outage@example.com")
    session = sign_in(stub, "outage@example.com")
    assert health_of(channel) == SERVING

    cluster.stop("immediate")

    for call in database_calls(stub, session.session_token, user.id):
        with pytest.raises(grpc.RpcError) as caught:
            call()
        got = failure(caught.value)
        assert (got.code, got.reason, got.domain) == (
            grpc.StatusCode.UNAVAILABLE,
            "DATABASE_UNAVAILABLE",
            "authsvc",
        )
    wait_until(lambda: health_of(channel) == NOT_SERVING)
    assert health_of(channel, SERVICE_NAME) == NOT_SERVING

    cluster.start()

    wait_until(lambda: health_of(channel) == SERVING)
    assert health_of(channel, SERVICE_NAME) == SERVING
    reply = stub.ValidateToken(
        pb.ValidateTokenRequest(session_token=session.session_token), timeout=DEADLINE
    )
    assert reply.user.id == user.id
    assert sign_in(stub, "outage@example.com").user.id == user.id
    assert sign_up(stub, "after@example.com").email == "after@example.com"


def test_health_follows_what_calls_see_without_waiting_for_its_poll(cluster):
    # Health polls once an hour here: only the calls can tell it in time.
    with serving(cluster, timedelta(hours=1)) as channel:
        stub = pb_grpc.AuthServiceStub(channel)
        user = sign_up(stub, "follow@example.com")
        assert health_of(channel) == SERVING

        cluster.stop("immediate")
        with pytest.raises(grpc.RpcError) as caught:
            stub.GetUser(pb.GetUserRequest(id=user.id), timeout=DEADLINE)
        assert failure(caught.value).reason == "DATABASE_UNAVAILABLE"
        wait_until(lambda: health_of(channel) == NOT_SERVING)

        cluster.start()
        wait_until(lambda: answers(stub, user.id))
        wait_until(lambda: health_of(channel) == SERVING)
        assert health_of(channel, SERVICE_NAME) == SERVING


def answers(stub: pb_grpc.AuthServiceStub, user_id: str) -> bool:
    try:
        stub.GetUser(pb.GetUserRequest(id=user_id), timeout=DEADLINE)
    except grpc.RpcError:
        return False
    return True


def test_no_pooled_connection_in_time_is_database_unavailable():
    # SQLAlchemy's pool timeout once fell through to INTERNAL: it is not builtin TimeoutError.
    error = as_auth_error(PoolTimeout("QueuePool limit reached"), "/m")
    assert error.reason == "DATABASE_UNAVAILABLE"
