"""Soak: mixed load on an ``authsvc serve`` subprocess on PostgreSQL for N minutes.

Passes when no call fails unexpectedly and the server's resident memory (VmRSS) at
the end is less than 10% above what it was after the warm-up. Not part of CI:
``make soak`` (``SOAK_ARGS="--minutes 2"`` for a short run).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from authsvc_client.v1 import auth_service_pb2 as pb
from authsvc_client.v1 import auth_service_pb2_grpc as pb_grpc

ADMIN_URL = os.environ.get(
    "AUTHSVC_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)
# Failures the scenario provokes on purpose, by RPC: anything else is unexpected.
EXPECTED = {
    ("CreateSession", "INVALID_CREDENTIALS"),
    ("ValidateToken", "TOKEN_INVALID"),
    ("RefreshSession", "REFRESH_TOKEN_REUSED"),
    ("GetUser", "USER_NOT_FOUND"),
    ("CreateUser", "INVALID_ARGUMENT"),
}


@dataclass
class Tally:
    """Counts of every call, shared by the client threads."""

    calls: Counter[str] = field(default_factory=Counter)
    expected: Counter[tuple[str, str]] = field(default_factory=Counter)
    unexpected: Counter[tuple[str, str]] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Client:
    """One simulated front end running the scenario in a loop."""

    def __init__(self, stub: pb_grpc.AuthServiceStub, tally: Tally, seed: int) -> None:
        self.stub, self.tally, self.random = stub, tally, random.Random(seed)

    def call(self, rpc: str, request: object, expect: str = "") -> object | None:
        """Calls ``rpc``; an error is tallied as expected only when its reason is ``expect``."""
        start = time.perf_counter()
        try:
            reply: object = getattr(self.stub, rpc)(request, timeout=30)
        except grpc.RpcError as error:
            reason = _reason(error)
            ok = reason == expect and (rpc, reason) in EXPECTED
            with self.tally.lock:
                self.tally.calls[rpc] += 1
                (self.tally.expected if ok else self.tally.unexpected)[(rpc, reason)] += 1
            if not ok:
                print(f"unexpected: {rpc} {error.code().name} {reason}", file=sys.stderr)
            return None
        with self.tally.lock:
            self.tally.calls[rpc] += 1
            self.tally.latencies.append(time.perf_counter() - start)
        if expect:
            with self.tally.lock:
                self.tally.unexpected[(rpc, "OK")] += 1
        return reply

    def scenario(self) -> None:
        """Sign up, sign in, use, rotate, misuse, change password, sign out, delete."""
        email, password = f"soak-{uuid.uuid4().hex}@example.com", f"pw-{uuid.uuid4()}"
        new = pb.CreateUserRequest(email=email, password=password, first_name="S", last_name="K")
        user = self.call("CreateUser", new)
        self.call("CreateUser", pb.CreateUserRequest(email="bad"), expect="INVALID_ARGUMENT")
        if user is None:
            return
        uid = user.user.id  # type: ignore[attr-defined]
        wrong = pb.CreateSessionRequest(email=email, password="not-the-password")
        self.call("CreateSession", wrong, expect="INVALID_CREDENTIALS")
        signed = self.call("CreateSession", pb.CreateSessionRequest(email=email, password=password))
        if signed is None:
            return
        token, update = signed.session_token, signed.update_token  # type: ignore[attr-defined]
        for _ in range(self.random.randint(3, 8)):
            self.call("ValidateToken", pb.ValidateTokenRequest(session_token=token))
        bogus = "asv_st_" + "A" * 43
        self.call("ValidateToken", pb.ValidateTokenRequest(session_token=bogus), "TOKEN_INVALID")
        self.call("GetUser", pb.GetUserRequest(id=uid))
        self.call("ListUsers", pb.ListUsersRequest(page_size=10))
        self.call("ListSessions", pb.ListSessionsRequest(user_id=uid))
        change = pb.UpdateUserRequest(user=pb.User(id=uid, first_name="Soaked"))
        self.call("UpdateUser", change)
        rotated = self.call("RefreshSession", pb.RefreshSessionRequest(update_token=update))
        if rotated is not None and self.random.random() < 0.2:  # a stolen token, replayed
            stale = pb.RefreshSessionRequest(update_token=update)
            self.call("RefreshSession", stale, expect="REFRESH_TOKEN_REUSED")
            return self._delete(uid)
        if rotated is not None:
            token = rotated.session_token  # type: ignore[attr-defined]
            new_password = f"pw-{uuid.uuid4()}"
            self.call(
                "ChangePassword",
                pb.ChangePasswordRequest(
                    session_token=token, current_password=password, new_password=new_password
                ),
            )
            self.call("DeleteSession", pb.DeleteSessionRequest(session_token=token))
        self._delete(uid)

    def _delete(self, uid: str) -> None:
        # Most users go away again, so the tables (and the server's caches) stay bounded.
        if self.random.random() < 0.9:
            self.call("DeleteUser", pb.DeleteUserRequest(id=uid))
            self.call("GetUser", pb.GetUserRequest(id=uid), expect="USER_NOT_FOUND")


def _reason(error: grpc.RpcError) -> str:
    status = rpc_status.from_call(error)
    for detail in status.details if status else ():
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return str(info.reason)
    return f"no ErrorInfo ({error.code().name})"


def rss_kib(pid: int) -> int:
    """The resident set size of ``pid`` in KiB (VmRSS of /proc/<pid>/status), 0 if gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return 0
    found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return int(found.group(1)) if found else 0


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (``serve`` pre-forks workers on PostgreSQL)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, IndexError, ProcessLookupError):
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(parents.get(current, []))
    return tree


def tree_rss_kib(pid: int) -> int:
    """The resident memory of the whole server: ``pid`` and every descendant."""
    return sum(rss_kib(p) for p in process_tree(pid))


@contextmanager
def fresh_database() -> Iterator[str]:
    """A new PostgreSQL database on the local server, dropped afterwards."""
    name = f"authsvc_soak_{uuid.uuid4().hex[:8]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def serve(database_url: str, password_hash: str, log: Path) -> Iterator[tuple[int, int]]:
    """Runs ``authsvc serve`` (which migrates first); yields its pid and port."""
    env = {
        **os.environ,
        "AUTHSVC_ADDRESS": "127.0.0.1:0",
        "AUTHSVC_DATABASE_URL": database_url,
        "AUTHSVC_PASSWORD_HASH": password_hash,
        "AUTHSVC_LOG_LEVEL": "WARNING",  # one line per RPC would fill the disk, not test it
    }
    with log.open("wb") as out:
        cmd = [sys.executable, "-m", "authsvc", "serve"]
        process = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield process.pid, _port(process, log)
    finally:
        process.terminate()
        if process.wait(timeout=60) != 0:
            raise RuntimeError(f"authsvc serve exited with {process.returncode}")


def _port(process: subprocess.Popen[bytes], log: Path) -> int:
    # At WARNING the "listening" line is not logged: find the socket in /proc instead.
    end = time.monotonic() + 60
    while time.monotonic() < end:
        if process.poll() is not None:
            raise RuntimeError(f"authsvc serve exited: {log.read_text()[-2000:]}")
        for pid in process_tree(process.pid):
            port = _listening_port(pid)
            if port:
                return port
        time.sleep(0.1)
    raise RuntimeError("authsvc serve did not start listening")


def _listening_port(pid: int) -> int | None:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    # gRPC may listen on an IPv6 socket even for 127.0.0.1 (a v4-mapped address).
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            parts = line.split()
            if parts[3] == "0A" and parts[9] in inodes:  # 0A: LISTEN
                return int(parts[1].split(":")[1], 16)
    return None


def run(args: argparse.Namespace) -> int:
    """Runs the soak and prints a summary; returns the exit status."""
    duration, warmup = args.minutes * 60, args.minutes * 60 * args.warmup_fraction
    tally, stop = Tally(), threading.Event()
    with (
        tempfile.TemporaryDirectory() as tmp,
        fresh_database() as url,
        serve(url, args.password_hash, Path(tmp) / "serve.log") as (pid, port),
    ):
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        stub = pb_grpc.AuthServiceStub(channel)
        threads = [
            threading.Thread(target=_loop, args=(Client(stub, tally, n), stop), daemon=True)
            for n in range(args.clients)
        ]
        for t in threads:
            t.start()
        samples = _sample_rss(pid, duration, warmup)
        stop.set()
        for t in threads:
            t.join(timeout=60)
        health = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=10
        )
        channel.close()
    return _report(args, tally, samples, health.status == health_pb2.HealthCheckResponse.SERVING)


def _loop(client: Client, stop: threading.Event) -> None:
    while not stop.is_set():
        client.scenario()


def _sample_rss(pid: int, duration: float, warmup: float) -> dict[str, int]:
    start = time.monotonic()
    samples: list[tuple[float, int]] = []
    while (elapsed := time.monotonic() - start) < duration:
        samples.append((elapsed, tree_rss_kib(pid)))
        time.sleep(min(5.0, max(0.0, duration - elapsed)))
    samples.append((time.monotonic() - start, tree_rss_kib(pid)))
    after_warmup = [kib for t, kib in samples if t >= warmup]
    return {
        "start": samples[0][1],
        "warm": after_warmup[0],
        "end": samples[-1][1],
        "peak": max(kib for _, kib in samples),
        "processes": len(process_tree(pid)),
    }


def _report(args: argparse.Namespace, tally: Tally, rss: dict[str, int], serving: bool) -> int:
    total = sum(tally.calls.values())
    growth = (rss["end"] - rss["warm"]) / rss["warm"]
    lat = sorted(tally.latencies)
    print(f"soak: {args.minutes:g} min, {args.clients} clients, hash {args.password_hash}")
    print(f"calls: {total} ({total / (args.minutes * 60):.0f}/s)")
    for rpc, n in sorted(tally.calls.items()):
        print(f"  {rpc:15} {n}")
    if lat:
        p50, p99 = lat[len(lat) // 2], lat[int(len(lat) * 0.99)]
        print(
            f"latency of OK calls: p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
            f"mean {statistics.fmean(lat) * 1000:.1f} ms"
        )
    print(f"expected errors: {sum(tally.expected.values())} {dict(tally.expected)}")
    print(f"unexpected errors: {sum(tally.unexpected.values())} {dict(tally.unexpected)}")
    print(
        f"RSS KiB of {rss['processes']} server processes: start {rss['start']}, "
        f"after warm-up {rss['warm']}, end {rss['end']}, peak {rss['peak']}; "
        f"growth after warm-up {growth:+.1%} (limit {args.max_growth:.0%})"
    )
    print(f"health at the end: {'SERVING' if serving else 'NOT SERVING'}")
    passed = not tally.unexpected and growth < args.max_growth and serving and total > 0
    print("PASS" if passed else "FAIL")
    return 0 if passed else 1


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.soak [--minutes N] [--clients N] ...``"""
    parser = argparse.ArgumentParser(prog="bench.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0, help="duration (default 10)")
    parser.add_argument("--clients", type=int, default=4, help="client threads (default 4)")
    parser.add_argument(
        "--warmup-fraction", type=float, default=0.2, help="share of the run before RSS baseline"
    )
    parser.add_argument("--max-growth", type=float, default=0.10, help="RSS growth limit")
    parser.add_argument(
        "--password-hash",
        default="pbkdf2:sha256:1000",
        help="AUTHSVC_PASSWORD_HASH for the server (cheap by default: the soak looks for "
        "leaks in authsvc, not at the hash's cost)",
    )
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
