"""StartPasswordReset in ``smtp`` mail mode costs the RPC no more than in ``caller`` mode.

    python -m bench.mail_reset [--users 200] [--threads 4] [--duration 10] [--rate 10]
                               [--rounds 3] [--write]

Three ``authsvc serve`` subprocesses, each on a fresh PostgreSQL database, one after
the other: ``caller`` mode (the token comes back), ``smtp`` mode with a local SMTP server
(aiosmtpd, plain on loopback) receiving every mail, and ``smtp`` mode with the SMTP
server down (every send fails and is retried). Each run signs up ``--users`` users,
then calls StartPasswordReset for them round-robin: first paced at ``--rate`` calls/s
(the latency of one call on a server with room to spare: the RPC's own cost), then with
``--threads`` closed-loop clients (capacity: there the background sender's work shares
the CPU with the calls), ``--duration`` seconds each after 2 s of warm-up. The
per-email start throttle and the per-recipient mail limit are raised so that every call
does its full work: in ``smtp`` mode each one queues a mail. The three runs are repeated
``--rounds`` times, interleaved, so that a neighbour's load on a shared machine does not
land on one mode only.

Wall-clock figures on a shared machine are noisy, so a second table measures what does
not depend on the neighbours: the flow behind the RPC (``PasswordReset.start``) called
directly in a server built in this process (its sender thread running, a local SMTP
server receiving), with the CPU time of the calling thread alone (``time.thread_time``:
the sender's work is on another thread) and the SQL statements that thread executes,
per call. ``--write`` puts both tables in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import multiprocessing
import re
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any

import grpc
from aiosmtpd.controller import Controller
from cryptography.fernet import Fernet
from sqlalchemy import event

from authsvc.flows.accounts import NewUser
from authsvc.flows.changes import Origin
from authsvc.flows.password_reset import ResetRequest
from authsvc.rules.profile import Profile
from authsvc.rules.secrets_at_rest import SecretKeys
from authsvc.rules.values import Email
from authsvc.runtime.assembly import AuthServer, create_server
from authsvc.runtime.settings import Settings
from authsvc.runtime.smtp import SmtpUrl
from authsvc_client.v1 import auth_service_pb2 as pb
from authsvc_client.v1 import auth_service_pb2_grpc as pb_grpc
from bench.cli import DEFAULT_DSN
from bench.population import fresh_database
from bench.servers import authsvc_server, free_port

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
SECTION = "## StartPasswordReset: caller and smtp mail delivery"
PASSWORD = "bench-password-8c1f-long"
COMMON = {
    "AUTHSVC_WORKERS": "1",
    "AUTHSVC_PASSWORD_HASH": "pbkdf2:sha256:1000",
    "AUTHSVC_RESET_START_LIMIT": "1000000",
    "AUTHSVC_PURGE_INTERVAL": "0",
}


class _Counter:
    """Counts the mails received, in a counter the bench process reads."""

    def __init__(self, count: Synchronized[int]) -> None:
        self._count = count

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        with self._count.get_lock():
            self._count.value += 1
        return "250 OK"


def _serve_smtp(port: int, count: Synchronized[int], ready: EventType, stop: EventType) -> None:
    controller = Controller(_Counter(count), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    stop.wait()
    controller.stop()


@dataclass(frozen=True)
class Received:
    """The mails the SMTP server received so far."""

    _count: Synchronized[int]

    @property
    def count(self) -> int:
        return int(self._count.value)


@dataclass(frozen=True)
class Result:
    mode: str
    calls: int
    seconds: float
    p50_ms: float
    p99_ms: float
    mails: int
    paced_p50_ms: float = 0.0
    paced_p99_ms: float = 0.0

    def row(self) -> str:
        rate = self.calls / self.seconds
        return (
            f"| {self.mode} | {self.paced_p50_ms:.1f} | {self.paced_p99_ms:.1f} "
            f"| {rate:.0f} | {self.p50_ms:.1f} | {self.p99_ms:.1f} | {self.mails} |"
        )


@contextmanager
def smtp_server(port: int) -> Iterator[Received]:
    """A local SMTP server in a process of its own: receiving mail, as a real server
    elsewhere would, takes no CPU from the bench's clients (the GIL of this process)."""
    spawn = multiprocessing.get_context("spawn")
    count = spawn.Value("q", 0)
    ready, stop = spawn.Event(), spawn.Event()
    process = spawn.Process(target=_serve_smtp, args=(port, count, ready, stop), daemon=True)
    process.start()
    try:
        if not ready.wait(30):
            raise RuntimeError("the SMTP server did not start")
        yield Received(count)
    finally:
        stop.set()
        process.join(10)


def mail_settings(port: int) -> dict[str, str]:
    return {
        "AUTHSVC_MAIL_DELIVERY": "smtp",
        "AUTHSVC_SMTP_URL": f"smtp://127.0.0.1:{port}?starttls=false",
        "AUTHSVC_SMTP_TIMEOUT": "2s",
        "AUTHSVC_MAIL_FROM": "Bench <no-reply@example.com>",
        "AUTHSVC_RESET_URL": "https://app.example.com/reset?token={token}",
        "AUTHSVC_VERIFY_URL": "https://app.example.com/verify?token={token}",
        "AUTHSVC_SECRET_KEY": Fernet.generate_key().decode(),
        "AUTHSVC_MAIL_RECIPIENT_LIMIT": "1000000",
        "AUTHSVC_MAIL_NOTICES": "none",
    }


def measure(
    address: str, emails: list[str], threads: int, duration: float, rate: float = 0.0
) -> list[float]:
    """Latencies (s) of the calls completed in the measured window: closed loop, or
    paced at ``rate`` calls/s in all (each thread keeps its own schedule)."""
    latencies: list[float] = []
    lock = threading.Lock()
    start = time.monotonic() + 2.0
    end = start + duration
    cycle = itertools.cycle(emails)

    def client(n: int) -> None:
        interval = threads / rate if rate else 0.0
        due = time.monotonic() + n * interval / threads
        with grpc.insecure_channel(address) as channel:
            stub = pb_grpc.AuthServiceStub(channel)
            while (now := time.monotonic()) < end:
                if rate:
                    time.sleep(max(0.0, due - now))
                    due += interval
                    now = time.monotonic()
                with lock:
                    email = next(cycle)
                stub.StartPasswordReset(pb.StartPasswordResetRequest(email=email), timeout=30)
                if now >= start:
                    with lock:
                        latencies.append(time.monotonic() - now)

    workers = [threading.Thread(target=client, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return latencies


def run(mode: str, settings: dict[str, str], args: argparse.Namespace) -> Result:
    # A database of its own: mail another run left queued is no work of this one.
    with fresh_database(args.dsn) as db, authsvc_server(db.url, {**COMMON, **settings}) as server:
        slug = re.sub(r"[^a-z0-9]+", "-", mode).strip("-")
        emails = [f"{slug}-{i}@example.com" for i in range(args.users)]
        with grpc.insecure_channel(server.address) as channel:
            stub = pb_grpc.AuthServiceStub(channel)
            for email in emails:
                stub.CreateUser(
                    pb.CreateUserRequest(
                        email=email, password=PASSWORD, first_name="B", last_name="M"
                    )
                )
        # Paced first: in smtp mode the closed loop leaves hundreds of mails queued, and
        # the paced window would then measure the RPC beside the sender's backlog.
        paced = measure(server.address, emails, args.threads, args.duration, args.rate)
        closed = measure(server.address, emails, args.threads, args.duration)
    cuts, paced_cuts = statistics.quantiles(closed, n=100), statistics.quantiles(paced, n=100)
    return Result(
        mode,
        len(closed),
        args.duration,
        cuts[49] * 1000,
        cuts[98] * 1000,
        0,
        paced_cuts[49] * 1000,
        paced_cuts[98] * 1000,
    )


@dataclass(frozen=True)
class PathCost:
    mode: str
    cpu_us: float
    statements: float
    wall_ms: float

    def row(self) -> str:
        return f"| {self.mode} | {self.cpu_us:.0f} | {self.statements:.1f} | {self.wall_ms:.2f} |"


def path_cost(mode: str, mail: dict[str, Any], args: argparse.Namespace) -> PathCost:
    """The reset flow's cost on the calling thread, in a server built in this process."""
    with fresh_database(args.dsn) as db:
        settings = Settings(
            address="127.0.0.1:0",
            database_url=db.url,
            password_hash="pbkdf2:sha256:1000",
            reset_start_limit=10**6,
            purge_interval=timedelta(0),
            **mail,
        )
        server, _ = create_server(settings)
        try:
            return _path_cost(mode, server, args.users)
        finally:
            server.stop(0)


def _path_cost(mode: str, server: AuthServer, calls: int) -> PathCost:
    flows = server.flows
    emails = [Email(f"path-{i}@example.com") for i in range(calls)]
    for email in emails:
        profile = Profile({"email": email, "first_name": "B", "last_name": "M", "locale": ""})
        flows.accounts.create_user(NewUser(profile, PASSWORD, Origin()))
    mine = threading.get_ident()
    counted = [0]

    def count(*_: Any) -> None:
        if threading.get_ident() == mine:
            counted[0] += 1

    engine = server.infra.database.engine
    event.listen(engine, "before_cursor_execute", count)
    cpu, wall = [], []
    for email in emails:
        started_cpu, started = time.thread_time(), time.perf_counter()
        flows.password_reset.start(ResetRequest(email, Origin()))
        cpu.append(time.thread_time() - started_cpu)
        wall.append(time.perf_counter() - started)
    event.remove(engine, "before_cursor_execute", count)
    return PathCost(
        mode,
        statistics.median(cpu) * 1e6,
        counted[0] / calls,
        statistics.median(wall) * 1000,
    )


def mail_overrides(port: int) -> dict[str, Any]:
    return {
        "mail_delivery": "smtp",
        "smtp_url": SmtpUrl.parse(f"smtp://127.0.0.1:{port}?starttls=false"),
        "mail_from": "Bench <no-reply@example.com>",
        "reset_url": "https://app.example.com/reset?token={token}",
        "verify_url": "https://app.example.com/verify?token={token}",
        "secret_key": SecretKeys.parse(Fernet.generate_key().decode()),
        "mail_recipient_limit": 10**6,
        "mail_notices": (),
    }


def path_costs(args: argparse.Namespace) -> list[PathCost]:
    costs = []
    for n in range(1, args.rounds + 1):
        costs.append(path_cost(f"caller ({n})", {}, args))
        port = free_port()
        with smtp_server(port):
            costs.append(path_cost(f"smtp ({n})", mail_overrides(port), args))
        costs.append(path_cost(f"smtp, server down ({n})", mail_overrides(free_port()), args))
    return costs


def render_costs(costs: list[PathCost], args: argparse.Namespace) -> str:
    lines = [
        f"The flow alone, {args.users} calls per run, medians per call, on the calling thread:",
        "",
        "| mode (round) | CPU µs | SQL statements | wall ms |",
        "|---|---|---|---|",
        *(c.row() for c in costs),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.mail_reset")
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=10.0, help="paced calls/s in all")
    parser.add_argument("--dsn", default=DEFAULT_DSN)
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    parser.add_argument(
        "--path-only", action="store_true", help="only the flow's cost on the calling thread"
    )
    args = parser.parse_args()
    results: list[Result] = []
    for n in range(1, 0 if args.path_only else args.rounds + 1):
        results.append(run(f"caller ({n})", {}, args))
        port = free_port()
        with smtp_server(port) as received:
            up = run(f"smtp ({n})", mail_settings(port), args)
            results.append(dataclasses.replace(up, mails=received.count))
        down = free_port()  # nothing listens there: every send fails and is retried
        results.append(run(f"smtp, server down ({n})", mail_settings(down), args))
    table = render_costs(path_costs(args), args)
    if results:
        table = render(results, args) + "\n" + table
    print(table)
    if args.write:
        write(table)


def render(results: list[Result], args: argparse.Namespace) -> str:
    lines = [
        f"{args.users} users, one `authsvc serve` process on PostgreSQL; each run measures "
        f"{args.duration:.0f} s paced at {args.rate:.0f} calls/s (the RPC's own cost), then "
        f"{args.duration:.0f} s of {args.threads} closed-loop clients (capacity), each after "
        "2 s of warm-up:",
        "",
        "| mode (round) | paced p50 ms | paced p99 ms | closed-loop calls/s | closed-loop "
        "p50 ms | closed-loop p99 ms | mails received |",
        "|---|---|---|---|---|---|---|",
        *(r.row() for r in results),
    ]
    return "\n".join(lines) + "\n"


def write(table: str) -> None:
    text = DOCS.read_text()
    command = " ".join(["python -m bench.mail_reset", *sys.argv[1:]])
    block = f"{SECTION}\n\n```sh\n{command}\n```\n\n{table}"
    pattern = re.compile(rf"{re.escape(SECTION)}\n.*?(?=\n## |\Z)", re.S)
    text = pattern.sub(block.rstrip("\n"), text) if SECTION in text else text + "\n" + block
    DOCS.write_text(text)


if __name__ == "__main__":
    main()
