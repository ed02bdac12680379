"""``kill -9`` of a replica under a write load: every acknowledged change has its event."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import grpc
import pytest

from authsvc.storage import migrate
from authsvc.storage.engine import make_engine
from authsvc_client.v1 import auth_service_pb2 as pb
from authsvc_client.v1 import auth_service_pb2_grpc as pb_grpc
from tests.conftest import create_pg_database, drop_pg_database
from tests.helpers import wait_until
from tests.serve_process import ServeProcess

CLIENTS = 3
ACKS_BEFORE_KILL = 40
GIVE_UP_SECONDS = 120.0  # a hang guard, not a timing


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request, tmp_path) -> Iterator[str]:
    url = (
        f"sqlite:///{tmp_path / 'crash.db'}"
        if request.param == "sqlite"
        else create_pg_database("authsvc_event_crash")
    )
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    yield url
    if request.param == "postgresql":
        drop_pg_database(url)


def writer(stub, acked: list[str], lock: threading.Lock) -> None:
    """Signs users up until the server goes away; records each acknowledged one."""
    try:
        while True:
            reply = stub.CreateUser(
                pb.CreateUserRequest(
                    email=f"{uuid.uuid4().hex[:12]}@example.com",
                    password="correct horse 1",
                    first_name="Kill",
                    last_name="Nine",
                ),
                timeout=10,
            )
            with lock:
                acked.append(reply.user.id)
    except grpc.RpcError:
        return  # the server was killed


def caught_up(stub) -> list[pb.Event]:
    """Every event in the stream until its first heartbeat (then it has sent all)."""
    stream = stub.WatchEvents(pb.WatchEventsRequest(), timeout=GIVE_UP_SECONDS)
    try:
        received = []
        for event in stream:
            if event.type == "heartbeat":
                return received
            received.append(event)
        raise AssertionError("the stream ended")
    finally:
        stream.cancel()


def test_kill_9_under_load_loses_no_acknowledged_event(fresh_url, tmp_path):
    fast = {"AUTHSVC_EVENT_HEARTBEAT_INTERVAL": "500ms"}
    server = ServeProcess(fresh_url, tmp_path / "serve-1.log", **fast)
    acked: list[str] = []
    lock = threading.Lock()
    with grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.AuthServiceStub(channel)
        threads = [
            threading.Thread(target=writer, args=(stub, acked, lock)) for _ in range(CLIENTS)
        ]
        for t in threads:
            t.start()
        try:
            wait_until(
                lambda: len(acked) >= ACKS_BEFORE_KILL,
                timeout=GIVE_UP_SECONDS,
                interval=0.01,
                what="the writers to make progress",
            )
        finally:
            server.kill()  # SIGKILL mid-load: calls are in flight
            for t in threads:
                t.join(timeout=60)
    restarted = ServeProcess(fresh_url, tmp_path / "serve-2.log", **fast)
    try:
        with grpc.insecure_channel(restarted.address) as channel:
            events = caught_up(pb_grpc.AuthServiceStub(channel))
    finally:
        restarted.kill()
    created = [e.user_id for e in events if e.type == "user.created"]
    assert set(acked) <= set(created)  # in-flight calls may have committed too
    assert len(created) == len(set(created))
    # Each acknowledged one exactly once, and nothing else but sign-ups was written.
    assert {e.type for e in events} == {"user.created"}
