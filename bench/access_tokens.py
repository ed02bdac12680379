"""``python -m bench.access_tokens``: local verification of access tokens, measured.

Two ``authsvc serve`` replicas (A and B, subprocesses, one worker each) on one fresh
PostgreSQL database, a cheap password hash (sign-ins are not what is measured), and,
in this process, the calling service's side:

1. **verify vs ValidateToken** — CPU of ``Verifier.verify`` of a valid token (p50 of
   per-call thread CPU, cached after its first sight; the first sight too), beside the
   calling service's CPU for one ``ValidateToken`` round trip (same thread, same
   token) and what that call costs authsvc. Target: verify p50 ≤ 50 µs and ≥ 10x
   cheaper than the round trip.
2. **signing** — CPU the sign-in and refresh paths pay to sign (``AccessTokens.issue``
   with a loaded keyring: claims, JSON, Ed25519). Target ≤ 0.2 ms.
3. **revocation visibility** — 20 verifiers (10 on A, 10 on B); ``--revocations``
   times, ``RevokeSession`` or ``DisableUser`` (alternately) on A, then every verifier
   is polled until it refuses the token: the delay from A's acknowledgement to each
   verifier's refusal. Target p99 ≤ 1 s.
4. **rotation under load** — replicas with a short TTL (4 s) and JWKS refresh (2 s),
   verifiers refreshing as often; sign-ins and refreshes on A and B, every live token
   verified by the verifiers over and over, some sessions revoked, ``authsvc keys
   rotate`` twice. Counted: tokens wrongly refused (live, unrevoked, unexpired) and
   wrongly accepted (revoked over a second ago, or signed by an unknown key).

Prints markdown.
"""

from __future__ import annotations

import argparse
import os
import random
import shlex
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import grpc
import jwt
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from authsvc.flows.access_tokens import AccessTokens
from authsvc.flows.changes import Changes
from authsvc.rules.access_tokens import Subject
from authsvc.rules.authentication import AuthMethod, proven
from authsvc.rules.secrets_at_rest import SecretKeys
from authsvc.runtime.assembly import token_policy
from authsvc.runtime.settings import Settings, normalize_database_url
from authsvc.storage.engine import Database, make_engine
from authsvc.storage.validation_cache import ValidationCache
from authsvc_client import TokenRevoked, VerificationError, Verifier
from authsvc_client.v1 import auth_service_pb2 as pb
from authsvc_client.v1 import auth_service_pb2_grpc as pb_grpc
from bench import population
from bench.cli import DEFAULT_DSN
from bench.procstat import CpuMeter
from bench.servers import RunningServer, authsvc_server

CHEAP_HASH = "pbkdf2:sha256:1000"
VISIBILITY_TARGET = 1.0
VERIFY_TARGET_US = 50.0
SIGN_TARGET_US = 200.0
_GIVE_UP = 10.0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.access_tokens", description=__doc__)
    p.add_argument("--revocations", type=int, default=200, help="revocations on A (part 3)")
    p.add_argument("--verifiers", type=int, default=20, help="verifiers, half on A, half on B")
    p.add_argument("--calls", type=int, default=20_000, help="verify calls measured (part 1)")
    p.add_argument("--rotation-seconds", type=float, default=40.0, help="length of part 4")
    p.add_argument("--dsn", default=DEFAULT_DSN, help="maintenance database of PostgreSQL")
    p.add_argument("--output", help="also write the report (markdown) to this file")
    return p


def _settings(secret: str, **more: str) -> dict[str, str]:
    return {
        "AUTHSVC_SECRET_KEY": secret,
        "AUTHSVC_PASSWORD_HASH": CHEAP_HASH,
        "AUTHSVC_WORKERS": "1",
        "AUTHSVC_LOG_LEVEL": "warning",
        **more,
    }


@contextmanager
def _replicas(url: str, settings: dict[str, str]) -> Iterator[tuple[RunningServer, RunningServer]]:
    with authsvc_server(url, settings) as a, authsvc_server(url, settings) as b:
        yield a, b


@contextmanager
def _verifiers(addresses: Sequence[str], count: int, **options: float) -> Iterator[list[Verifier]]:
    with ExitStack() as stack:
        made = []
        for i in range(count):
            channel = stack.enter_context(grpc.insecure_channel(addresses[i % len(addresses)]))
            verifier = Verifier(channel, **options)  # type: ignore[arg-type]
            stack.callback(verifier.close)
            made.append(verifier)
        for verifier in made:
            if not verifier.wait_until_fresh(30):
                raise SystemExit("bench.access_tokens: a verifier never caught up with the feed")
        yield made


def _sign_up(stub: pb_grpc.AuthServiceStub, n: int) -> list[str]:
    ids = []
    for i in range(n):
        request = pb.CreateUserRequest(
            email=f"bench-{i}-{random.getrandbits(32)}@example.com",
            password=population.PASSWORD,
            first_name="Bench",
            last_name="User",
        )
        ids.append(stub.CreateUser(request, timeout=30).user.email)
    return ids


def _sign_in(stub: pb_grpc.AuthServiceStub, email: str) -> pb.CreateSessionResponse:
    request = pb.CreateSessionRequest(email=email, password=population.PASSWORD)
    reply: pb.CreateSessionResponse = stub.CreateSession(request, timeout=30)
    return reply


def _cpu_us(call: Callable[[], object], n: int) -> list[float]:
    times = []
    for _ in range(n):
        t0 = time.thread_time_ns()
        call()
        times.append((time.thread_time_ns() - t0) / 1000)
    return times


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# Part 1: verify beside ValidateToken


@dataclass
class Costs:
    verify_p50: float
    verify_p99: float
    first_sight_p50: float
    validate_client_p50: float
    validate_wall_p50: float
    validate_server_per_call: float

    @property
    def ratio(self) -> float:
        return self.validate_client_p50 / self.verify_p50


def measure_costs(a: RunningServer, dsn: str, database: str, calls: int) -> Costs:
    with grpc.insecure_channel(a.address) as channel, _verifiers([a.address], 1) as (verifier,):
        stub = pb_grpc.AuthServiceStub(channel)
        emails = _sign_up(stub, 20)
        signed = [_sign_in(stub, e) for e in emails for _ in range(10)]
        tokens = [s.access_token for s in signed]
        session_token = signed[1].session_token  # ValidateToken's usual (cached) path
        first = []
        for token in tokens:  # first sight: the signature is checked
            t0 = time.thread_time_ns()
            verifier.verify(token)
            first.append((time.thread_time_ns() - t0) / 1000)
        token = tokens[0]
        verify = _cpu_us(lambda: verifier.verify(token), calls)
        request = pb.ValidateTokenRequest(session_token=session_token)
        for _ in range(200):  # warm the channel and the server's cache
            stub.ValidateToken(request, timeout=10)
        n = max(1000, calls // 10)
        meter = CpuMeter(a.pid, dsn, database)
        meter.start()
        wall0 = time.perf_counter()
        client = _cpu_us(lambda: stub.ValidateToken(request, timeout=10), n)
        wall = (time.perf_counter() - wall0) / n * 1e6
        server = meter.stop() / n * 1e6
    return Costs(
        statistics.median(verify),
        _p(verify, 0.99),
        statistics.median(first),
        statistics.median(client),
        wall,
        server,
    )


# Part 2: signing


def measure_signing(url: str, secret: str, n: int = 20_000) -> tuple[float, float]:
    settings = Settings(database_url=url, secret_key=SecretKeys.parse(secret))
    database = Database(make_engine(url))
    try:
        changes = Changes(database, ValidationCache(0), lambda: datetime.now(UTC))
        tokens = AccessTokens(changes, settings.secret_key, token_policy(settings))
        now = datetime.now(UTC)
        methods = (proven(AuthMethod.PASSWORD, now),)
        subject = Subject(uuid.uuid4(), uuid.uuid4(), now + timedelta(hours=1), methods)
        assert tokens.issue(subject, now) is not None  # loads the keyring once
        times = _cpu_us(lambda: tokens.issue(subject, datetime.now(UTC)), n)
    finally:
        database.dispose()
    return statistics.median(times), _p(times, 0.99)


# Part 3: revocation visibility


def measure_visibility(
    a: RunningServer, b: RunningServer, verifiers: int, revocations: int
) -> tuple[list[float], int]:
    """Seconds from A's acknowledgement to each verifier's refusal; and the lost ones."""
    delays: list[float] = []
    lost = 0
    with (
        grpc.insecure_channel(a.address) as channel,
        _verifiers([a.address, b.address], verifiers) as fleet,
    ):
        stub = pb_grpc.AuthServiceStub(channel)
        emails = _sign_up(stub, revocations)
        signed = [_sign_in(stub, e) for e in emails]
        for i, reply in enumerate(signed):
            token = reply.access_token
            for verifier in fleet:
                verifier.verify(token)  # accepted (and cached) before
            if i % 2:
                stub.DisableUser(pb.DisableUserRequest(id=reply.user.id), timeout=10)
            else:
                stub.RevokeSession(pb.RevokeSessionRequest(session_id=reply.session.id), timeout=10)
            acked = time.perf_counter()
            waiting = set(range(len(fleet)))
            while waiting and time.perf_counter() - acked < _GIVE_UP:
                for v in list(waiting):
                    if _refused(fleet[v], token):
                        delays.append(time.perf_counter() - acked)
                        waiting.discard(v)
                time.sleep(0.0005)
            lost += len(waiting)
    return delays, lost


def _refused(verifier: Verifier, token: str) -> bool:
    try:
        verifier.verify(token)
    except TokenRevoked:
        return True
    return False


# Part 4: rotation under load


@dataclass
class Rotation:
    verified: int = 0
    wrongly_refused: int = 0
    wrongly_accepted: int = 0
    forged_accepted: int = 0
    kids: set[str] = field(default_factory=set)
    refusals: dict[str, int] = field(default_factory=dict)
    wrong_refusals: set[str] = field(default_factory=set)


@dataclass
class _Live:
    token: str
    session_id: str
    expires: float


def measure_rotation(
    url: str, settings: dict[str, str], verifiers: int, seconds: float, ttl: float
) -> Rotation:
    result = Rotation()
    with _replicas(url, settings) as (a, b), ExitStack() as stack:
        stubs = [
            pb_grpc.AuthServiceStub(stack.enter_context(grpc.insecure_channel(s.address)))
            for s in (a, b)
        ]
        fleet = stack.enter_context(
            _verifiers([a.address, b.address], verifiers, jwks_refresh=2.0, refetch_interval=0.2)
        )
        emails = _sign_up(stubs[0], 40)
        live: list[_Live] = []
        revoked: dict[str, float] = {}  # session id -> when RevokeSession returned
        lock = threading.Lock()
        stop = threading.Event()
        forged = _forged(stubs[0])

        def issue() -> None:
            update: dict[int, str] = {}
            while not stop.is_set():
                i = random.randrange(len(emails))
                stub = stubs[i % 2]
                if i in update and random.random() < 0.5:
                    got: pb.RefreshSessionResponse | pb.CreateSessionResponse = stub.RefreshSession(
                        pb.RefreshSessionRequest(update_token=update[i]), timeout=10
                    )
                else:
                    got = _sign_in(stub, emails[i])
                update[i] = got.update_token
                entry = _Live(
                    got.access_token, got.session.id, got.access_token_expire_time.seconds
                )
                with lock:
                    live.append(entry)
                if random.random() < 0.05:  # some sessions are revoked under the load
                    revoked[got.session.id] = float("inf")  # under way: not judged yet
                    stub.RevokeSession(
                        pb.RevokeSessionRequest(session_id=got.session.id), timeout=10
                    )
                    revoked[got.session.id] = time.time()
                    update.pop(i)
                time.sleep(0.02)

        def verify(verifier: Verifier) -> None:
            while not stop.is_set():
                with lock:
                    batch = list(live[-200:])
                for entry in batch:
                    _judge(verifier, entry, revoked.get(entry.session_id), result)
                if _accepts(verifier, forged):
                    result.forged_accepted += 1
                time.sleep(0.005)

        threads = [threading.Thread(target=issue) for _ in range(2)]
        threads += [threading.Thread(target=verify, args=(v,)) for v in fleet]
        started = time.monotonic()
        for t in threads:
            t.start()
        env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSVC_")}
        env.update(settings, AUTHSVC_DATABASE_URL=url)
        lead = ttl + 2.0
        for at in (2.0, 4.0 + lead):
            time.sleep(max(0.0, at - (time.monotonic() - started)))
            subprocess.run(
                [sys.executable, "-m", "authsvc", "keys", "rotate"],
                env=env,
                check=True,
                capture_output=True,
            )
        time.sleep(max(0.0, seconds - (time.monotonic() - started)))
        stop.set()
        for t in threads:
            t.join()
        for entry in live:
            result.kids.add(jwt.get_unverified_header(entry.token)["kid"])
    return result


def _judge(verifier: Verifier, entry: _Live, revoked_at: float | None, result: Rotation) -> None:
    now = time.time()
    if now >= entry.expires - 0.05 or (revoked_at and not now - revoked_at >= VISIBILITY_TARGET):
        return  # too close to expiry, or within the visibility bound: either answer is fine
    refusal = ""
    try:
        verifier.verify(entry.token)
        accepted = True
    except VerificationError as exc:
        accepted, refusal = False, exc.reason
        result.refusals[exc.reason] = result.refusals.get(exc.reason, 0) + 1
    result.verified += 1
    if revoked_at is None and not accepted:
        result.wrongly_refused += 1
        result.wrong_refusals.add(refusal)
    if revoked_at is not None and accepted:
        result.wrongly_accepted += 1


def _forged(stub: pb_grpc.AuthServiceStub) -> str:
    """A token with authsvc's claims signed by a key authsvc never published."""
    key = Ed25519PrivateKey.generate()
    now = int(time.time())
    claims = {"iss": "authsvc", "sub": "x", "sid": "y", "iat": now, "exp": now + 3600}
    return jwt.encode(claims, key, algorithm="EdDSA", headers={"typ": "at+jwt", "kid": "forged"})


def _accepts(verifier: Verifier, token: str) -> bool:
    try:
        verifier.verify(token)
        return True
    except VerificationError:
        return False


# The run


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    secret = Fernet.generate_key().decode()
    lines = [
        "### Access tokens: `python -m bench.access_tokens`",
        "",
        f"Command: `{shlex.join(['python', '-m', 'bench.access_tokens', *(argv or sys.argv[1:])])}`"
        f" on {len(os.sched_getaffinity(0))} cores, PostgreSQL, two replicas (1 worker each).",
        "",
    ]
    with population.fresh_database(args.dsn) as db:
        url = normalize_database_url(db.url)
        with _replicas(url, _settings(secret)) as (a, b):
            _log("part 1: verify beside ValidateToken")
            costs = measure_costs(a, args.dsn, db.name, args.calls)
            _log("part 2: signing")
            sign_p50, sign_p99 = measure_signing(url, secret)
            _log(f"part 3: {args.revocations} revocations, {args.verifiers} verifiers")
            delays, lost = measure_visibility(a, b, args.verifiers, args.revocations)
    lines += _report_costs(costs, sign_p50, sign_p99)
    lines += _report_visibility(delays, lost, args.revocations, args.verifiers)
    with population.fresh_database(args.dsn) as db:
        url = normalize_database_url(db.url)
        ttl = 4.0
        settings = _settings(
            secret,
            AUTHSVC_ACCESS_TOKEN_TTL="4s",
            AUTHSVC_JWKS_REFRESH="2s",
            AUTHSVC_SIGNING_KEY_ROTATION="0",
        )
        _log(f"part 4: two rotations under load, {args.rotation_seconds:.0f}s")
        rotation = measure_rotation(url, settings, args.verifiers, args.rotation_seconds, ttl)
    lines += _report_rotation(rotation)
    text = "\n".join(lines)
    print(text)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text + "\n")
    return 0


def _report_costs(c: Costs, sign_p50: float, sign_p99: float) -> list[str]:
    ok = c.verify_p50 <= VERIFY_TARGET_US and c.ratio >= 10
    return [
        "| measure | value | target |",
        "|---|---|---|",
        f"| `Verifier.verify`, valid token seen before: CPU p50 / p99 | "
        f"{c.verify_p50:.1f} µs / {c.verify_p99:.1f} µs | p50 ≤ {VERIFY_TARGET_US:.0f} µs |",
        f"| `Verifier.verify`, first sight (signature checked): CPU p50 | "
        f"{c.first_sight_p50:.0f} µs | once per token |",
        f"| `ValidateToken` round trip: the caller's CPU p50 (wall {c.validate_wall_p50:.0f} µs)"
        f" | {c.validate_client_p50:.0f} µs | |",
        f"| `ValidateToken`: authsvc's CPU per call (server + database) | "
        f"{c.validate_server_per_call:.0f} µs | |",
        f"| verify is cheaper for the caller than the round trip by | {c.ratio:.0f}x | ≥ 10x "
        f"({'met' if ok else 'MISSED'}) |",
        f"| signing on sign-in / refresh (`AccessTokens.issue`): CPU p50 / p99 | "
        f"{sign_p50:.0f} µs / {sign_p99:.0f} µs | ≤ {SIGN_TARGET_US:.0f} µs "
        f"({'met' if sign_p50 <= SIGN_TARGET_US else 'MISSED'}) |",
        "",
    ]


def _report_visibility(delays: list[float], lost: int, revocations: int, n: int) -> list[str]:
    ms = [d * 1000 for d in delays]
    p99 = _p(ms, 0.99) if ms else float("inf")
    met = "met" if p99 <= VISIBILITY_TARGET * 1000 and not lost else "MISSED"
    return [
        f"Revocation visibility: {revocations} revocations on A (RevokeSession and "
        f"DisableUser alternately), {n} verifiers (half on A, half on B), from A's "
        f"acknowledgement to each verifier's refusal ({len(ms)} refusals, {lost} never seen):",
        "",
        "| p50 | p99 | max | target |",
        "|---|---|---|---|",
        f"| {statistics.median(ms):.1f} ms | {p99:.1f} ms | {max(ms):.1f} ms | p99 ≤ 1 s ({met}) |",
        "",
    ]


def _report_rotation(r: Rotation) -> list[str]:
    met = "met" if not (r.wrongly_refused or r.wrongly_accepted or r.forged_accepted) else "MISSED"
    refusals = ", ".join(f"{k} {v}" for k, v in sorted(r.refusals.items())) or "none"
    return [
        f"Rotation under load: TTL 4 s, JWKS refresh 2 s, `authsvc keys rotate` twice; "
        f"{len(r.kids)} keys signed the tokens; {r.verified} verifications judged "
        f"(refusals: {refusals}; wrong ones: {', '.join(sorted(r.wrong_refusals)) or 'none'}):",
        "",
        "| wrongly refused | wrongly accepted | forged (unknown key) accepted | target |",
        "|---|---|---|---|",
        f"| {r.wrongly_refused} | {r.wrongly_accepted} | {r.forged_accepted} | 0, 0, 0 ({met}) |",
    ]


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
