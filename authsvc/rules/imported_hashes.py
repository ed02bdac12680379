"""Password hashes made by other systems: recognizing them at import, checking them at sign-in.

Accepted formats (what Flask, Django, Rails-, PHP- and Node-era systems store):

- Werkzeug ``scrypt:N:r:p$salt$hex`` and ``pbkdf2:<hash>[:iterations]$salt$hex`` (the
  seed Flask design's ``password_digest``; authsvc's own hashes have this form too);
- bcrypt ``$2b$``, ``$2a$``, ``$2y$`` (``bcrypt``);
- argon2 ``$argon2id$`` and ``$argon2i$`` version 19 (``argon2-cffi``);
- Django ``pbkdf2_sha256$iterations$salt$base64``.

An import parses the hash fully (``format_of``), not by its prefix, so a truncated or
mangled hash is refused at import instead of locking its user out later. A hash is
accepted only if checking it costs at most about twice authsvc's own hash (the default
``scrypt:32768:8:3``): the caps below come from ``bench/import_hash_costs.py`` (CPU time
per check on the 2-core build machine, README "Migrating from the Flask accounts
design"), so a planted hash cannot make a sign-in compute for seconds or hold a hash
slot for long. And only if it can be checked as stored: the parameters and encodings
its library refuses (scrypt beyond hashlib's ``maxmem``, a bcrypt salt bcrypt rejects,
argon2 memory below 8 KiB per lane, base64 with stray bits) are refused here, not found
out at sign-in by a user who can never sign in. Sign-in (``check``) dispatches on the
prefix and never raises: an unreadable hash is simply wrong.

The old systems hashed the password as typed, so foreign formats are checked against
the raw password; Werkzeug hashes (authsvc's own included) against the NFKC form that
authsvc hashes, then the raw form if that differs (an imported Werkzeug hash).
"""

from __future__ import annotations

import base64
import binascii
import enum
import functools
import hashlib
import hmac
import re

import argon2
import bcrypt
from werkzeug.security import DEFAULT_PBKDF2_ITERATIONS, check_password_hash

from authsvc.rules.passwords import normalize
from authsvc.rules.values import Rejected, is_ascii_number

#: The ``password_hash`` column's width.
MAX_HASH_LENGTH = 255
# Cost caps, at about twice the CPU time of one check of authsvc's own hash
# (scrypt:32768:8:3, 0.22 s here): measured by bench/import_hash_costs.py, the cost of
# each format being linear in one number. bcrypt: 2^cost (cost 13 would be 2.1x).
MAX_BCRYPT_COST = 12
# scrypt: N*r*p (2^20, 1.3x; the next power of 2 would be 2.7x); memory 128*N*r follows.
MAX_SCRYPT_WORK = 2**20
MAX_SCRYPT_MEMORY = 128 * MAX_SCRYPT_WORK  # bytes: 128 MiB
MAX_SCRYPT_P = 16
# argon2: memory (KiB) times passes (2^18: 64 MiB and 4 passes; 1.4x).
MAX_ARGON2_WORK = 2**18
MAX_ARGON2_MEMORY_KIB = MAX_ARGON2_WORK
MAX_ARGON2_TIME = 16
MAX_ARGON2_LANES = 16
# pbkdf2: iterations per digest (sha384 shares sha512's block function, sha224 sha256's).
MAX_PBKDF2_ITERATIONS = {
    "sha1": 2_000_000,
    "sha224": 1_800_000,
    "sha256": 1_800_000,
    "sha384": 800_000,
    "sha512": 800_000,
}
# bcrypt uses only the first 72 bytes; the old system's library cut them silently.
BCRYPT_MAX_BYTES = 72

PBKDF2_HASHES = tuple(MAX_PBKDF2_ITERATIONS)
# Every pattern is matched whole (fullmatch) and ASCII only: "$" alone would also match
# before a trailing newline, and \d would take "١٢".
_HEX = re.compile(r"[0-9a-f]+")
_SALT = re.compile(r"[!-#%-~]+")  # printable ASCII but "$" (no space, no NUL)
_BCRYPT = re.compile(r"\$(2[aby])\$([0-9][0-9])\$([./A-Za-z0-9]{22})([./A-Za-z0-9]{31})")
_BCRYPT_ALPHABET = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_ARGON2 = re.compile(
    r"\$argon2(id|i)\$v=19\$m=([0-9]+),t=([0-9]+),p=([0-9]+)"
    r"\$([A-Za-z0-9+/]{11,})\$([A-Za-z0-9+/]{16,})"
)
_DJANGO = re.compile(r"pbkdf2_sha256\$([0-9]+)\$([!-#%-~]+)\$([A-Za-z0-9+/]{43}=)")


class HashFormat(enum.StrEnum):
    """The formats ImportUsers accepts."""

    WERKZEUG_SCRYPT = "werkzeug-scrypt"
    WERKZEUG_PBKDF2 = "werkzeug-pbkdf2"
    BCRYPT = "bcrypt"
    ARGON2 = "argon2"
    DJANGO_PBKDF2 = "django-pbkdf2"


class UnsupportedHash(Rejected):
    """The hash is in no accepted format, is malformed, or costs more than the caps."""


def format_of(password_hash: str) -> HashFormat:
    """The format of an importable hash.

    Raises Rejected when it is empty, UnsupportedHash when it is unknown, malformed or
    beyond the cost caps. The message never repeats the hash.
    """
    if not password_hash:
        raise Rejected("is required")
    if len(password_hash) > MAX_HASH_LENGTH:
        raise UnsupportedHash(f"must be at most {MAX_HASH_LENGTH} characters")
    if not password_hash.isascii() or not password_hash.isprintable():
        raise UnsupportedHash("must be printable ASCII (no NUL, no control characters)")
    if password_hash.startswith("scrypt:"):
        return _werkzeug_scrypt(password_hash)
    if password_hash.startswith("pbkdf2:"):
        return _werkzeug_pbkdf2(password_hash)
    if password_hash.startswith("$2"):
        return _bcrypt(password_hash)
    if password_hash.startswith("$argon2"):
        return _argon2(password_hash)
    if password_hash.startswith("pbkdf2_sha256$"):
        return _django(password_hash)
    raise UnsupportedHash(
        "is in no accepted format (Werkzeug scrypt/pbkdf2, bcrypt, argon2, Django pbkdf2_sha256)"
    )


def _split_werkzeug(password_hash: str) -> tuple[list[str], str, str]:
    parts = password_hash.split("$")
    if len(parts) != 3 or not _SALT.fullmatch(parts[1]) or not _HEX.fullmatch(parts[2]):
        raise UnsupportedHash("is not a Werkzeug hash (method$salt$hex)")
    return parts[0].split(":"), parts[1], parts[2]


def _number(text: str, low: int, high: int, what: str) -> int:
    # ASCII digits only: int() would also read "١٢" (and "²" would make it raise).
    if not is_ascii_number(text) or len(text) > 12 or not low <= int(text) <= high:
        raise UnsupportedHash(f"has {what} outside {low}..{high}")
    return int(text)


def _werkzeug_scrypt(password_hash: str) -> HashFormat:
    method, _salt, digest = _split_werkzeug(password_hash)
    if len(method) != 4:
        raise UnsupportedHash("is not a Werkzeug scrypt hash (scrypt:N:r:p$salt$hex)")
    n = _number(method[1], 2, MAX_SCRYPT_WORK, "an scrypt N")
    r = _number(method[2], 1, 64, "an scrypt r")
    p = _number(method[3], 1, MAX_SCRYPT_P, "an scrypt p")
    if n & (n - 1):
        raise UnsupportedHash("has an scrypt N that is not a power of 2")
    if 128 * n * r > MAX_SCRYPT_MEMORY:
        raise UnsupportedHash(f"needs more than {MAX_SCRYPT_MEMORY >> 20} MiB to check")
    if n * r * p > MAX_SCRYPT_WORK:
        raise UnsupportedHash(f"costs more than N*r*p = 2^{MAX_SCRYPT_WORK.bit_length() - 1}")
    if len(digest) != 128:  # Werkzeug's scrypt keys are 64 bytes
        raise UnsupportedHash("has a digest of the wrong length")
    if not _scrypt_checkable(n, r, p):
        raise UnsupportedHash("has scrypt parameters hashlib refuses (its memory limit)")
    return HashFormat.WERKZEUG_SCRYPT


@functools.cache
def _scrypt_checkable(n: int, r: int, p: int) -> bool:
    """Whether hashlib computes scrypt(N, r, p) with the ``maxmem`` Werkzeug gives it.

    Runs it once per distinct parameters (within the caps: at most about two own
    checks) and remembers: OpenSSL's limits (N < 2^(16r), memory over ``maxmem``) are
    what decides, and they are not written down anywhere else.
    """
    try:
        hashlib.scrypt(b"authsvc", salt=b"authsvc", n=n, r=r, p=p, maxmem=132 * n * r * p)
    except ValueError:
        return False
    return True


def _werkzeug_pbkdf2(password_hash: str) -> HashFormat:
    method, _salt, digest = _split_werkzeug(password_hash)
    if len(method) not in (2, 3) or method[1] not in PBKDF2_HASHES:
        raise UnsupportedHash("is not a Werkzeug pbkdf2 hash (pbkdf2:sha256[:iterations]$…)")
    cap = MAX_PBKDF2_ITERATIONS[method[1]]
    what = f"an iteration count (pbkdf2-{method[1]})"
    if len(method) == 3:
        _number(method[2], 1, cap, what)
    elif cap < DEFAULT_PBKDF2_ITERATIONS:  # Werkzeug's default applies
        raise UnsupportedHash(f"has {what} outside 1..{cap}")
    if len(digest) != 2 * hashlib.new(method[1]).digest_size:
        raise UnsupportedHash("has a digest of the wrong length")
    return HashFormat.WERKZEUG_PBKDF2


def _bcrypt(password_hash: str) -> HashFormat:
    match = _BCRYPT.fullmatch(password_hash)
    if not match:
        raise UnsupportedHash("is not a bcrypt hash ($2b$cost$ and 53 characters)")
    variant, cost, salt, digest = match.groups()
    _number(cost, 4, MAX_BCRYPT_COST, "a bcrypt cost")
    try:  # bcrypt's own parser, at the cheapest cost: it refuses some salts
        bcrypt.hashpw(b"authsvc", f"${variant}$04${salt}".encode("ascii"))
    except ValueError:
        raise UnsupportedHash("has a salt bcrypt refuses") from None
    # 31 characters carry 184 bits and 2 spare ones: bcrypt writes them as 0, so a
    # digest with a spare bit set never equals what bcrypt computes.
    if _BCRYPT_ALPHABET.index(digest[-1]) % 4:
        raise UnsupportedHash("has a digest bcrypt never computes")
    return HashFormat.BCRYPT


def _argon2(password_hash: str) -> HashFormat:
    match = _ARGON2.fullmatch(password_hash)
    if not match:
        raise UnsupportedHash("is not an argon2id or argon2i hash of version 19")
    memory = _number(match.group(2), 8, MAX_ARGON2_MEMORY_KIB, "an argon2 memory cost")
    passes = _number(match.group(3), 1, MAX_ARGON2_TIME, "an argon2 time cost")
    lanes = _number(match.group(4), 1, MAX_ARGON2_LANES, "an argon2 parallelism")
    if memory * passes > MAX_ARGON2_WORK:
        raise UnsupportedHash(f"costs more than memory*passes = {MAX_ARGON2_WORK} KiB")
    if memory < 8 * lanes:
        raise UnsupportedHash("has less than the 8 KiB per lane argon2 needs")
    if not all(_canonical_b64(part) for part in match.group(5, 6)):
        raise UnsupportedHash("has a salt or digest argon2 cannot decode")
    try:
        argon2.extract_parameters(password_hash)
    except argon2.exceptions.InvalidHashError:
        raise UnsupportedHash("is not a well-formed argon2 hash") from None
    return HashFormat.ARGON2


def _canonical_b64(text: str) -> bool:
    """Unpadded base64 that decodes and encodes back unchanged (libargon2 refuses
    stray bits in the last character)."""
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    return base64.b64encode(raw).decode("ascii").rstrip("=") == text


def _django(password_hash: str) -> HashFormat:
    match = _DJANGO.fullmatch(password_hash)
    if not match:
        raise UnsupportedHash("is not a Django hash (pbkdf2_sha256$iterations$salt$base64)")
    cap = MAX_PBKDF2_ITERATIONS["sha256"]
    _number(match.group(1), 1, cap, "an iteration count (pbkdf2-sha256)")
    return HashFormat.DJANGO_PBKDF2


def is_werkzeug(password_hash: str) -> bool:
    """True for a Werkzeug hash (``method$salt$hex``), the form authsvc itself stores."""
    return not password_hash.startswith(("$", "pbkdf2_sha256$"))


def check(password_hash: str, password: str) -> bool:
    """True when ``password`` matches ``password_hash`` of any accepted format.

    Never raises: an unreadable hash is a wrong password. A foreign hash is parsed again
    (within the caps) before it is computed; a Werkzeug hash may be authsvc's own, of
    whatever method the settings name, so it is not capped. Runs one slow hash (two for
    a Werkzeug hash and a password that NFKC normalization changes, when the first fails).
    """
    try:
        if not is_werkzeug(password_hash):
            format_of(password_hash)
        if password_hash.startswith("$2"):
            return _check_bcrypt(password_hash, password)
        if password_hash.startswith("$argon2"):
            return _check_argon2(password_hash, password)
        if password_hash.startswith("pbkdf2_sha256$"):
            return _check_django(password_hash, password)
        return _check_werkzeug(password_hash, password)
    except (ValueError, TypeError, binascii.Error):  # Rejected is a ValueError
        return False


def _check_werkzeug(password_hash: str, password: str) -> bool:
    normal = normalize(password)
    if check_password_hash(password_hash, normal):
        return True
    return normal != password and check_password_hash(password_hash, password)


def _raw(password: str) -> bytes:
    return password.encode("utf-8", "surrogatepass")


def _check_bcrypt(password_hash: str, password: str) -> bool:
    return bcrypt.checkpw(_raw(password)[:BCRYPT_MAX_BYTES], password_hash.encode("ascii"))


def _check_argon2(password_hash: str, password: str) -> bool:
    try:
        return argon2.PasswordHasher().verify(password_hash, _raw(password))
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        return False


def _check_django(password_hash: str, password: str) -> bool:
    _, iterations, salt, encoded = password_hash.split("$")
    key = hashlib.pbkdf2_hmac("sha256", _raw(password), salt.encode(), int(iterations))
    return hmac.compare_digest(base64.b64encode(key), encoded.encode("ascii"))
