"""Password policy and hashing (Werkzeug), with a bound on concurrent hashes.

Hashing releases the GIL, so several run in parallel on threads; the bound keeps
memory in check (scrypt at N=32768, r=8 takes 32 MiB per hash).
"""

from __future__ import annotations

import contextlib
import os
import threading
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from functools import cache

from werkzeug.security import check_password_hash, generate_password_hash

from authsvc import deadlines
from authsvc.errors import DeadlineExceeded, InvalidArgument, Overloaded

MIN_LENGTH = 8
MAX_LENGTH = 256


@cache
def common_passwords() -> frozenset[str]:
    """The 30,000 most common passwords of zxcvbn's frequency lists, lower-cased."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(p.lower() for p in FREQUENCY_LISTS["passwords"] if len(p) >= MIN_LENGTH)


def check_policy(password: str, field: str) -> None:
    """Raises InvalidArgument (naming ``field``) unless ``password`` is acceptable.

    8 to 256 characters (longer is rejected, never truncated), not a common password.
    """
    if len(password) < MIN_LENGTH:
        raise InvalidArgument.of(field, f"must be at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise InvalidArgument.of(field, f"must be at most {MAX_LENGTH} characters")
    if password.lower() in common_passwords():
        raise InvalidArgument.of(field, "is one of the most common passwords; choose another")


def _normalize(password: str) -> str:
    # NIST SP 800-63B 5.1.1.2: normalize Unicode so the same password typed on two
    # devices hashes alike. Lone surrogates cannot be encoded: keep them escaped.
    return (
        unicodedata.normalize("NFKC", password)
        .encode("utf-8", "surrogatepass")
        .decode("utf-8", "replace")
    )


@cache
def dummy_hash(method: str) -> str:
    """A hash of a throwaway password made with ``method``; raises ValueError for a bad one.

    Computed once per method and process (before forking, the workers inherit it): the
    settings check and the Hasher both need it, and one scrypt hash is 0.3 s of CPU.
    """
    return generate_password_hash("authsvc-dummy-password", method=method)


def method_of(password_hash: str) -> str:
    """The method part of a Werkzeug hash (``scrypt:32768:8:3``)."""
    return password_hash.split("$", 1)[0]


# How much nicer than the gRPC handler threads the hashing threads run. A sign-in storm
# then takes the CPU only when ValidateToken (the hot path) leaves it idle: its p99 stays
# low while sign-ins still use every spare cycle.
HASH_THREAD_NICENESS = 10


def _lower_priority() -> None:
    # Linux schedules threads as tasks, so this renices only the calling pool thread.
    # Raising one's own niceness needs no privilege.
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASH_THREAD_NICENESS)


class Hasher:
    """Hashes and verifies passwords with one Werkzeug method, a few at a time.

    The hashes run on a small pool of low-priority threads, one per slot.
    """

    def __init__(self, method: str, concurrency: int, queue_timeout: float = 5.0) -> None:
        self._method = method
        self._slots = threading.BoundedSemaphore(concurrency)
        self._queue_timeout = queue_timeout
        self._pool = ThreadPoolExecutor(concurrency, "hash", initializer=_lower_priority)
        # Hashing once tells the full method string Werkzeug records (defaults filled in).
        self._dummy = dummy_hash(method)
        self.method = method_of(self._dummy)

    def hash(self, password: str) -> str:
        """The stored form of ``password``.

        Raises Overloaded when no slot frees in time, DeadlineExceeded when the call's
        deadline passes first.
        """
        with self._slot():
            done = self._pool.submit(generate_password_hash, _normalize(password), self._method)
            return done.result()

    def verify(self, password_hash: str | None, password: str) -> bool:
        """Checks ``password``; with no hash (unknown user) checks a dummy so timing matches."""
        with self._slot():
            stored = password_hash or self._dummy
            ok = self._pool.submit(check_password_hash, stored, _normalize(password)).result()
        return ok and password_hash is not None

    def needs_rehash(self, password_hash: str) -> bool:
        """True when the hash was made with another method than the current one."""
        return method_of(password_hash) != self.method

    def close(self) -> None:
        """Stops the hashing threads (after the hashes in progress)."""
        self._pool.shutdown(wait=True)

    def _slot(self) -> _Slot:
        return _Slot(self._slots, self._queue_timeout)


class _Slot:
    def __init__(self, semaphore: threading.BoundedSemaphore, timeout: float) -> None:
        self._semaphore = semaphore
        self._timeout = timeout

    def __enter__(self) -> None:
        timeout, by_deadline = deadlines.wait_limit(self._timeout)
        if not self._semaphore.acquire(timeout=timeout):
            raise DeadlineExceeded() if by_deadline else Overloaded()

    def __exit__(self, *exc: object) -> None:
        self._semaphore.release()
