"""The outbox's guarantee under concurrency: no gap, no duplicate, commit order.

Many writers on two replicas (two servers on one database) sign users up while each
transaction sleeps a random while: before it appends its events (the classic trap: a
position taken early, committed late) and after (with the append lock held). A consumer
streams from one replica meanwhile, disconnects midway and resumes from its last cursor.
Its events must be exactly the acknowledged sign-ups, each once, in position order.
"""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import grpc
import pytest

from authsvc.flows.changes import Change
from authsvc_client.v1 import auth_service_pb2 as pb
from tests.helpers import wait_until

WRITERS = 8
SIGN_UPS_EACH = 12
GIVE_UP_SECONDS = 120.0  # a hang guard, not a timing
_HEARTBEAT = timedelta(milliseconds=500)


@pytest.fixture
def slow_appends(monkeypatch):
    """Every change sleeps 0-15 ms before appending its events, and 0-5 ms after."""
    append = Change.append_events

    def slowly(self: Change) -> None:
        time.sleep(random.uniform(0, 0.015))
        append(self)
        if self._event_rows:
            time.sleep(random.uniform(0, 0.005))

    monkeypatch.setattr(Change, "append_events", slowly)


def sign_ups(stubs, n):
    """Signs users up on alternating replicas; returns the acknowledged ids."""
    done = []
    for i in range(SIGN_UPS_EACH):
        stub = stubs[(n + i) % len(stubs)]
        reply = stub.CreateUser(
            pb.CreateUserRequest(
                email=f"w{n}-{i}@example.com",
                password="correct horse 1",
                first_name="W",
                last_name="R",
            ),
            timeout=60,
        )
        done.append(reply.user.id)
    return done


class Consumer(threading.Thread):
    """Streams user.created from ``stub``; drops the stream after ``drop_after`` events
    and resumes from its last cursor, until told to stop."""

    def __init__(self, stub, drop_after: int) -> None:
        super().__init__(daemon=True)
        self.stub = stub
        self.drop_after = drop_after
        self.events: list[pb.Event] = []
        self.cursor = "now"
        self.resumes = 0
        self.stop = threading.Event()
        self.started_streaming = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            stream = self.stub.WatchEvents(
                pb.WatchEventsRequest(after_cursor=self.cursor, types=["user.created"]),
                timeout=GIVE_UP_SECONDS,
            )
            try:
                self._consume(stream)
            finally:
                stream.cancel()

    def _consume(self, stream) -> None:
        received = 0
        for event in stream:
            self.started_streaming.set()
            self.cursor = event.cursor
            if event.type != "heartbeat":
                self.events.append(event)
                received += 1
            if self.stop.is_set():
                return
            if self.resumes == 0 and received == self.drop_after:
                self.resumes += 1
                return  # a disconnect mid-stream: resume from the last cursor


def test_concurrent_writers_on_two_replicas_reach_a_consumer_exactly_once_in_order(
    start_server, slow_appends
):
    servers = [start_server(event_heartbeat_interval=_HEARTBEAT) for _ in range(2)]
    stubs = [stub for _, stub in servers]
    consumer = Consumer(stubs[0], drop_after=WRITERS * SIGN_UPS_EACH // 3)
    consumer.start()
    assert consumer.started_streaming.wait(30), "the stream never started"
    with ThreadPoolExecutor(WRITERS) as pool:
        acked = {i for ids in pool.map(lambda n: sign_ups(stubs, n), range(WRITERS)) for i in ids}
    assert len(acked) == WRITERS * SIGN_UPS_EACH
    try:
        wait_until(
            lambda: len(consumer.events) >= len(acked),
            GIVE_UP_SECONDS,
            interval=0.01,
            what="the consumer to receive every acknowledged sign-up",
        )
    finally:
        consumer.stop.set()
        consumer.join(timeout=30)
    received = consumer.events
    assert consumer.resumes == 1
    assert [e.user_id for e in received if e.user_id in acked] == [e.user_id for e in received]
    assert sorted(e.user_id for e in received) == sorted(acked)  # no gap, no duplicate
    assert len({e.id for e in received}) == len(received)
    cursors = [e.cursor for e in received]
    assert cursors == sorted(cursors) and len(set(cursors)) == len(cursors)  # commit order
    # And a late reader of the table sees the very same sequence.
    late = stubs[1].ListEvents(pb.ListEventsRequest(types=["user.created"], page_size=1000))
    assert [e.id for e in late.events] == [e.id for e in received]


def test_a_stream_survives_its_consumer_going_away(start_server):
    _, stub = start_server(event_heartbeat_interval=_HEARTBEAT)
    for _ in range(3):
        stream = stub.WatchEvents(pb.WatchEventsRequest(), timeout=10)
        assert next(stream).type == "heartbeat"
        stream.cancel()
        with pytest.raises(grpc.RpcError):
            next(stream)
