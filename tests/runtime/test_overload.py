"""Overload: excess calls are shed, huge requests refused, deadlines end waits.

The tests hold the shared resource themselves (the only hash slot, every pooled
connection) instead of relying on slow work, so they are deterministic. A worker pool
of one thread shows that a call whose deadline passed freed its worker: a probe call
that needs neither a hash nor a connection gets through.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import grpc
import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import TimeoutError as PoolTimeout

from authsvc.deadlines import call_deadline
from authsvc.errors import DeadlineExceeded, Overloaded
from authsvc.rules.hash_capacity import HashCapacity
from authsvc.rules.hashing import Hasher
from authsvc.runtime.assembly import AuthServer
from authsvc.storage.engine import make_engine
from authsvc.storage.errors import ConnectionWaitExpired
from authsvc.storage.pool import DeadlineQueuePool
from authsvc_client.v1 import auth_service_pb2 as pb
from authsvc_client.v1 import auth_service_pb2_grpc as pb_grpc
from tests.conftest import CHEAP_HASH
from tests.helpers import PASSWORD, fails, sign_in, sign_up, wait_until

sqlite_only = pytest.mark.parametrize("migrated_url", ["sqlite"], indirect=True)
Start = Callable[..., tuple[AuthServer, pb_grpc.AuthServiceStub]]
WAIT_FOREVER = 30.0  # far beyond the deadlines below (and the probe's 10 s timeout)


def new_user(email: str) -> pb.CreateUserRequest:
    return pb.CreateUserRequest(email=email, password=PASSWORD, first_name="A", last_name="B")


def probe(stub: pb_grpc.AuthServiceStub) -> str:
    """A call that needs no hash and no connection (it fails validation first)."""
    return fails(stub.CreateUser, new_user("not-an-email")).reason


@contextmanager
def all_hash_slots_taken(hasher: Hasher) -> Iterator[None]:
    """Holds every hash slot; waits for one last ``WAIT_FOREVER`` unless a deadline ends them."""
    hasher._queue_timeout = WAIT_FOREVER
    held = 0
    while hasher.capacity.take_slot(0):
        held += 1
    try:
        yield
    finally:
        for _ in range(held):
            hasher.capacity.give_slot()


@contextmanager
def all_connections_taken(engine: Engine) -> Iterator[None]:
    """Checks out every connection the pool may open, and waits on it last ``WAIT_FOREVER``."""
    pool = engine.pool
    assert isinstance(pool, DeadlineQueuePool)
    pool._timeout = WAIT_FOREVER
    held = [pool.connect() for _ in range(pool.size() + pool._max_overflow)]
    try:
        yield
    finally:
        for connection in held:
            connection.close()


# Shedding


@sqlite_only
def test_calls_beyond_max_concurrent_rpcs_are_shed_and_the_rest_complete(
    start_server: Start,
) -> None:
    server, stub = start_server(max_concurrent_rpcs=2, hash_concurrency=1, rpc_threads=4)
    with all_hash_slots_taken(server.infra.hasher):
        # Two of the three block on the hash slot, so whichever arrives last is over the limit.
        calls = [
            stub.CreateUser.future(new_user(f"u{i}@example.com"), timeout=60) for i in (1, 2, 3)
        ]
        first_done = first_to_finish(calls)
    shed = [c for c in calls if c.code() == grpc.StatusCode.RESOURCE_EXHAUSTED]
    assert shed == [first_done]
    served = [c.result().user.email for c in calls if c is not first_done]
    assert len(served) == 2
    assert sign_up(stub).email == "ada@example.com"  # still serving


def first_to_finish(calls: list[Any]) -> Any:
    """The first of ``calls`` to complete."""
    done: queue.SimpleQueue[Any] = queue.SimpleQueue()
    for call in calls:
        call.add_done_callback(done.put)
    return done.get(timeout=30)


# Request size


@sqlite_only
def test_request_over_64_kib_is_refused_and_the_server_keeps_serving(start_server: Start) -> None:
    _, stub = start_server()
    huge = new_user("a" * (100 * 1024) + "@example.com")
    with pytest.raises(grpc.RpcError) as caught:
        stub.CreateUser(huge, timeout=10)
    # Refused by gRPC before any handler runs (without the limit it would reach validation).
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert sign_up(stub).email == "ada@example.com"


@sqlite_only
def test_request_just_under_64_kib_is_read_and_validated(start_server: Start) -> None:
    _, stub = start_server()
    large = new_user("a" * (60 * 1024) + "@example.com")
    failed = fails(stub.CreateUser, large)
    assert (failed.code, failed.fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["email"])


# Deadlines


@sqlite_only
def test_deadline_passing_while_waiting_for_a_hash_slot_frees_the_worker(
    start_server: Start,
) -> None:
    server, stub = start_server(hash_concurrency=1, rpc_threads=1)
    with all_hash_slots_taken(server.infra.hasher):
        with pytest.raises(grpc.RpcError) as caught:
            stub.CreateUser(new_user("late@example.com"), timeout=0.5)
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert probe(stub) == "INVALID_ARGUMENT"  # the only worker is free again
    assert stub.ListUsers(pb.ListUsersRequest(), timeout=10).users == []  # nothing written


def test_deadline_passing_while_waiting_for_a_connection_frees_the_worker(
    start_server: Start,
) -> None:
    server, stub = start_server(rpc_threads=1)
    with all_connections_taken(server.infra.database.engine):
        with pytest.raises(grpc.RpcError) as caught:
            stub.ListUsers(pb.ListUsersRequest(), timeout=0.5)
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert probe(stub) == "INVALID_ARGUMENT"  # the only worker is free again
    assert stub.ListUsers(pb.ListUsersRequest(), timeout=10).users == []


def test_validate_token_is_served_while_every_shared_handler_thread_is_blocked(
    start_server: Start,
) -> None:
    # The shared pool: rpc_threads + hash slots + hash queue length = 2 threads.
    server, stub = start_server(rpc_threads=1, hash_concurrency=1, hash_queue_length=0)
    sign_up(stub)
    token = sign_in(stub).session_token
    engine = server.infra.database.engine
    with all_connections_taken(engine):
        blocked = [stub.ListUsers.future(pb.ListUsersRequest(), timeout=60) for _ in range(2)]
        wait_until(lambda: connection_waiters(engine) == 2)  # both shared threads hold a call
        # ValidateToken runs on its own threads (and its own connections).
        assert stub.ValidateToken(pb.ValidateTokenRequest(session_token=token), timeout=10).user
    assert [len(call.result().users) for call in blocked] == [1, 1]


def connection_waiters(engine: Engine) -> int:
    """Threads waiting for a pooled connection (the pool's queue's condition)."""
    return len(engine.pool._pool.not_empty._waiters)  # type: ignore[attr-defined]


def test_at_most_slots_calls_of_a_process_prepare_a_password_check_at_once() -> None:
    hasher = Hasher(CHEAP_HASH, HashCapacity(2, 4), queue_timeout=0.05)
    with hasher.preparing(), hasher.preparing():
        with call_deadline(0.05), pytest.raises(DeadlineExceeded), hasher.preparing():
            pass  # pragma: no cover - never entered
        with pytest.raises(Overloaded), hasher.preparing():  # no deadline: the queue timeout
            pass  # pragma: no cover - never entered
    with hasher.preparing(), hasher.preparing():
        pass  # both turns were given back


@sqlite_only
def test_a_sign_in_waiting_for_its_turn_to_prepare_ends_at_its_deadline(
    start_server: Start,
) -> None:
    server, stub = start_server(hash_concurrency=1, rpc_threads=1)
    sign_up(stub)
    hasher = server.infra.hasher
    hasher._queue_timeout = WAIT_FOREVER
    with every_turn_taken(hasher):
        # Either side may end it first (the client's deadline, or the server's wait).
        with pytest.raises(grpc.RpcError) as caught:
            stub.CreateSession(sign_in_request(), timeout=0.5)
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert probe(stub) == "INVALID_ARGUMENT"  # its worker is free again
    assert stub.CreateSession(sign_in_request(), timeout=10).session_token


def sign_in_request() -> pb.CreateSessionRequest:
    return pb.CreateSessionRequest(email="ada@example.com", password=PASSWORD)


@contextmanager
def every_turn_taken(hasher: Hasher) -> Iterator[None]:
    """Holds every turn to prepare a password check in this process."""
    with ExitStack() as turns:
        for _ in range(hasher.capacity.slots):
            turns.enter_context(hasher.preparing())
        yield


def test_hash_slot_wait_ends_at_the_deadline_with_deadline_exceeded() -> None:
    hasher = Hasher(CHEAP_HASH, HashCapacity(1, 4))
    with all_hash_slots_taken(hasher), call_deadline(0.05), pytest.raises(DeadlineExceeded):
        hasher.hash(PASSWORD)
    with call_deadline(0.0), pytest.raises(DeadlineExceeded):
        hasher.verify(None, PASSWORD)  # already past: no wait at all
    assert hasher.verify(hasher.hash(PASSWORD), PASSWORD)  # slots were given back


def test_without_a_deadline_the_hash_slot_wait_ends_at_the_queue_timeout() -> None:
    hasher = Hasher(CHEAP_HASH, HashCapacity(1, 4), queue_timeout=0.05)
    assert hasher.capacity.take_slot(0)
    with pytest.raises(Overloaded):
        hasher.hash(PASSWORD)


def test_pool_checkout_ends_at_the_deadline_and_pool_timeout_still_applies(db_url: str) -> None:
    engine = make_engine(db_url, pool_size=1)
    try:
        with all_connections_taken(engine):
            with call_deadline(0.05), pytest.raises(ConnectionWaitExpired):
                engine.connect()
            engine.pool._timeout = 0.05  # type: ignore[attr-defined]
            with call_deadline(60), pytest.raises(PoolTimeout):
                engine.connect()
        with call_deadline(60), engine.connect() as connection:  # connections came back
            assert connection.exec_driver_sql("SELECT 1").scalar() == 1
    finally:
        engine.dispose()
