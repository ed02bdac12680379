"""Verifier: checks authsvc's access tokens inside the calling service, in microseconds.

    verifier = Verifier(channel)            # a grpc.Channel to authsvc
    verified = verifier.verify(access_token)  # or raises a VerificationError
    verified.user_id, verified.session_id, verified.aal, verified.methods

It fetches the public keys (``GetSigningKeys``: again every ``jwks_refresh`` seconds,
and at once, rate-limited, for a token signed by a key it does not know) and holds the
revocation feed (``WatchRevocations``) open in a background thread, resuming after a
disconnect from the last cursor. A token's signature is checked once (PyJWT, Ed25519)
and the verified claims kept in a bounded LRU keyed by the token; every call still
checks expiry and revocations.

It fails closed: when the feed has been silent longer than ``max_staleness`` seconds
(authsvc sends a heartbeat every second), ``verify`` raises ``RevocationFeedStale`` —
or, with ``fallback_to_validate_token=True``, asks ``ValidateToken`` for that call.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import grpc
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from authsvc_client.auth_client import RESUME_BACKOFF
from authsvc_client.v1 import auth_service_pb2 as pb
from authsvc_client.v1 import auth_service_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

DEFAULT_ISSUER = "authsvc"
_TYPE = "at+jwt"
_REQUIRED = ["iss", "sub", "sid", "iat", "exp"]
# The event stream's resume backoff, capped at 1 s: a verifier fails closed after
# ``max_staleness`` (5 s by default), so it retries more often than a consumer.
_RECONNECT_DELAYS = RESUME_BACKOFF[:-1]


class VerificationError(Exception):
    """An access token was refused. ``reason`` is a stable name to branch on."""

    reason = "TOKEN_INVALID"

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.reason)


class MalformedToken(VerificationError):
    """Not a JWT authsvc could have issued (bad shape, ``alg``, ``typ`` or claims)."""

    reason = "MALFORMED_TOKEN"


class BadSignature(VerificationError):
    """The signature does not verify with the key the token names."""

    reason = "BAD_SIGNATURE"


class UnknownKey(VerificationError):
    """Signed by a key (``kid``) that authsvc does not publish."""

    reason = "UNKNOWN_KEY"


class WrongIssuer(VerificationError):
    """Issued by someone else (``iss``)."""

    reason = "WRONG_ISSUER"


class TokenExpired(VerificationError):
    """Past its ``exp``: refresh the session for a new access token."""

    reason = "TOKEN_EXPIRED"


class TokenRevoked(VerificationError):
    """Its session was revoked, or its user's tokens were (disable, new password...)."""

    reason = "TOKEN_REVOKED"


class RevocationFeedStale(VerificationError):
    """The revocation feed has been silent longer than ``max_staleness``: refused, since
    a revocation could be missing (fail closed)."""

    reason = "REVOCATION_FEED_STALE"


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """What a valid access token says."""

    user_id: str
    session_id: str
    #: 1 (AAL1) or 2 (AAL2).
    aal: int
    #: How the session authenticated (``"PASSWORD"``, ``"TOTP"``, ``"PASSKEY"``...).
    methods: tuple[str, ...]
    #: ``iat`` and ``exp``, seconds since the epoch.
    issued_at: int
    expires_at: int
    #: Only when authsvc is configured to include it (AUTHSVC_ACCESS_TOKEN_EMAIL).
    email: str = ""

    @property
    def expire_time(self) -> datetime:
        """When the token expires."""
        return datetime.fromtimestamp(self.expires_at, UTC)


class Verifier:
    """Verifies access tokens locally; see the module's documentation."""

    def __init__(
        self,
        channel: grpc.Channel,
        max_staleness: float = 5.0,
        fallback_to_validate_token: bool = False,
        *,
        issuer: str = DEFAULT_ISSUER,
        jwks_refresh: float = 300.0,
        refetch_interval: float = 1.0,
        cache_size: int = 10_000,
        metadata: Sequence[tuple[str, str]] = (),
        timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._stub = pb_grpc.AuthServiceStub(channel)
        self.max_staleness = max_staleness
        self.fallback_to_validate_token = fallback_to_validate_token
        self._issuer = issuer
        self._jwks_refresh = jwks_refresh
        self._refetch_interval = refetch_interval
        self._cache_size = cache_size
        self._metadata = tuple(metadata)
        self._timeout = timeout
        self._clock = clock
        self._verified: OrderedDict[str, VerifiedToken] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._keys: dict[str, Ed25519PublicKey] = {}
        self._keys_lock = threading.Lock()
        self._fetched_at = float("-inf")  # monotonic
        self._revocations = _Revocations()
        #: Monotonic time of the last message of a caught-up feed (None: never yet).
        self._heard_at: float | None = None
        self._closed = threading.Event()
        self._call: Any = None
        self._threads = [
            threading.Thread(target=self._follow_feed, name="authsvc-verifier-feed", daemon=True),
            threading.Thread(target=self._refresh_keys, name="authsvc-verifier-keys", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    # The hot path

    def verify(self, access_token: str) -> VerifiedToken:
        """The claims of a valid, unexpired, unrevoked access token.

        Raises a VerificationError: MalformedToken, BadSignature, UnknownKey,
        WrongIssuer, TokenExpired, TokenRevoked or RevocationFeedStale.
        """
        verified = self._verified.get(access_token)
        if verified is None:
            verified = self._check_signature(access_token)
        else:
            try:  # noqa: SIM105 (contextlib.suppress costs more on this hot path)
                self._verified.move_to_end(access_token)
            except KeyError:  # evicted meanwhile by another thread
                pass
        if self._clock() >= verified.expires_at:
            raise TokenExpired()
        if not self.fresh:
            return self._when_stale(access_token, verified)
        if self._revocations.revokes(verified):
            raise TokenRevoked()
        return verified

    @property
    def fresh(self) -> bool:
        """True while the revocation feed is within ``max_staleness``."""
        heard_at = self._heard_at
        return heard_at is not None and time.monotonic() - heard_at <= self.max_staleness

    def wait_until_fresh(self, timeout: float) -> bool:
        """Waits (up to ``timeout`` seconds) for the feed to catch up; True if it did."""
        deadline = time.monotonic() + timeout
        while not self.fresh:
            if time.monotonic() >= deadline or self._closed.is_set():
                return False
            time.sleep(0.01)
        return True

    def close(self) -> None:
        """Stops the background threads (the feed's call is cancelled)."""
        self._closed.set()
        call = self._call
        if call is not None:
            call.cancel()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> Verifier:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # Signatures

    def _check_signature(self, token: str) -> VerifiedToken:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            raise MalformedToken() from None
        # Only EdDSA: "none", HS256 (signed with the public key as a secret) and every
        # other algorithm are refused before any key is looked at.
        if header.get("alg") != "EdDSA":
            raise BadSignature("not signed with EdDSA")
        if header.get("typ") != _TYPE:
            raise MalformedToken("not an access token (typ)")
        kid = header.get("kid")
        key = self._key(kid) if isinstance(kid, str) else None
        if key is None:
            raise UnknownKey()
        verified = _verified(self._decode(token, key))
        with self._cache_lock:
            self._verified[token] = verified
            while len(self._verified) > self._cache_size:
                self._verified.popitem(last=False)
        return verified

    def _decode(self, token: str, key: Ed25519PublicKey) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=["EdDSA"],
                issuer=self._issuer,
                # Expiry is checked on every call, by ``verify``; ``iat`` is not judged
                # against this host's clock (revocations compare it with authsvc's).
                options={"require": _REQUIRED, "verify_exp": False, "verify_iat": False},
            )
        except jwt.InvalidSignatureError:
            raise BadSignature() from None
        except jwt.InvalidIssuerError:
            raise WrongIssuer() from None
        except jwt.InvalidTokenError as exc:
            raise MalformedToken(type(exc).__name__) from None
        return claims

    def _key(self, kid: str) -> Ed25519PublicKey | None:
        key = self._keys.get(kid)
        if key is None:
            # A new key: fetch now (at most once per refetch interval; a fetch already
            # under way is waited for).
            self._fetch_keys()
            key = self._keys.get(kid)
        return key

    def _fetch_keys(self) -> None:
        with self._keys_lock:
            if time.monotonic() - self._fetched_at < self._refetch_interval:
                return  # another thread just did
            self._fetched_at = time.monotonic()
            try:
                response = self._stub.GetSigningKeys(
                    pb.GetSigningKeysRequest(), timeout=self._timeout, metadata=self._metadata
                )
            except grpc.RpcError as exc:
                log.warning("cannot fetch authsvc's signing keys: %s", exc.code())
                return
            self._keys = _parse_jwks(response.jwks_json)

    def _refresh_keys(self) -> None:
        while not self._closed.is_set():
            self._fetch_keys()
            wait = self._jwks_refresh if self._keys else self._refetch_interval
            self._closed.wait(wait)

    # Revocations

    def _follow_feed(self) -> None:
        cursor = ""
        failures = 0
        while not self._closed.is_set():
            try:
                cursor = self._watch(cursor)
                failures = 0
            except grpc.RpcError as exc:
                if self._closed.is_set():
                    return
                log.info("revocation feed interrupted: %s", exc.code())
                failures += 1
            self._closed.wait(_RECONNECT_DELAYS[min(failures, len(_RECONNECT_DELAYS) - 1)])

    def _watch(self, cursor: str) -> str:
        request = pb.WatchRevocationsRequest(after_cursor=cursor)
        self._call = self._stub.WatchRevocations(request, metadata=self._metadata)
        caught_up = False
        for message in self._call:
            if self._closed.is_set():
                break
            cursor = message.cursor or cursor
            kind = message.WhichOneof("subject")
            if kind is None:  # a heartbeat: everything up to the cursor has arrived
                caught_up = True
                self._revocations.forget_expired(self._clock())
            else:
                self._revocations.add(message, kind)
            if caught_up:
                self._heard_at = time.monotonic()
        return cursor

    def _when_stale(self, token: str, verified: VerifiedToken) -> VerifiedToken:
        if not self.fallback_to_validate_token:
            raise RevocationFeedStale()
        try:
            self._stub.ValidateToken(
                pb.ValidateTokenRequest(session_token=token),
                timeout=self._timeout,
                metadata=self._metadata,
            )
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                raise TokenRevoked("ValidateToken refused it") from None
            raise RevocationFeedStale(f"and ValidateToken failed: {exc.code()}") from None
        return verified


class _Revocations:
    """The revoked sessions, and each user's revocation time, until they expire."""

    def __init__(self) -> None:
        self.sessions: dict[str, float] = {}  # session id -> expire time
        self.users: dict[str, tuple[float, float]] = {}  # user id -> (not_before, expire)

    def revokes(self, token: VerifiedToken) -> bool:
        if token.session_id in self.sessions:
            return True  # every token of a revoked session
        user = self.users.get(token.user_id)
        return user is not None and token.issued_at < user[0]

    def add(self, message: pb.Revocation, kind: str) -> None:
        expires = message.expire_time.ToNanoseconds() / 1e9
        if kind == "session_id":
            self.sessions[message.session_id] = expires
            return
        not_before = message.not_before.ToNanoseconds() / 1e9
        known = self.users.get(message.user_id)
        if known is not None:
            not_before, expires = max(not_before, known[0]), max(expires, known[1])
        self.users[message.user_id] = (not_before, expires)

    def forget_expired(self, now: float) -> None:
        for session_id, expires in list(self.sessions.items()):
            if expires <= now:
                self.sessions.pop(session_id, None)
        for user_id, (_, expires) in list(self.users.items()):
            if expires <= now:
                self.users.pop(user_id, None)


def _parse_jwks(text: str) -> dict[str, Ed25519PublicKey]:
    keys: dict[str, Ed25519PublicKey] = {}
    try:
        found = jwt.PyJWKSet.from_json(text).keys
    except jwt.PyJWKSetError:
        return keys  # no usable key (none published yet)
    for jwk in found:
        if jwk.key_id and isinstance(jwk.key, Ed25519PublicKey):
            keys[jwk.key_id] = jwk.key
    return keys


def _verified(claims: dict[str, Any]) -> VerifiedToken:
    try:
        methods = tuple(str(m) for m in claims.get("amr", ()))
        return VerifiedToken(
            user_id=str(claims["sub"]),
            session_id=str(claims["sid"]),
            aal=int(claims.get("aal", 1)),
            methods=methods,
            issued_at=int(claims["iat"]),
            expires_at=int(claims["exp"]),
            email=str(claims.get("email", "")),
        )
    except (KeyError, TypeError, ValueError):
        raise MalformedToken("bad claims") from None
