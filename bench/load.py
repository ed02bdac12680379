"""The load generator: client processes running grpc.aio, a set number of calls in flight.

A run has one or more streams (ValidateToken, CreateSession, or a mix of both). Each
stream is either closed-loop (every slot issues its next call as soon as the previous
one returns) or paced (a fixed call rate, for latency under a known load). Calls that
start in the measured window count; the warm-up before it is discarded.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import random
import time
from array import array
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc

from authsvc_client.v1 import auth_service_pb2 as pb
from authsvc_client.v1 import auth_service_pb2_grpc as pb_grpc
from bench.population import PASSWORD, Tokens, email

VALIDATE = "ValidateToken"
SIGN_IN = "CreateSession"
_CHANNELS_PER_CLIENT = 4  # separate connections, so SO_REUSEPORT can spread them
_CALL_TIMEOUT = 30.0


@dataclass(frozen=True)
class Stream:
    """Calls of one kind: ``validate_share`` of them ValidateToken, the rest sign-ins."""

    in_flight: int  # across all client processes
    validate_share: float = 1.0
    rate: float | None = None  # calls/s across all processes; None = closed loop


@dataclass(frozen=True)
class Target:
    """What the clients call: address, and how to make valid tokens and sign-ins."""

    address: str
    tokens: Tokens
    sessions: int
    users: int


@dataclass
class KindResult:
    """Outcome of one RPC kind in the measured window."""

    latencies: array[float] = field(default_factory=lambda: array("d"))
    errors: Counter[str] = field(default_factory=Counter)
    # When each call started (time.time()): successes in the order of ``latencies``.
    starts: array[float] = field(default_factory=lambda: array("d"))
    failed: list[tuple[float, str]] = field(default_factory=list)

    @property
    def calls(self) -> int:
        """Calls started in the window that finished, successful or not."""
        return len(self.latencies) + sum(self.errors.values())

    def record(self, started: float, elapsed: float, code: str | None) -> None:
        """One call that started at ``started``: its latency, or its error code."""
        if code is None:
            self.latencies.append(elapsed)
            self.starts.append(started)
        else:
            self.errors[code] += 1
            self.failed.append((started, code))

    def merge(self, other: KindResult) -> None:
        """Adds ``other``'s calls to these."""
        self.latencies.extend(other.latencies)
        self.errors.update(other.errors)
        self.starts.extend(other.starts)
        self.failed.extend(other.failed)

    def started_between(self, first: float, last: float) -> KindResult:
        """The calls that started from ``first`` to ``last`` (time.time())."""
        part = KindResult()
        for started, latency in zip(self.starts, self.latencies, strict=True):
            if first <= started <= last:
                part.record(started, latency, None)
        for started, code in self.failed:
            if first <= started <= last:
                part.record(started, 0.0, code)
        return part

    def percentile(self, q: float) -> float:
        """Latency percentile ``q`` (0..100) in seconds of successful calls; nan when none."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


@dataclass(frozen=True)
class Window:
    """Wall-clock times (time.time()) shared by the parent and every client."""

    start: float  # calls begin (warm-up)
    measure: float  # calls starting from here count
    end: float  # no call starts after this


def run_clients(
    target: Target,
    streams: list[Stream],
    clients: int,
    warmup: float,
    duration: float,
    on_measure: Callable[[Window], None],
) -> dict[str, KindResult]:
    """Runs ``streams`` from ``clients`` processes; calls ``on_measure(window)`` in between.

    ``on_measure`` runs in this process once all clients are connected and must return
    after ``window.end``: it is where the server's CPU is measured.
    """
    ctx = mp.get_context("spawn")  # grpc must not be forked once used
    ready, results = ctx.Queue(), ctx.Queue()
    go = [ctx.Queue() for _ in range(clients)]
    procs = [
        ctx.Process(target=_client_main, args=(target, streams, i, clients, ready, go[i], results))
        for i in range(clients)
    ]
    for p in procs:
        p.start()
    try:
        for _ in procs:
            ready.get(timeout=120)
        now = time.time()
        window = Window(now + 0.2, now + 0.2 + warmup, now + 0.2 + warmup + duration)
        for q in go:
            q.put(window)
        on_measure(window)
        merged: dict[str, KindResult] = {}
        for _ in procs:
            for kind, result in results.get(timeout=_CALL_TIMEOUT + 60).items():
                merged.setdefault(kind, KindResult()).merge(result)
        return merged
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()


def _client_main(
    target: Target,
    streams: list[Stream],
    index: int,
    clients: int,
    ready: Any,
    go: Any,
    results: Any,
) -> None:
    results.put(asyncio.run(_client(target, streams, index, clients, ready, go)))


async def _client(
    target: Target, streams: list[Stream], index: int, clients: int, ready: Any, go: Any
) -> dict[str, KindResult]:
    rng = random.Random(index)
    channels = [
        grpc.aio.insecure_channel(target.address, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(_CHANNELS_PER_CLIENT)
    ]
    for ch in channels:
        await ch.channel_ready()
    stubs = [pb_grpc.AuthServiceStub(ch) for ch in channels]
    ready.put(index)
    window: Window = await asyncio.get_running_loop().run_in_executor(None, go.get)
    out: dict[str, KindResult] = {VALIDATE: KindResult(), SIGN_IN: KindResult()}
    tasks = []
    for stream in streams:
        slots = _share(stream.in_flight, index, clients)
        pacer = _Pacer(window.start, stream.rate / clients) if stream.rate else None
        for slot in range(slots):
            stub = stubs[(slot + index) % len(stubs)]
            tasks.append(_slot(stub, stream, target, window, pacer, rng, out))
    await asyncio.gather(*tasks)
    for ch in channels:
        await ch.close()
    return out


def _share(total: int, index: int, clients: int) -> int:
    return total // clients + (1 if index < total % clients else 0)


class _Pacer:
    """Hands out evenly spaced start times for a paced stream."""

    def __init__(self, start: float, rate: float) -> None:
        self._next = start
        self._gap = 1.0 / rate

    def take(self) -> float:
        at, self._next = self._next, self._next + self._gap
        return at


async def _slot(
    stub: Any,  # an aio stub: the generated type hints describe the sync one
    stream: Stream,
    target: Target,
    window: Window,
    pacer: _Pacer | None,
    rng: random.Random,
    out: dict[str, KindResult],
) -> None:
    await asyncio.sleep(max(0.0, window.start - time.time()))
    while True:
        if pacer is not None:
            at = pacer.take()
            await asyncio.sleep(max(0.0, at - time.time()))
        started = time.time()
        if started >= window.end:
            return
        kind = VALIDATE if rng.random() < stream.validate_share else SIGN_IN
        t0 = time.perf_counter()
        code = await _call(stub, kind, target, rng)
        elapsed = time.perf_counter() - t0
        if started >= window.measure:
            out[kind].record(started, elapsed, code)


async def _call(stub: Any, kind: str, target: Target, rng: random.Random) -> str | None:
    try:
        if kind == VALIDATE:
            token = target.tokens.session(rng.randrange(target.sessions))
            await stub.ValidateToken(
                pb.ValidateTokenRequest(session_token=token), timeout=_CALL_TIMEOUT
            )
        else:
            request = pb.CreateSessionRequest(
                email=email(rng.randrange(target.users)),
                password=PASSWORD,
                user_agent="authsvc-bench",
                ip_address="127.0.0.1",
            )
            await stub.CreateSession(request, timeout=_CALL_TIMEOUT)
    except grpc.aio.AioRpcError as exc:
        return exc.code().name
    return None
