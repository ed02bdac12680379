"""Past AUTHSVC_HASH_CONCURRENCY, sign-ins queue briefly, then fail with RESOURCE_EXHAUSTED."""

from __future__ import annotations

import threading
from datetime import timedelta

import grpc
import pytest

from authsvc_client.v1 import auth_service_pb2 as pb
from tests.helpers import PASSWORD, failure, sign_up

SLOW_HASH = "pbkdf2:sha256:300000"  # about 0.1 s per hash here: long enough to queue behind


def concurrent_sign_ins(stub, count: int) -> list[object]:
    """Starts ``count`` sign-ins at the same moment; returns replies or RpcErrors."""
    start = threading.Barrier(count)
    results: list[object] = [None] * count

    def call(i: int) -> None:
        start.wait()
        try:
            results[i] = stub.CreateSession(
                pb.CreateSessionRequest(email="ada@example.com", password=PASSWORD), timeout=30
            )
        except grpc.RpcError as exc:
            results[i] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.mark.slow
def test_sign_ins_past_the_bound_fail_with_resource_exhausted(start_server):
    _, stub = start_server(
        password_hash=SLOW_HASH,
        hash_concurrency=1,
        hash_queue_timeout=timedelta(milliseconds=10),
    )
    sign_up(stub)
    results = concurrent_sign_ins(stub, 4)
    errors = [failure(r) for r in results if isinstance(r, grpc.RpcError)]
    assert 1 <= len(errors) < 4, "one hash at a time: some sign-ins in, the others turned away"
    for error in errors:
        assert (error.code, error.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "OVERLOADED")


@pytest.mark.slow
def test_sign_ins_queue_briefly_for_a_hash_slot(start_server):
    _, stub = start_server(
        password_hash=SLOW_HASH, hash_concurrency=1, hash_queue_timeout=timedelta(seconds=20)
    )
    sign_up(stub)
    results = concurrent_sign_ins(stub, 3)
    assert all(isinstance(r, pb.CreateSessionResponse) for r in results), results


def test_a_held_slot_turns_sign_ins_away_and_its_release_lets_them_in(start_server):
    server, stub = start_server(hash_concurrency=1, hash_queue_timeout=timedelta(0))
    sign_up(stub)
    with server.infra.hasher._slot():  # a hash in progress holds the only slot
        with pytest.raises(grpc.RpcError) as caught:
            stub.CreateSession(
                pb.CreateSessionRequest(email="ada@example.com", password=PASSWORD), timeout=10
            )
        assert failure(caught.value).reason == "OVERLOADED"
    stub.CreateSession(
        pb.CreateSessionRequest(email="ada@example.com", password=PASSWORD), timeout=10
    )


def test_password_hashes_run_on_lower_priority_threads():
    import os
    import threading

    from authsvc.rules.hashing import HASH_THREAD_NICENESS, Hasher

    seen: list[int] = []
    hasher = Hasher("pbkdf2:sha256:1000", 1)
    try:
        hasher._pool.submit(  # the pool thread itself
            lambda: seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        ).result()
        assert hasher.verify(hasher.hash("a fine passphrase"), "a fine passphrase")
    finally:
        hasher.close()
    base = os.getpriority(os.PRIO_PROCESS, 0)
    assert seen == [min(base + HASH_THREAD_NICENESS, 19)]
