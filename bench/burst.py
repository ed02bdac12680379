"""A burst of sign-ups, then of sign-ins, all at once: from one channel or from many.

Most callers are one backend holding one long-lived channel, and a channel is one
HTTP/2 connection, so all of its calls land on one pre-forked worker (issue 12). The
burst is issued from this process with the sync client's futures, every call with a
30 s deadline; the sign-ins use the accounts the sign-ups just made.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc

from authsvc_client.v1 import auth_service_pb2 as pb
from authsvc_client.v1 import auth_service_pb2_grpc as pb_grpc
from bench.load import SIGN_IN, KindResult
from bench.population import PASSWORD

SIGN_UP = "CreateUser"
DEADLINE = 30.0


@dataclass(frozen=True)
class Burst:
    """``calls`` sign-ups, then ``calls`` sign-ins, spread over ``channels`` channels."""

    calls: int
    channels: int


@dataclass
class Phase:
    """One half of a burst: its calls, how long it took, and the answers that were wrong."""

    result: KindResult
    seconds: float  # first call issued → last answer in
    wrong: int = 0  # OK, but not the answer expected


@dataclass
class BurstResult:
    """Both halves of a burst, and when (time.time()) it ran."""

    phases: dict[str, Phase] = field(default_factory=dict)
    started: float = 0.0
    ended: float = 0.0


def run_burst(address: str, burst: Burst) -> BurstResult:
    """Runs the sign-ups, then the sign-ins, each all at once."""
    emails = [f"burst-{secrets.token_hex(4)}-{i}@bench.example" for i in range(burst.calls)]
    with _channels(address, burst.channels) as stubs:
        outcome = BurstResult(started=time.time())
        outcome.phases[SIGN_UP] = _phase(stubs, emails, _sign_up, _signed_up)
        outcome.phases[SIGN_IN] = _phase(stubs, emails, _sign_in, _signed_in)
        outcome.ended = time.time()
    return outcome


@contextmanager
def _channels(address: str, count: int) -> Iterator[list[Any]]:
    # A local subchannel pool per channel: separate connections, as from separate callers.
    options = [("grpc.use_local_subchannel_pool", 1)]
    with ExitStack() as stack:
        channels = [
            stack.enter_context(grpc.insecure_channel(address, options=options))
            for _ in range(count)
        ]
        for channel in channels:
            grpc.channel_ready_future(channel).result(timeout=30)
        yield [pb_grpc.AuthServiceStub(channel) for channel in channels]


def _sign_up(stub: Any, email: str) -> Any:
    request = pb.CreateUserRequest(
        email=email, password=PASSWORD, first_name="Burst", last_name="Caller"
    )
    return stub.CreateUser.future(request, timeout=DEADLINE)


def _signed_up(reply: Any, email: str) -> bool:
    return bool(reply.user.email == email and reply.user.id)


def _sign_in(stub: Any, email: str) -> Any:
    # Fifty people signing in at once come from fifty addresses: from one, their attempts
    # in progress would add up to the per-IP throttle (each counts until it succeeds).
    n = int(email.rsplit("-", 1)[1].split("@")[0])
    request = pb.CreateSessionRequest(
        email=email,
        password=PASSWORD,
        user_agent="authsvc-bench",
        ip_address=f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}",
    )
    return stub.CreateSession.future(request, timeout=DEADLINE)


def _signed_in(reply: Any, email: str) -> bool:
    return bool(reply.user.email == email and reply.session_token.startswith("asv_st_"))


def _phase(
    stubs: list[Any],
    emails: list[str],
    call: Callable[[Any, str], Any],
    right: Callable[[Any, str], bool],
) -> Phase:
    result, lock = KindResult(), threading.Lock()
    done = threading.Semaphore(0)
    wrong = [0]

    def finished(future: Any, email: str, started: float, t0: float) -> None:
        elapsed = time.perf_counter() - t0
        code = None if future.code() == grpc.StatusCode.OK else future.code().name
        with lock:
            result.record(started, elapsed, code)
            wrong[0] += code is None and not right(future.result(), email)
        done.release()

    t0 = time.perf_counter()
    for i, email in enumerate(emails):
        started, t = time.time(), time.perf_counter()
        future = call(stubs[i % len(stubs)], email)
        future.add_done_callback(lambda f, e=email, s=started, t=t: finished(f, e, s, t))
    for _ in emails:
        done.acquire(timeout=DEADLINE + 30)
    return Phase(result, time.perf_counter() - t0, wrong[0])
