"""``python -m bench.events``: how soon a streaming consumer gets account events, and
how many events per second one consumer drains.

Delivery: one authsvc server (in this process) on a fresh database, one consumer
streaming WatchEvents from "now", and ``--writers`` threads signing users up
(CreateUser, a cheap hash) for ``--seconds``. For each sign-up it records when the call
began, when it was acknowledged and when the consumer received its ``user.created``.
The commit happens between the call's start and its acknowledgement, so "call began →
delivered" bounds commit → delivery from above (it includes the call's own work), and
"acknowledged → delivered" (0 when the event came first) bounds it from below.
Target: p99 of commit → delivery ≤ 1 s, judged on the upper bound.

Drain: ``--backlog`` events are written straight into the table, then one consumer
streams them from the oldest: events per second, as the consumer receives them.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
from sqlalchemy import insert

from authsvc.runtime.assembly import create_server
from authsvc.runtime.settings import Settings, normalize_database_url
from authsvc.storage import migrate
from authsvc.storage.engine import Database, make_engine
from authsvc.storage.models import EventRow
from authsvc_client.v1 import auth_service_pb2 as pb
from authsvc_client.v1 import auth_service_pb2_grpc as pb_grpc
from bench import population
from bench.cli import DEFAULT_DSN

TARGET_SECONDS = 1.0
_GIVE_UP = 30.0  # seconds: an event this late counts as lost


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.events", description=__doc__)
    p.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    p.add_argument("--dsn", default=DEFAULT_DSN, help="maintenance database of PostgreSQL")
    p.add_argument("--writers", type=int, default=4, help="concurrent sign-up threads")
    p.add_argument("--seconds", type=float, default=20.0, help="length of the write load")
    p.add_argument("--backlog", type=int, default=50_000, help="events drained by one consumer")
    return p


@contextmanager
def _database(kind: str, dsn: str) -> Iterator[str]:
    if kind == "postgresql":
        with population.fresh_database(dsn) as db:
            yield normalize_database_url(db.url)
        return
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'events.db'}"
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        yield url


@contextmanager
def _server(url: str) -> Iterator[pb_grpc.AuthServiceStub]:
    settings = Settings(
        address="127.0.0.1:0",
        database_url=url,
        workers=1,
        password_hash="pbkdf2:sha256:1000",
        # A quiet stream's first heartbeat comes soon: it tells the consumer opened.
        event_heartbeat_interval=timedelta(milliseconds=200),
    )
    server, port = create_server(settings)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield pb_grpc.AuthServiceStub(channel)
    finally:
        server.stop(0)


@dataclass
class Delivery:
    """Per sign-up: when its call began and was acknowledged, when its event arrived."""

    began: dict[str, float] = field(default_factory=dict)
    acked: dict[str, float] = field(default_factory=dict)
    delivered: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: Set by the consumer's first message: its stream resolved "now" and follows.
    opened: threading.Event = field(default_factory=threading.Event)


def _consume(stub: pb_grpc.AuthServiceStub, seen: Delivery, stop: threading.Event) -> None:
    stream = stub.WatchEvents(pb.WatchEventsRequest(after_cursor="now", types=["user.created"]))
    stop_watch = threading.Thread(target=lambda: (stop.wait(), stream.cancel()), daemon=True)
    stop_watch.start()
    try:
        for event in stream:
            seen.opened.set()
            if event.type == "user.created":
                with seen.lock:
                    seen.delivered[str(event.data["email"])] = time.perf_counter()
    except grpc.RpcError:
        if not stop.is_set():
            raise


def _write(stub: pb_grpc.AuthServiceStub, seen: Delivery, until: float) -> None:
    while time.perf_counter() < until:
        email = f"{uuid.uuid4().hex[:16]}@example.com"
        with seen.lock:
            seen.began[email] = time.perf_counter()
        request = pb.CreateUserRequest(
            email=email, password="correct horse 1", first_name="B", last_name="E"
        )
        stub.CreateUser(request, timeout=10)
        with seen.lock:
            seen.acked[email] = time.perf_counter()


def measure_delivery(stub: pb_grpc.AuthServiceStub, writers: int, seconds: float) -> Delivery:
    """Runs the write load with one streaming consumer attached."""
    seen, stop = Delivery(), threading.Event()
    consumer = threading.Thread(target=_consume, args=(stub, seen, stop), daemon=True)
    consumer.start()
    if not seen.opened.wait(_GIVE_UP):  # "now" is resolved when the stream opens
        raise RuntimeError("the event stream never opened")
    until = time.perf_counter() + seconds
    with ThreadPoolExecutor(writers) as pool:
        list(pool.map(lambda _: _write(stub, seen, until), range(writers)))
    give_up = time.perf_counter() + _GIVE_UP
    while len(seen.delivered) < len(seen.acked) and time.perf_counter() < give_up:
        time.sleep(0.01)
    stop.set()
    consumer.join(timeout=10)
    return seen


def measure_drain(
    stub: pb_grpc.AuthServiceStub, url: str, backlog: int, before: int
) -> tuple[int, float]:
    """Writes ``backlog`` events into the table (which holds ``before`` already), then
    times one consumer streaming all of them from the oldest."""
    database = Database(make_engine(url))
    now = datetime.now(UTC)
    data = json.dumps({"email": "x@example.com", "first_name": "B", "last_name": "E"})
    for start in range(0, backlog, 5000):
        rows = [
            {
                "id": uuid.uuid4(),
                "type": "user.created",
                "time": now,
                "user_id": uuid.uuid4(),
                "actor_kind": "SYSTEM",
                "actor_name": "",
                "data": data,
                "created_at": now,
                "updated_at": now,
            }
            for _ in range(min(5000, backlog - start))
        ]
        with database.transaction() as db:
            db.execute(insert(EventRow), rows)
    database.dispose()
    received = 0
    stream = stub.WatchEvents(pb.WatchEventsRequest())
    began = time.perf_counter()
    for event in stream:
        received += event.type != "heartbeat"
        if received == before + backlog:
            break
    elapsed = time.perf_counter() - began
    stream.cancel()
    return received, elapsed


def _stats(ordered: list[float]) -> str:
    def ms(q: float) -> str:
        value = ordered[min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1)]
        return "lost" if math.isinf(value) else f"{value * 1000:.1f}"

    return f"{ms(50)} | {ms(99)} | {ms(100)}"


def report(seen: Delivery, drained: tuple[int, float], database: str, command: str) -> str:
    """The result as markdown."""
    emails = sorted(seen.acked)
    lost = sum(1 for e in emails if e not in seen.delivered)
    upper = sorted(seen.delivered.get(e, math.inf) - seen.began[e] for e in emails)
    lower = sorted(max(seen.delivered.get(e, math.inf) - seen.acked[e], 0.0) for e in emails)
    calls = sorted(seen.acked[e] - seen.began[e] for e in emails)
    p99 = upper[min(len(upper) - 1, math.ceil(0.99 * len(upper)) - 1)]
    verdict = "PASS" if lost == 0 and p99 <= TARGET_SECONDS else "FAIL"
    count, elapsed = drained
    return "\n".join(
        [
            f"Command: `{command}` ({database}; {len(emails)} sign-ups, {lost} events lost)",
            "",
            "| Measure | p50 ms | p99 ms | max ms |",
            "|---|--:|--:|--:|",
            f"| CreateUser called → event delivered (commit → delivery, upper bound) "
            f"| {_stats(upper)} |",
            f"| CreateUser acknowledged → event delivered (lower bound; 0: event first) "
            f"| {_stats(lower)} |",
            f"| CreateUser called → acknowledged | {_stats(calls)} |",
            "",
            f"Drain: one consumer received {count} events in {elapsed:.2f} s: "
            f"{count / elapsed:.0f} events/s.",
            "",
            f"Target: commit → delivery ≤ 1 s at p99: {p99 * 1000:.1f} ms (upper bound), "
            f"{verdict}.",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Runs both measures and prints the markdown."""
    args = _parser().parse_args(argv)
    with _database(args.database, args.dsn) as url, _server(url) as stub:
        seen = measure_delivery(stub, args.writers, args.seconds)
        drained = measure_drain(stub, url, args.backlog, before=len(seen.acked))
    words = sys.argv[1:] if argv is None else list(argv)
    print(
        report(seen, drained, args.database, shlex.join(["python", "-m", "bench.events", *words]))
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
