"""``python -m bench.invalidation``: how soon another replica's cache forgets a revoked session.

Two authsvc servers (A and B, in this process, each with its own validation cache and
LISTEN connection) share one PostgreSQL database. For each of ``--revocations``
sessions: B validates the token (so B's cache holds it), A signs it out (DeleteSession),
while B's cache is watched (every 0.2 ms) until it no longer holds the token's digest.
Recorded from the moment A's call begins: when A acknowledged, and when B forgot; after
A's acknowledgement and before B forgets, B would still accept a token A has revoked.
Prints p50, p99 and max as markdown, and the target: B forgets within 100 ms of A's
acknowledgement (the commit and its NOTIFY happen just before A responds).
"""

from __future__ import annotations

import argparse
import functools
import math
import shlex
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import grpc

from authsvc.rules.tokens import token_hash
from authsvc.runtime.assembly import AuthServer, create_server
from authsvc.runtime.settings import Settings, normalize_database_url
from authsvc_client.v1 import auth_service_pb2 as pb
from authsvc_client.v1 import auth_service_pb2_grpc as pb_grpc
from bench import population
from bench.cli import DEFAULT_DSN

TARGET_MS = 100.0
_POLL = 0.0002  # seconds between looks at B's cache
_GIVE_UP = 10.0  # seconds: a notice this late counts as lost


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.invalidation", description=__doc__)
    p.add_argument("--revocations", type=int, default=200, help="sessions revoked on A")
    p.add_argument("--dsn", default=DEFAULT_DSN, help="maintenance database of PostgreSQL")
    return p


@contextmanager
def _replica(url: str) -> Iterator[tuple[AuthServer, pb_grpc.AuthServiceStub]]:
    settings = Settings(address="127.0.0.1:0", database_url=url, workers=1, validation_cache=10_000)
    server, port = create_server(settings)
    try:
        listener = server.infra.listener
        if listener is None or not listener.listening.wait(30):
            raise SystemExit("bench.invalidation: the replica never started listening")
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield server, pb_grpc.AuthServiceStub(channel)
    finally:
        server.stop(0)


@dataclass(frozen=True)
class Revocation:
    """When, after A's DeleteSession began, A acknowledged and B's cache forgot (seconds)."""

    acknowledged: float
    forgot: float  # infinity: the notice never arrived

    @property
    def after_ack(self) -> float:
        """How long B still held the session once A had acknowledged (0 if B forgot first)."""
        return max(self.forgot - self.acknowledged, 0.0)


def measure(revocations: int, dsn: str) -> list[Revocation]:
    """Revokes ``revocations`` sessions on A while watching B's cache for each."""
    with population.fresh_database(dsn) as db, ExitStack() as stack:
        population.add_users(db, 10, population.password_hash("pbkdf2:sha256:1000"))
        population.add_sessions(db, revocations)
        url = normalize_database_url(db.url)
        _, a = stack.enter_context(_replica(url))
        server_b, b = stack.enter_context(_replica(url))
        cache = server_b.infra.cache
        results = []
        for i in range(revocations):
            token = db.tokens.session(i)
            b.ValidateToken(pb.ValidateTokenRequest(session_token=token), timeout=10)
            digest = token_hash(token)
            assert digest in cache, "B did not cache the session it validated"
            results.append(_revoke(a, token, functools.partial(cache.__contains__, digest)))
        return results


def _revoke(a: pb_grpc.AuthServiceStub, token: str, cached: Callable[[], bool]) -> Revocation:
    acknowledged: list[float] = []
    start = time.perf_counter()
    call = a.DeleteSession.future(pb.DeleteSessionRequest(session_token=token), timeout=10)
    call.add_done_callback(lambda _: acknowledged.append(time.perf_counter()))
    while cached() and time.perf_counter() - start < _GIVE_UP:
        time.sleep(_POLL)
    forgot = math.inf if cached() else time.perf_counter()
    call.result()
    while not acknowledged:  # the callback runs on gRPC's thread, right after the result
        time.sleep(_POLL)
    return Revocation(acknowledged[0] - start, forgot - start)


def report(revocations: list[Revocation], command: str) -> str:
    """The result as markdown: the command, then one table row per measure."""
    lost = sum(1 for r in revocations if math.isinf(r.forgot))
    since_start = sorted(r.forgot for r in revocations)
    since_ack = sorted(r.after_ack for r in revocations)
    acks = sorted(r.acknowledged for r in revocations)
    # The revocation counts from A's acknowledgement: the commit (and its NOTIFY) happens
    # just before A responds, and a DeleteSession's own duration (the commit's fsync on a
    # busy disk) is no part of the delivery.
    worst = since_ack[-1] * 1000
    verdict = "PASS" if lost == 0 and worst <= TARGET_MS else "FAIL"
    return "\n".join(
        [
            f"Command: `{command}` ({len(revocations)} revocations, {lost} notices lost)",
            "",
            "| Measure | p50 ms | p99 ms | max ms |",
            "|---|--:|--:|--:|",
            f"| A's DeleteSession called → B's cache forgot | {_stats(since_start)} |",
            f"| A's DeleteSession called → A acknowledged | {_stats(acks)} |",
            f"| A acknowledged → B's cache forgot (0: B forgot first) | {_stats(since_ack)} |",
            "",
            f"Target: B forgets within 100 ms of A's acknowledgement: max {worst:.2f} ms, "
            f"{verdict}.",
        ]
    )


def _stats(ordered: list[float]) -> str:
    def ms(q: float) -> str:
        value = ordered[min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1)]
        return "lost" if math.isinf(value) else f"{value * 1000:.2f}"

    return f"{ms(50)} | {ms(99)} | {ms(100)}"


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the measurement and prints the markdown."""
    args = _parser().parse_args(argv)
    revocations = measure(args.revocations, args.dsn)
    words = sys.argv[1:] if argv is None else list(argv)
    print(report(revocations, shlex.join(["python", "-m", "bench.invalidation", *words])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
