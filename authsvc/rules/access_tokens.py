"""Access tokens: compact JWS (RFC 7515/7519) signed with Ed25519 (``alg: EdDSA``).

Signing is on the sign-in and refresh paths, so it is done here with ``cryptography``
directly: the header of each key is encoded once, the claims are one ``json.dumps``,
and the signature one Ed25519 sign (about 30 µs) — no JOSE library in between.
Verification (ValidateToken given an access token) accepts only what authsvc signs:
``alg: EdDSA``, ``typ: at+jwt``, a known ``kid``, the configured issuer and an
unexpired ``exp``; everything else is TokenInvalid, expiry is TokenExpired.

Claims: ``iss``, ``sub`` (user id), ``sid`` (session id), ``iat`` and ``exp`` (whole
seconds), ``jti``, ``aal`` (1 or 2), ``amr`` (the session's methods, e.g.
``["PASSWORD", "TOTP"]``) and, when configured, ``email``.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from authsvc.errors import TokenExpired, TokenInvalid
from authsvc.rules.authentication import assurance_level, method_names
from authsvc.rules.signing_keys import b64url
from authsvc.storage.models import Authentication

TYPE = "at+jwt"
ALGORITHM = "EdDSA"
#: Longest access token ValidateToken looks at (ours are about 450 characters).
MAX_LENGTH = 4096


@dataclass(frozen=True)
class Subject:
    """Whom an access token is for: a session of a user, and how it authenticated."""

    user_id: uuid.UUID
    session_id: uuid.UUID
    session_expires_at: datetime
    methods: tuple[Authentication, ...]
    email: str = ""


@dataclass(frozen=True)
class AccessToken:
    """A signed access token and when it expires."""

    token: str
    expires_at: datetime


@dataclass(frozen=True)
class Claims:
    """What a verified access token says."""

    user_id: uuid.UUID
    session_id: uuid.UUID
    issued_at: int
    expires_at: int


class TokenSigner:
    """Signs access tokens with one loaded private key (built once per key)."""

    __slots__ = ("_header", "_key", "kid")

    def __init__(self, kid: str, key: Ed25519PrivateKey) -> None:
        self.kid = kid
        self._key = key
        header = {"alg": ALGORITHM, "typ": TYPE, "kid": kid}
        self._header = b64url(json.dumps(header, separators=(",", ":")).encode()) + "."

    def sign(self, subject: Subject, issuer: str, now: datetime, ttl: timedelta) -> AccessToken:
        """A token for ``subject`` issued ``now``, expiring after ``ttl`` or with the session."""
        issued = int(now.timestamp())
        expires = min(
            issued + int(ttl.total_seconds()), int(subject.session_expires_at.timestamp())
        )
        claims: dict[str, Any] = {
            "iss": issuer,
            "sub": str(subject.user_id),
            "sid": str(subject.session_id),
            "iat": issued,
            "exp": expires,
            "jti": b64url(uuid.uuid4().bytes),
            "aal": assurance_level(subject.methods),
            "amr": method_names(subject.methods),
        }
        if subject.email:
            claims["email"] = subject.email
        signing_input = self._header + b64url(json.dumps(claims, separators=(",", ":")).encode())
        signature = self._key.sign(signing_input.encode("ascii"))
        return AccessToken(
            signing_input + "." + b64url(signature), datetime.fromtimestamp(expires, UTC)
        )


def looks_like_access_token(token: str) -> bool:
    """True for a compact JWS (three dot-separated parts); session tokens have none."""
    return token.count(".") == 2


def verify(token: str, keys: Mapping[str, Ed25519PublicKey], issuer: str, now: datetime) -> Claims:
    """The claims of a token authsvc signed with one of ``keys`` (by kid).

    Raises TokenInvalid (malformed, another algorithm or type, unknown kid, bad
    signature, wrong issuer) or TokenExpired.
    """
    if len(token) > MAX_LENGTH:
        raise TokenInvalid()
    header_part, payload_part, signature_part = token.split(".")
    header = _json(header_part)
    if header.get("alg") != ALGORITHM or header.get("typ") != TYPE:
        raise TokenInvalid()
    key = keys.get(header.get("kid"))  # type: ignore[arg-type]
    if key is None:
        raise TokenInvalid()
    try:
        key.verify(_bytes(signature_part), f"{header_part}.{payload_part}".encode("ascii"))
    except (InvalidSignature, UnicodeEncodeError):
        raise TokenInvalid() from None
    return _claims(_json(payload_part), issuer, now)


def _claims(payload: dict[str, Any], issuer: str, now: datetime) -> Claims:
    if payload.get("iss") != issuer:
        raise TokenInvalid()
    try:
        claims = Claims(
            uuid.UUID(payload["sub"]),
            uuid.UUID(payload["sid"]),
            int(payload["iat"]),
            int(payload["exp"]),
        )
    except (KeyError, TypeError, ValueError):
        raise TokenInvalid() from None
    if now.timestamp() >= claims.expires_at:
        raise TokenExpired()
    return claims


def _bytes(part: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        raise TokenInvalid() from None


def _json(part: str) -> dict[str, Any]:
    try:
        value = json.loads(_bytes(part))
    except (ValueError, UnicodeDecodeError):
        raise TokenInvalid() from None
    if not isinstance(value, dict):
        raise TokenInvalid()
    return value
