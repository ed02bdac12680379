"""The e2e check shared by the TypeScript, Go and Java event consumers: resume across a restart.

Each language ships a small program (its ``watch-events``) that runs its client's event
consumer against ``host:port`` and prints one JSON line per event it delivers
(``{"id", "type", "cursor"}``) and one per disconnect (``{"disconnect": ...}``), until its
standard input closes. :func:`check_consumer_survives_restart` starts that program against
a real authsvc, makes changes, restarts the server on the same port while the program
streams, makes more changes, and asserts the program printed every event exactly once,
in commit order (compared with what ListEvents returns).
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import uuid
from collections.abc import Callable
from typing import Any

import grpc

from authsvc.runtime.assembly import AuthServer, create_server
from authsvc.runtime.settings import Settings
from authsvc_client.v1 import auth_service_pb2 as pb
from authsvc_client.v1 import auth_service_pb2_grpc as pb_grpc
from tests.helpers import sign_up, wait_until

DEADLINE = 60.0


class RestartableServer:
    """An authsvc (real clock) on a fixed loopback port that a test can stop and start again."""

    def __init__(self, make_settings: Callable[..., Settings], **overrides: Any) -> None:
        self._make_settings = make_settings
        self._overrides = overrides
        self._server, self.port = self._start("127.0.0.1:0")
        self.address = f"127.0.0.1:{self.port}"

    def _start(self, address: str) -> tuple[AuthServer, int]:
        return create_server(self._make_settings(address=address, **self._overrides))

    def restart(self) -> None:
        """Stops the server (cancelling its streams) and starts it again on the same port."""
        self._server.stop(0)
        self._server.wait_for_termination(10)
        self._server, _ = wait_until(self._try_start, DEADLINE, what="the port to be free again")

    def _try_start(self) -> tuple[AuthServer, int] | None:
        try:
            return self._start(self.address)
        except RuntimeError:  # the port is not free again yet
            return None

    def stop(self) -> None:
        self._server.stop(0)


class Printed:
    """The JSON lines a consumer program prints, read on a thread as they come."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.events: list[dict[str, Any]] = []
        self.disconnects: list[Any] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def until(self, done: Callable[[], bool], what: str) -> None:
        """Reads lines until ``done()``; fails after the deadline or when the program exits."""

        def read_until_done() -> bool:
            if done():
                return True
            try:
                line = self._lines.get(timeout=0.5)  # waits for the next line itself
            except queue.Empty:
                return False
            assert line is not None, f"the consumer exited ({self.process.wait()}) before {what}"
            record = json.loads(line)
            if "disconnect" in record:
                self.disconnects.append(record["disconnect"])
            else:
                self.events.append(record)
            return done()

        wait_until(
            read_until_done, DEADLINE, interval=0, what=lambda: f"{what}; printed {self.events}"
        )

    def has_ids(self, ids: list[str]) -> Callable[[], bool]:
        return lambda: set(ids) <= {e["id"] for e in self.events}


def event_ids(address: str) -> list[str]:
    """The ids of every retained event, in commit order, paged with ListEvents."""
    ids: list[str] = []
    cursor = ""
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.AuthServiceStub(channel)
        while True:
            request = pb.ListEventsRequest(after_cursor=cursor, page_size=500)
            page = stub.ListEvents(request, timeout=10, wait_for_ready=True)
            ids.extend(event.id for event in page.events)
            if not page.events:
                return ids
            cursor = page.next_cursor


def make_changes(address: str, count: int) -> None:
    """Signs ``count`` users up and renames each: at least two events per user."""
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.AuthServiceStub(channel)
        for _ in range(count):
            user = sign_up(stub, f"consumer.{uuid.uuid4().hex}@example.com")
            stub.UpdateUser(
                pb.UpdateUserRequest(
                    user=pb.User(id=user.id, first_name="Grace"),
                    update_mask={"paths": ["first_name"]},
                ),
                timeout=10,
            )


def check_consumer_survives_restart(
    server: RestartableServer, command: list[str], cwd: Any = None
) -> None:
    """Runs ``command + [address]`` across a server restart; see the module docstring."""
    address = server.address
    make_changes(address, 2)
    process = subprocess.Popen(
        [*command, address], cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        printed = Printed(process)
        printed.until(printed.has_ids(event_ids(address)), "the first events")
        server.restart()
        printed.until(lambda: bool(printed.disconnects), "a disconnect")
        make_changes(address, 3)
        printed.until(printed.has_ids(event_ids(address)), "the events after the restart")
        # One more change: anything delivered twice would come before it.
        make_changes(address, 1)
        expected = event_ids(address)
        printed.until(printed.has_ids(expected), "the last event")
    finally:
        assert process.stdin is not None
        process.stdin.close()
        returncode = process.wait(timeout=DEADLINE)
    assert [e["id"] for e in printed.events] == expected, "a gap, a duplicate or a reordering"
    assert all(e["type"] != "heartbeat" for e in printed.events)
    assert returncode == 0
