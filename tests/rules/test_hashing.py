"""Hash slots: calls wait for one until their deadline; past the queue they are refused at once."""

from __future__ import annotations

import os
import threading
from collections import Counter
from datetime import timedelta

import grpc
import pytest

from authsvc.deadlines import enter_call, leave_call
from authsvc.errors import DeadlineExceeded
from authsvc.rules import hashing
from authsvc.rules.hash_capacity import HashCapacity
from authsvc.rules.hashing import HASH_THREAD_NICENESS, Hasher
from authsvc_client.v1 import auth_service_pb2 as pb
from tests.conftest import CHEAP_HASH
from tests.helpers import PASSWORD, fails, failure, sign_up, wait_until

SLOW_HASH = "pbkdf2:sha256:300000"  # about 0.1 s per hash here: long enough to queue behind


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts the hashes the Hasher computes (new hashes and checks)."""
    counted: Counter[str] = Counter()
    make, check = hashing.generate_password_hash, Hasher._check

    def counting_make(password: str, method: str) -> str:
        counted["hash"] += 1
        return make(password, method)

    def counting_check(self: Hasher, stored: str, password: str) -> tuple[bool, float]:
        counted["check"] += 1
        return check(self, stored, password)

    monkeypatch.setattr(hashing, "generate_password_hash", counting_make)
    monkeypatch.setattr(Hasher, "_check", counting_check)
    return counted


def sign_in(stub, timeout: float | None = 10) -> pb.CreateSessionResponse:
    request = pb.CreateSessionRequest(email="ada@example.com", password=PASSWORD)
    return stub.CreateSession(request, timeout=timeout)


def concurrent_sign_ins(stub, count: int) -> list[object]:
    """Starts ``count`` sign-ins (30 s deadlines) at the same moment; replies or RpcErrors."""
    start = threading.Barrier(count)
    results: list[object] = [None] * count

    def call(i: int) -> None:
        start.wait()
        try:
            results[i] = sign_in(stub, timeout=30)
        except grpc.RpcError as exc:
            results[i] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.mark.slow
def test_sign_ins_with_a_deadline_queue_for_a_slot_past_the_queue_timeout(start_server):
    _, stub = start_server(
        password_hash=SLOW_HASH, hash_concurrency=1, hash_queue_timeout=timedelta(0)
    )
    sign_up(stub)
    results = concurrent_sign_ins(stub, 3)
    assert all(isinstance(r, pb.CreateSessionResponse) for r in results), results


@pytest.mark.slow
def test_sign_ins_past_the_queue_length_fail_with_resource_exhausted(start_server):
    _, stub = start_server(password_hash=SLOW_HASH, hash_concurrency=1, hash_queue_length=0)
    sign_up(stub)
    results = concurrent_sign_ins(stub, 4)
    errors = [failure(r) for r in results if isinstance(r, grpc.RpcError)]
    assert 1 <= len(errors) < 4, "one hash at a time, no queue: some in, the others turned away"
    for error in errors:
        assert (error.code, error.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "OVERLOADED")


def test_a_full_queue_sheds_at_once_even_with_a_long_deadline(start_server, hashes):
    server, stub = start_server(hash_concurrency=1, hash_queue_length=1)
    sign_up(stub)
    capacity = server.infra.hasher.capacity
    assert capacity.take_slot(0)  # a hash in progress ...
    assert capacity.admit() and capacity.admit()  # ... and one call waiting: the queue is full
    assert not capacity.admit()
    before = hashes.total()
    try:
        refused = fails(stub.CreateSession, sign_in_request(), timeout=60)
    finally:
        capacity.give_slot()
        capacity.leave()
        capacity.leave()
    assert (refused.code, refused.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "OVERLOADED")
    assert hashes.total() == before
    assert sign_in(stub).session.id  # room again


def sign_in_request() -> pb.CreateSessionRequest:
    return pb.CreateSessionRequest(email="ada@example.com", password=PASSWORD)


def test_without_a_deadline_a_held_slot_turns_sign_ins_away_after_the_queue_timeout(
    start_server,
):
    server, stub = start_server(hash_concurrency=1, hash_queue_timeout=timedelta(0))
    sign_up(stub)
    capacity = server.infra.hasher.capacity
    assert capacity.take_slot(0)
    try:
        refused = fails(stub.CreateSession, sign_in_request(), timeout=None)
    finally:
        capacity.give_slot()
    assert refused.reason == "OVERLOADED"
    assert sign_in(stub, timeout=None).session.id


def test_a_deadline_passing_in_the_queue_is_deadline_exceeded_and_hashes_nothing(
    start_server, hashes
):
    server, stub = start_server(hash_concurrency=1)
    sign_up(stub)
    capacity = server.infra.hasher.capacity
    before = hashes.total()
    assert capacity.take_slot(0)
    new_user = pb.CreateUserRequest(
        email="late@example.com", password=PASSWORD, first_name="L", last_name="T"
    )
    try:
        # The caller's own deadline may fire first: then its status has no details.
        with pytest.raises(grpc.RpcError) as late_sign_in:
            stub.CreateSession(sign_in_request(), timeout=0.5)
        with pytest.raises(grpc.RpcError) as late_sign_up:
            stub.CreateUser(new_user, timeout=0.5)
        until_nobody_waits(capacity)  # the server gave up too, before the slot frees
    finally:
        capacity.give_slot()
    assert late_sign_in.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert late_sign_up.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert hashes.total() == before, "no hash for a caller that had gone"
    assert [u.email for u in stub.ListUsers(pb.ListUsersRequest(), timeout=10).users] == [
        "ada@example.com"
    ]


def until_nobody_waits(capacity: HashCapacity) -> None:
    wait_until(lambda: capacity.admitted() == 0, what="calls to stop waiting for a hash slot")


class _GrantedAfterTheDeadline(HashCapacity):
    """Hands out the slot only once the waiting call's deadline has passed: its
    ``time_left`` (the call's deadline, a fake clock) runs out while it waits."""

    def __init__(self, slots: int, queue: int, time_left: list[float]) -> None:
        super().__init__(slots, queue)
        self.time_left = time_left

    def take_slot(self, timeout: float | None) -> bool:
        assert timeout is not None  # it waits until the deadline...
        self.time_left[0] = 0.0  # ...which passes before the slot comes
        return super().take_slot(0)


def test_a_slot_granted_as_the_deadline_passes_hashes_nothing(hashes):
    time_left = [0.05]
    hasher = Hasher(CHEAP_HASH, _GrantedAfterTheDeadline(1, 1, time_left))
    try:
        call = enter_call(lambda: time_left[0])
        try:
            with pytest.raises(DeadlineExceeded):
                hasher.hash(PASSWORD)
        finally:
            leave_call(call)
        assert hashes.total() == 0
        assert hasher.capacity.take_slot(0) and hasher.capacity.admit()  # both given back
    finally:
        hasher.close()


def test_password_hashes_run_on_lower_priority_threads():
    seen: list[int] = []
    hasher = Hasher(CHEAP_HASH, HashCapacity(1, 0))
    try:
        hasher._pool.submit(  # the pool thread itself
            lambda: seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        ).result()
        assert hasher.verify(hasher.hash("a fine passphrase"), "a fine passphrase")
    finally:
        hasher.close()
    base = os.getpriority(os.PRIO_PROCESS, 0)
    assert seen == [min(base + HASH_THREAD_NICENESS, 19)]


def test_each_process_hashes_on_as_many_threads_as_the_replica_has_slots():
    hasher = Hasher(CHEAP_HASH, HashCapacity(3, 0, processes=2).for_process(1))
    try:
        assert hasher._pool._max_workers == 3
    finally:
        hasher.close()
