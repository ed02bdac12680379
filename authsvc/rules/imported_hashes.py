"""Password hashes made by other systems: recognizing them at import, checking them at sign-in.

Accepted formats (what Flask, Django, Rails-, PHP- and Node-era systems store):

- Werkzeug ``scrypt:N:r:p$salt$hex`` and ``pbkdf2:<hash>[:iterations]$salt$hex`` (the
  seed Flask design's ``password_digest``; authsvc's own hashes have this form too);
- bcrypt ``$2b$``, ``$2a$``, ``$2y$`` (``bcrypt``);
- argon2 ``$argon2id$`` and ``$argon2i$`` version 19 (``argon2-cffi``);
- Django ``pbkdf2_sha256$iterations$salt$base64``.

An import parses the hash fully (``format_of``), not by its prefix, so a truncated or
mangled hash is refused at import instead of locking its user out later. Cost
parameters are capped: a planted hash must not make one sign-in compute for minutes or
allocate gigabytes. Sign-in (``check``) dispatches on the prefix and never raises: an
unreadable hash is simply wrong.

The old systems hashed the password as typed, so foreign formats are checked against
the raw password; Werkzeug hashes (authsvc's own included) against the NFKC form that
authsvc hashes, then the raw form if that differs (an imported Werkzeug hash).
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import re

import argon2
import bcrypt
from werkzeug.security import check_password_hash

from authsvc.rules.passwords import normalize
from authsvc.rules.values import Rejected

#: The ``password_hash`` column's width.
MAX_HASH_LENGTH = 255
# Cost caps: well above what any of these systems ships by default.
MAX_SCRYPT_MEMORY = 256 * 1024 * 1024  # bytes: 128 * N * r
MAX_SCRYPT_P = 16
MAX_PBKDF2_ITERATIONS = 5_000_000
MAX_BCRYPT_COST = 16
MAX_ARGON2_MEMORY_KIB = 256 * 1024
MAX_ARGON2_TIME = 16
MAX_ARGON2_LANES = 16
# bcrypt uses only the first 72 bytes; the old system's library cut them silently.
BCRYPT_MAX_BYTES = 72

PBKDF2_HASHES = ("sha1", "sha224", "sha256", "sha384", "sha512")
_HEX = re.compile(r"^[0-9a-f]+$")
_SALT = re.compile(r"^[^$\s]+$")
_BCRYPT = re.compile(r"^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$")
_ARGON2 = re.compile(
    r"^\$argon2(id|i)\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$[A-Za-z0-9+/]{11,}\$[A-Za-z0-9+/]{16,}$"
)
_DJANGO = re.compile(r"^pbkdf2_sha256\$(\d+)\$([^$\s]+)\$([A-Za-z0-9+/]{43}=)$")


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
    if len(parts) != 3 or not _SALT.match(parts[1]) or not _HEX.match(parts[2]):
        raise UnsupportedHash("is not a Werkzeug hash (method$salt$hex)")
    return parts[0].split(":"), parts[1], parts[2]


def _number(text: str, low: int, high: int, what: str) -> int:
    if not text.isdigit() or not low <= int(text) <= high:
        raise UnsupportedHash(f"has {what} outside {low}..{high}")
    return int(text)


def _werkzeug_scrypt(password_hash: str) -> HashFormat:
    method, _salt, digest = _split_werkzeug(password_hash)
    if len(method) != 4:
        raise UnsupportedHash("is not a Werkzeug scrypt hash (scrypt:N:r:p$salt$hex)")
    n = _number(method[1], 2, 2**24, "an scrypt N")
    r = _number(method[2], 1, 64, "an scrypt r")
    _number(method[3], 1, MAX_SCRYPT_P, "an scrypt p")
    if n & (n - 1):
        raise UnsupportedHash("has an scrypt N that is not a power of 2")
    if 128 * n * r > MAX_SCRYPT_MEMORY:
        raise UnsupportedHash(f"needs more than {MAX_SCRYPT_MEMORY >> 20} MiB to check")
    if len(digest) != 128:  # Werkzeug's scrypt keys are 64 bytes
        raise UnsupportedHash("has a digest of the wrong length")
    return HashFormat.WERKZEUG_SCRYPT


def _werkzeug_pbkdf2(password_hash: str) -> HashFormat:
    method, _salt, digest = _split_werkzeug(password_hash)
    if len(method) not in (2, 3) or method[1] not in PBKDF2_HASHES:
        raise UnsupportedHash("is not a Werkzeug pbkdf2 hash (pbkdf2:sha256[:iterations]$…)")
    if len(method) == 3:
        _number(method[2], 1, MAX_PBKDF2_ITERATIONS, "an iteration count")
    if len(digest) != 2 * hashlib.new(method[1]).digest_size:
        raise UnsupportedHash("has a digest of the wrong length")
    return HashFormat.WERKZEUG_PBKDF2


def _bcrypt(password_hash: str) -> HashFormat:
    match = _BCRYPT.match(password_hash)
    if not match:
        raise UnsupportedHash("is not a bcrypt hash ($2b$cost$ and 53 characters)")
    _number(match.group(1), 4, MAX_BCRYPT_COST, "a bcrypt cost")
    return HashFormat.BCRYPT


def _argon2(password_hash: str) -> HashFormat:
    match = _ARGON2.match(password_hash)
    if not match:
        raise UnsupportedHash("is not an argon2id or argon2i hash of version 19")
    _number(match.group(2), 8, MAX_ARGON2_MEMORY_KIB, "an argon2 memory cost")
    _number(match.group(3), 1, MAX_ARGON2_TIME, "an argon2 time cost")
    _number(match.group(4), 1, MAX_ARGON2_LANES, "an argon2 parallelism")
    try:
        argon2.extract_parameters(password_hash)
    except argon2.exceptions.InvalidHashError:
        raise UnsupportedHash("is not a well-formed argon2 hash") from None
    return HashFormat.ARGON2


def _django(password_hash: str) -> HashFormat:
    match = _DJANGO.match(password_hash)
    if not match:
        raise UnsupportedHash("is not a Django hash (pbkdf2_sha256$iterations$salt$base64)")
    _number(match.group(1), 1, MAX_PBKDF2_ITERATIONS, "an iteration count")
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
