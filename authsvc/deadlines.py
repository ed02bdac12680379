"""The deadline of the RPC being served, and waits that end at it (a leaf: every layer uses it).

The error interceptor records each call's time-remaining function in a ContextVar (a
handler runs on one worker thread from start to end, so the variable is per call); the
deadline is only read when something actually has to wait, not on every call. Code that waits for a
shared resource (a password-hash slot, a pooled database connection) waits no longer
than the caller is still listening: it raises DeadlineExceeded and frees the worker
instead of holding it for a caller that has gone.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token

from authsvc.errors import DeadlineExceeded

#: Seconds left before a deadline (None or infinite: none), e.g. a call's time_remaining.
TimeRemaining = Callable[[], float | None]

# gRPC reports a call without a deadline as one about 9.2e18 s away: anything beyond
# a century is no deadline at all (and would overflow the waits it bounds).
_NO_DEADLINE_BEYOND = 100 * 365 * 24 * 3600.0

# The current call's time-remaining function; None outside calls.
_DEADLINE: ContextVar[TimeRemaining | None] = ContextVar("authsvc_call_deadline", default=None)


def enter_call(time_remaining: TimeRemaining) -> Token[TimeRemaining | None]:
    """Makes ``time_remaining`` the current call's deadline; hand the token to ``leave_call``."""
    return _DEADLINE.set(time_remaining)


def leave_call(token: Token[TimeRemaining | None]) -> None:
    """Restores the deadline that was current before ``enter_call``."""
    _DEADLINE.reset(token)


@contextmanager
def call_deadline(seconds: float | None) -> Iterator[None]:
    """Runs the block with a deadline ``seconds`` from now (None, infinite or gRPC's
    "no deadline": none)."""
    finite = seconds is not None and math.isfinite(seconds) and seconds < _NO_DEADLINE_BEYOND
    end = time.monotonic() + seconds if finite and seconds is not None else None
    token = enter_call(lambda: None if end is None else end - time.monotonic())
    try:
        yield
    finally:
        leave_call(token)


def remaining() -> float | None:
    """Seconds left before the current call's deadline (never below 0); None without one."""
    time_remaining = _DEADLINE.get()
    left = None if time_remaining is None else time_remaining()
    if left is None or not math.isfinite(left) or left >= _NO_DEADLINE_BEYOND:
        return None
    return max(left, 0.0)


def wait_limit(
    timeout: float | None, expired: Callable[[], Exception] = DeadlineExceeded
) -> tuple[float | None, bool]:
    """How long a wait of at most ``timeout`` seconds (None: unbounded) may last.

    Returns the limit and whether the call's deadline (not ``timeout``) sets it.
    Raises ``expired()`` (DeadlineExceeded unless the waiter, say storage, which knows
    no API errors, names its own) when the deadline has already passed.
    """
    left = remaining()
    if left is None or (timeout is not None and timeout <= left):
        return timeout, False
    if left <= 0:
        raise expired()
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
