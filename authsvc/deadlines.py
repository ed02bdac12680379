"""The deadline of the RPC being served, and waits that end at it (a leaf: every layer uses it).

The error interceptor records each call's deadline in a ContextVar (a handler runs on
one worker thread from start to end, so the variable is per call). Code that waits for a
shared resource (a password-hash slot, a pooled database connection) waits no longer
than the caller is still listening: it raises DeadlineExceeded and frees the worker
instead of holding it for a caller that has gone.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from authsvc.errors import DeadlineExceeded

# time.monotonic() at which the current call's deadline passes; None outside calls.
_DEADLINE: ContextVar[float | None] = ContextVar("authsvc_call_deadline", default=None)
# gRPC reports a call without a deadline as one about 9.2e18 s away: anything beyond
# a century is no deadline at all (and would overflow the waits it bounds).
_NO_DEADLINE_BEYOND = 100 * 365 * 24 * 3600.0


@contextmanager
def call_deadline(seconds: float | None) -> Iterator[None]:
    """Runs the block with a deadline ``seconds`` from now (None, infinite or gRPC's
    "no deadline": none)."""
    finite = seconds is not None and math.isfinite(seconds) and seconds < _NO_DEADLINE_BEYOND
    token = _DEADLINE.set(time.monotonic() + seconds if finite and seconds is not None else None)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def remaining() -> float | None:
    """Seconds left before the current call's deadline (never below 0); None without one."""
    deadline = _DEADLINE.get()
    return None if deadline is None else max(deadline - time.monotonic(), 0.0)


def wait_limit(timeout: float | None) -> tuple[float | None, bool]:
    """How long a wait of at most ``timeout`` seconds (None: unbounded) may last.

    Returns the limit and whether the call's deadline (not ``timeout``) sets it.
    Raises DeadlineExceeded when the deadline has already passed.
    """
    left = remaining()
    if left is None or (timeout is not None and timeout <= left):
        return timeout, False
    if left <= 0:
        raise DeadlineExceeded()
    return left, True


def wait_limit_or(timeout: float | None) -> tuple[float | None, bool]:
    """How long a wait may last: until the call's deadline, or ``timeout`` without one.

    Unlike ``wait_limit``, a deadline replaces ``timeout`` rather than shortening it:
    for a wait in a queue whose length is bounded elsewhere, the caller knows best how
    long it will wait. Returns the limit and whether the deadline sets it. Raises
    DeadlineExceeded when the deadline has already passed.
    """
    left = remaining()
    if left is None:
        return timeout, False
    if left <= 0:
        raise DeadlineExceeded()
    return left, True
