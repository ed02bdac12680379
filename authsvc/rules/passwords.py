"""Password policy: length, common passwords, Unicode normalization, hash methods."""

from __future__ import annotations

import time
import unicodedata
from functools import cache

from werkzeug.security import generate_password_hash

from authsvc.rules.values import Rejected

MIN_LENGTH = 8
MAX_LENGTH = 256


@cache
def common_passwords() -> frozenset[str]:
    """The 30,000 most common passwords of zxcvbn's frequency lists, lower-cased."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(p.lower() for p in FREQUENCY_LISTS["passwords"] if len(p) >= MIN_LENGTH)


def new_password(password: str) -> str:
    """``password`` unchanged if acceptable as a new password; else raises Rejected.

    8 to 256 characters (longer is rejected, never truncated), not a common password.
    """
    if not password:
        raise Rejected("is required")
    if len(password) < MIN_LENGTH:
        raise Rejected(f"must be at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise Rejected(f"must be at most {MAX_LENGTH} characters")
    if password.lower() in common_passwords():
        raise Rejected("is one of the most common passwords; choose another")
    return password


def normalize(password: str) -> str:
    # NIST SP 800-63B 5.1.1.2: normalize Unicode so the same password typed on two
    # devices hashes alike. Lone surrogates cannot be encoded: keep them escaped.
    return (
        unicodedata.normalize("NFKC", password)
        .encode("utf-8", "surrogatepass")
        .decode("utf-8", "replace")
    )


def dummy_hash(method: str) -> str:
    """A hash of a throwaway password made with ``method``; raises ValueError for a bad one."""
    return _dummy(method)[0]


def hash_seconds(method: str) -> float:
    """How long one hash (or check: the same key derivation) of ``method`` took here."""
    return _dummy(method)[1]


@cache
def _dummy(method: str) -> tuple[str, float]:
    # Computed once per method and process (before forking, the workers inherit it): the
    # settings check and the Hasher both need it, and one scrypt hash is 0.3 s of CPU.
    started = time.perf_counter()
    made = generate_password_hash("authsvc-dummy-password", method=method)
    return made, time.perf_counter() - started


def method_of(password_hash: str) -> str:
    """The method part of a Werkzeug hash (``scrypt:32768:8:3``)."""
    return password_hash.split("$", 1)[0]
