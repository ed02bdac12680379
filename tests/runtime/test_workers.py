"""``authsvc serve --workers N``: pre-forked processes on one port, restarted when they die."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import grpc
import pytest

from authsvc.edge.worker_tag import WORKER_METADATA
from authsvc_client.v1 import auth_service_pb2 as pb
from authsvc_client.v1 import auth_service_pb2_grpc as pb_grpc
from tests.conftest import CHEAP_HASH
from tests.helpers import wait_until

pytestmark = pytest.mark.parametrize("migrated_url", ["postgresql"], indirect=True)

LISTENING = re.compile(r"listening on \S+ \(port (\d+)\)")


class Serve:
    """A running ``authsvc serve`` subprocess and its log lines."""

    def __init__(self, db_url: str, *args: str, **settings: str) -> None:
        env = {
            **os.environ,
            "AUTHSVC_DATABASE_URL": db_url,
            "AUTHSVC_PASSWORD_HASH": CHEAP_HASH,
            "AUTHSVC_GRACE_PERIOD": "2s",
            "AUTHSVC_LOG_LEVEL": "INFO",
            **settings,
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "authsvc", "serve", *args],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.put(line)

    def port(self, timeout: float = 30) -> int:
        def listening_port() -> int | None:
            try:
                line = self.lines.get(timeout=0.5)  # waits for the next line itself
            except queue.Empty:
                assert self.proc.poll() is None, "authsvc serve exited"
                return None
            match = LISTENING.search(line)
            return int(match.group(1)) if match else None

        return wait_until(listening_port, timeout, interval=0, what="authsvc serve to listen")


@contextmanager
def serving(db_url: str, *args: str, **settings: str) -> Iterator[Serve]:
    serve = Serve(db_url, *args, **settings)
    try:
        yield serve
    finally:
        if serve.proc.poll() is None:
            serve.proc.kill()
            serve.proc.wait()


def worker_of_a_new_connection(port: int) -> int | None:
    """The pid of the worker that serves a call on a fresh TCP connection (None: none up)."""
    # A local subchannel pool: a new connection each time, as from another client.
    options = [("grpc.use_local_subchannel_pool", 1)]
    with grpc.insecure_channel(f"127.0.0.1:{port}", options=options) as channel:
        stub = pb_grpc.AuthServiceStub(channel)
        try:
            _, call = stub.ListUsers.with_call(pb.ListUsersRequest(page_size=1), timeout=5)
        except grpc.RpcError:
            return None
        return int(dict(call.trailing_metadata())[WORKER_METADATA])


def workers_seen(port: int, wanted: int, timeout: float = 30, exclude=()) -> set[int]:
    """Opens connections until ``wanted`` distinct workers (not in ``exclude``) answered."""
    seen: set[int] = set()

    def enough_seen() -> bool:
        if (pid := worker_of_a_new_connection(port)) is not None:
            seen.add(pid)
        return len(seen - set(exclude)) >= wanted

    wait_until(enough_seen, timeout, interval=0.1, what=lambda: f"workers (only saw {seen})")
    return seen - set(exclude)


def test_calls_land_on_several_workers_and_a_dead_worker_is_replaced(db_url):
    with serving(db_url, "--workers", "2", "--address", "127.0.0.1:0") as serve:
        port = serve.port()
        first = workers_seen(port, 2)
        assert serve.proc.pid not in first  # the parent serves nothing itself
        killed = first.pop()
        os.kill(killed, signal.SIGKILL)
        replacement = workers_seen(port, 1, exclude={killed, *first})
        assert replacement
        serve.proc.send_signal(signal.SIGTERM)
        assert serve.proc.wait(timeout=30) == 0
    for pid in first | replacement:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # drained and reaped with the parent


def test_a_taken_port_is_refused(db_url):
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with serving(db_url, "--workers", "2", "--address", f"127.0.0.1:{port}") as serve:
            assert serve.proc.wait(timeout=30) == 2


def all_gone(pids: set[int]) -> bool:
    """Whether none of ``pids`` is a live process any more."""
    for pid in pids:
        try:
            os.kill(pid, 0)
            return False
        except ProcessLookupError:
            pass
    return True


def test_workers_drain_when_their_supervisor_is_killed(db_url):
    with serving(db_url, "--workers", "2", "--address", "127.0.0.1:0") as serve:
        workers = workers_seen(serve.port(), 2)
        serve.proc.kill()  # SIGKILL: no chance to forward SIGTERM
        serve.proc.wait()
        wait_until(lambda: all_gone(workers), 20, interval=0.1, what="orphaned workers to go")


def test_one_channel_hashes_on_every_slot_of_the_replica(db_url):
    # Two slots for the replica, none to wait in: a worker holding only its "share"
    # (one slot) would refuse the second of two simultaneous sign-ups with OVERLOADED.
    settings = {
        "AUTHSVC_PASSWORD_HASH": "pbkdf2:sha256:600000",  # slow: the two hashes overlap
        "AUTHSVC_HASH_CONCURRENCY": "2",
        "AUTHSVC_HASH_QUEUE_LENGTH": "0",
    }
    with serving(db_url, "--workers", "2", "--address", "127.0.0.1:0", **settings) as serve:
        port = serve.port()
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.AuthServiceStub(channel)
            calls = [
                stub.CreateUser.future(
                    pb.CreateUserRequest(
                        email=f"u{i}@example.com",
                        password="correct horse",
                        first_name="U",
                        last_name="V",
                    ),
                    timeout=30,
                )
                for i in range(2)
            ]
            emails = sorted(c.result().user.email for c in calls)  # raises if one failed
            workers = {int(dict(c.trailing_metadata())[WORKER_METADATA]) for c in calls}
        assert emails == ["u0@example.com", "u1@example.com"]
        assert len(workers) == 1, "one channel, one worker: it held both slots"
