"""Password policy and hashing (Werkzeug), with a bound on concurrent hashes.

Hashing releases the GIL, so several run in parallel on threads; the bound keeps
memory in check (scrypt at N=32768, r=8 takes 32 MiB per hash).
"""

from __future__ import annotations

import threading
import unicodedata
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


def method_of(password_hash: str) -> str:
    """The method part of a Werkzeug hash (``scrypt:32768:8:3``)."""
    return password_hash.split("$", 1)[0]


class Hasher:
    """Hashes and verifies passwords with one Werkzeug method, a few at a time."""

    def __init__(self, method: str, concurrency: int, queue_timeout: float = 5.0) -> None:
        self._method = method
        self._slots = threading.BoundedSemaphore(concurrency)
        self._queue_timeout = queue_timeout
        # Hashing once tells the full method string Werkzeug records (defaults filled in).
        self._dummy = generate_password_hash("authsvc-dummy-password", method=method)
        self.method = method_of(self._dummy)

    def hash(self, password: str) -> str:
        """The stored form of ``password``.

        Raises Overloaded when no slot frees in time, DeadlineExceeded when the call's
        deadline passes first.
        """
        with self._slot():
            return generate_password_hash(_normalize(password), method=self._method)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """Checks ``password``; with no hash (unknown user) checks a dummy so timing matches."""
        with self._slot():
            ok = check_password_hash(password_hash or self._dummy, _normalize(password))
        return ok and password_hash is not None

    def needs_rehash(self, password_hash: str) -> bool:
        """True when the hash was made with another method than the current one."""
        return method_of(password_hash) != self.method

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
