"""The Python client's ``watch_events`` against a real ``authsvc serve``: killed and
restarted mid-stream, the consumer resumes from its last cursor with no gap and no
duplicate."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator

import grpc
import pytest

from authsvc.storage import migrate
from authsvc.storage.engine import make_engine
from authsvc_client import AuthClient, AuthClientError
from authsvc_client.v1 import auth_service_pb2 as pb
from tests.conftest import create_pg_database, drop_pg_database
from tests.helpers import wait_until
from tests.serve_process import ServeProcess

GIVE_UP_SECONDS = 120.0  # a hang guard, not a timing
FAST = {"AUTHSVC_EVENT_HEARTBEAT_INTERVAL": "500ms"}


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request, tmp_path) -> Iterator[str]:
    url = (
        f"sqlite:///{tmp_path / 'events.db'}"
        if request.param == "sqlite"
        else create_pg_database("authsvc_client_events")
    )
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    yield url
    if request.param == "postgresql":
        drop_pg_database(url)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sign_up(client: AuthClient, count: int) -> list[str]:
    return [
        client.create_user(f"{uuid.uuid4().hex[:12]}@example.com", "correct horse 1", "A", "B").id
        for _ in range(count)
    ]


class Consumer(threading.Thread):
    """Collects the user ids of ``user.created`` events from ``watch_events``."""

    def __init__(self, address: str) -> None:
        super().__init__(daemon=True)
        self.client = AuthClient(address, timeout=10)
        self.stream = self.client.watch_events(types=["user.created"], idle_timeout=5)
        self.received: list[pb.Event] = []
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            for event in self.stream:
                self.received.append(event)
        except Exception as exc:  # reported by the test
            self.error = exc

    def wait_for(self, count: int) -> None:
        def received_them() -> bool:
            assert self.error is None, self.error
            return len(self.received) >= count

        wait_until(
            received_them,
            GIVE_UP_SECONDS,
            what=lambda: f"{count} events ({len(self.received)} so far)",
        )

    def stop(self) -> None:
        self.stream.close()
        self.join(timeout=30)
        self.client.close()


def test_watch_events_resumes_across_a_kill_and_restart(fresh_url, tmp_path):
    address = f"127.0.0.1:{free_port()}"
    env = {**FAST, "AUTHSVC_ADDRESS": address}
    server = ServeProcess(fresh_url, tmp_path / "serve-1.log", **env)
    with AuthClient(address, timeout=10) as writer:
        before = sign_up(writer, 5)
        consumer = Consumer(address)
        consumer.start()
        try:
            consumer.wait_for(5)
            during = sign_up(writer, 5)
            consumer.wait_for(10)
            server.kill()  # mid-stream
            server = ServeProcess(fresh_url, tmp_path / "serve-2.log", **env)
            # A channel of its own: the shared subchannel is still backing off.
            fresh = (("grpc.use_local_subchannel_pool", 1),)
            with AuthClient(address, timeout=10, options=fresh) as again:
                after = sign_up(again, 5)
            consumer.wait_for(15)
        finally:
            consumer.stop()
            server.kill()
    assert consumer.error is None
    assert [e.user_id for e in consumer.received] == before + during + after
    assert consumer.stream.resumes >= 1
    cursors = [e.cursor for e in consumer.received]
    assert cursors == sorted(set(cursors))


def test_list_events_and_watch_from_now(server_address):
    with AuthClient(server_address, timeout=10) as client:
        first = sign_up(client, 2)
        page = client.list_events(page_size=1)
        assert [e.user_id for e in page.events] == first[:1]
        rest = client.list_events(page.next_cursor, types=["user.created"])
        assert [e.user_id for e in rest.events] == first[1:]
        stream = client.watch_events("now", heartbeats=True)
        try:
            assert next(stream).type == "heartbeat"
            later = sign_up(client, 1)
            event = next(e for e in stream if e.type != "heartbeat")
            assert event.user_id == later[0]
            assert stream.cursor == event.cursor
        finally:
            stream.close()


def test_an_expired_or_malformed_cursor_is_raised(server_address):
    with AuthClient(server_address, timeout=10) as client:
        with pytest.raises(AuthClientError) as bad:
            next(client.watch_events("not-a-cursor"))
        assert bad.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert [v.field for v in bad.value.violations] == ["after_cursor"]
