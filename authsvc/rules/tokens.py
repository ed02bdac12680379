"""Opaque tokens: 256 random bits from ``secrets`` behind a prefix naming their kind.

The prefix keeps a session token from ever being accepted as an update token (and
the reverse) and makes a leaked token recognisable to secret scanners. Only the
SHA-256 of a token is stored.
"""

from __future__ import annotations

import enum
import hashlib
import re
import secrets

_RANDOM_BYTES = 32  # 256 bits
_BODY = re.compile(r"^[A-Za-z0-9_-]{43}$")  # base64url of 32 bytes, unpadded


class TokenKind(enum.Enum):
    """The kinds of token, by prefix."""

    SESSION = "asv_st_"
    UPDATE = "asv_ut_"
    RESET = "asv_rt_"
    VERIFICATION = "asv_vt_"
    API_KEY = "asv_ak_"
    CHALLENGE = "asv_ct_"


def new_token(kind: TokenKind) -> str:
    """A fresh token of ``kind``."""
    return kind.value + secrets.token_urlsafe(_RANDOM_BYTES)


def token_hash(token: str) -> bytes:
    """The SHA-256 digest stored for ``token``."""
    return hashlib.sha256(token.encode("utf-8")).digest()


def is_well_formed(token: str, kind: TokenKind) -> bool:
    """True when ``token`` has the prefix of ``kind`` and a body of the right shape.

    Lets malformed tokens fail without a database round trip.
    """
    return token.startswith(kind.value) and bool(_BODY.match(token[len(kind.value) :]))
