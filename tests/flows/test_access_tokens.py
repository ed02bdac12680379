"""Access tokens end to end: issued on sign-in and refresh, verified by the Python
Verifier, by ValidateToken and by a third-party JWT library with the JWKS alone;
forged ones refused; revocations reach verifiers; keys rotate without a refusal."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import grpc
import jwt
import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from sqlalchemy import select

from authsvc.rules.secrets_at_rest import SecretKeys
from authsvc.storage.models import SigningKey
from authsvc_client import (
    BadSignature,
    MalformedToken,
    RevocationFeedStale,
    TokenExpired,
    TokenRevoked,
    UnknownKey,
    VerificationError,
    Verifier,
    WrongIssuer,
)
from authsvc_client.v1 import auth_service_pb2 as pb
from tests.helpers import PASSWORD, fails, sign_in, sign_up, wait_until

SECRET = Fernet.generate_key().decode()
FAST = {"secret_key": SecretKeys.parse(SECRET), "revocation_heartbeat": timedelta(milliseconds=50)}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, payload, _ = token.split(".")
    return json.loads(base64.urlsafe_b64decode(header + "==")), json.loads(
        base64.urlsafe_b64decode(payload + "==")
    )


@pytest.fixture
def served(start_server) -> tuple[Any, Any]:
    return start_server(**FAST)


@pytest.fixture
def verifier_for(clock) -> Iterator[Callable[..., Verifier]]:
    made: list[tuple[Verifier, grpc.Channel]] = []

    def make(port: int, **options: Any) -> Verifier:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        verifier = Verifier(channel, clock=lambda: clock.now.timestamp(), **options)
        made.append((verifier, channel))
        return verifier

    yield make
    for verifier, channel in made:
        verifier.close()
        channel.close()


@pytest.fixture
def verifier(served, verifier_for) -> Verifier:
    made = verifier_for(served[0].port)
    assert made.wait_until_fresh(10)
    return made


def refused(verifier: Verifier, token: str) -> type[VerificationError] | None:
    try:
        verifier.verify(token)
    except VerificationError as exc:
        return type(exc)
    return None


def test_sign_in_returns_an_access_token_a_third_party_library_verifies_with_the_jwks(
    served,
) -> None:
    stub = served[1]
    user = sign_up(stub)
    signed_in = sign_in(stub)
    token = signed_in.access_token
    header, _ = parts(token)
    assert header == {"alg": "EdDSA", "typ": "at+jwt", "kid": header["kid"]}

    jwks = json.loads(stub.GetSigningKeys(pb.GetSigningKeysRequest()).jwks_json)
    (published,) = jwks["keys"]
    assert published.keys() == {"kty", "crv", "x", "kid", "alg", "use"}
    assert (published["kty"], published["crv"], published["use"]) == ("OKP", "Ed25519", "sig")
    # PyJWT's own JWK Set parsing, as any service would use it: no authsvc code.
    key = jwt.PyJWKSet.from_dict(jwks)[header["kid"]]
    claims = jwt.decode(token, key, algorithms=["EdDSA"], issuer="authsvc")
    assert claims["sub"] == user.id
    assert claims["sid"] == signed_in.session.id
    assert claims["aal"] == 1 and claims["amr"] == ["PASSWORD"]
    assert claims["exp"] - claims["iat"] == 300
    assert claims["exp"] == signed_in.access_token_expire_time.seconds
    assert "email" not in claims and claims["jti"]


def test_the_access_token_never_outlives_its_session_and_may_carry_the_email(
    start_server,
) -> None:
    stub = start_server(**FAST, session_ttl=timedelta(minutes=2), access_token_email=True)[1]
    sign_up(stub)
    signed_in = sign_in(stub)
    _, claims = parts(signed_in.access_token)
    assert claims["exp"] == signed_in.session.expire_time.seconds
    assert claims["email"] == "ada@example.com"


def test_refresh_issues_a_new_access_token(served, verifier, clock) -> None:
    stub = served[1]
    sign_up(stub)
    first = sign_in(stub)
    clock.advance(timedelta(seconds=5))
    refreshed = stub.RefreshSession(pb.RefreshSessionRequest(update_token=first.update_token))
    assert refreshed.access_token and refreshed.access_token != first.access_token
    assert verifier.verify(refreshed.access_token).session_id == first.session.id
    # A refresh is no revocation: the older access token lives until it expires.
    assert verifier.verify(first.access_token).user_id == first.user.id


def test_without_a_secret_key_no_access_token_is_issued_and_the_jwks_is_empty(stub) -> None:
    sign_up(stub)
    signed_in = sign_in(stub)
    assert signed_in.access_token == "" and not signed_in.HasField("access_token_expire_time")
    jwks = json.loads(stub.GetSigningKeys(pb.GetSigningKeysRequest()).jwks_json)
    assert jwks == {"keys": []}


def test_the_verifier_answers_with_the_user_session_aal_and_methods(served, verifier) -> None:
    stub = served[1]
    user = sign_up(stub)
    signed_in = sign_in(stub)
    verified = verifier.verify(signed_in.access_token)
    assert (verified.user_id, verified.session_id) == (user.id, signed_in.session.id)
    assert verified.aal == 1 and verified.methods == ("PASSWORD",)
    assert verified.expire_time == signed_in.access_token_expire_time.ToDatetime().replace(
        tzinfo=verified.expire_time.tzinfo
    )
    assert verifier.verify(signed_in.access_token) is verified  # checked once, then cached


def test_validate_token_accepts_an_access_token_until_its_session_is_revoked(served) -> None:
    stub = served[1]
    sign_up(stub)
    signed_in = sign_in(stub)
    valid = stub.ValidateToken(pb.ValidateTokenRequest(session_token=signed_in.access_token))
    assert valid.session.id == signed_in.session.id
    stub.RevokeSession(pb.RevokeSessionRequest(session_id=signed_in.session.id))
    failed = fails(
        stub.ValidateToken, pb.ValidateTokenRequest(session_token=signed_in.access_token)
    )
    assert (failed.code, failed.reason) == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_INVALID")


def _forgeries(token: str, served: Any) -> dict[str, tuple[str, type[VerificationError], str]]:
    """Forged variants of ``token``: (token, the verifier's refusal, ValidateToken's)."""
    header, claims = parts(token)
    head, body, signature = token.split(".")
    stranger = Ed25519PrivateKey.generate()

    def signed(new_header: dict[str, Any], new_claims: dict[str, Any], key: Any) -> str:
        return jwt.encode(new_claims, key, algorithm="EdDSA", headers=new_header)

    public_pem = _public_pem(served)
    tampered_claims = b64(json.dumps({**claims, "sub": str(uuid.uuid4())}).encode())
    none_header = b64(json.dumps({"alg": "none", "typ": "at+jwt", "kid": header["kid"]}).encode())
    hs_header = {"typ": "at+jwt", "kid": header["kid"]}
    return {
        "tampered": (f"{head}.{tampered_claims}.{signature}", BadSignature, "TOKEN_INVALID"),
        "expired": (
            signed(header, {**claims, "exp": claims["iat"] - 1}, _signing_key(served, header)),
            TokenExpired,
            "TOKEN_EXPIRED",
        ),
        "wrong issuer": (
            signed(header, {**claims, "iss": "evil"}, _signing_key(served, header)),
            WrongIssuer,
            "TOKEN_INVALID",
        ),
        "unknown kid": (
            signed({**header, "kid": "nope"}, claims, stranger),
            UnknownKey,
            "TOKEN_INVALID",
        ),
        "alg none": (f"{none_header}.{body}.", BadSignature, "TOKEN_INVALID"),
        "HS256 with the public key": (
            _hs256(hs_header, claims, public_pem),
            BadSignature,
            "TOKEN_INVALID",
        ),
        "garbage": ("a.b.c", MalformedToken, "TOKEN_INVALID"),
    }


def _signing_key(served: Any, header: dict[str, Any]) -> Ed25519PrivateKey:
    """The server's own private key (a forger who has it but not the issuer/expiry)."""
    with served[0].flows.access_tokens._changes.read() as db:  # the test reads the row
        row = db.scalar(select(SigningKey).where(SigningKey.kid == header["kid"]))
    raw = base64.b64decode(SecretKeys.parse(SECRET).unseal(row.private_key))
    return Ed25519PrivateKey.from_private_bytes(raw)


def _public_pem(served: Any) -> bytes:
    """The published public key as PEM: what an algorithm-confusion attack signs with."""
    with served[0].flows.access_tokens._changes.read() as db:
        row = db.scalars(select(SigningKey)).first()
    public = Ed25519PublicKey.from_public_bytes(row.public_key)
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _hs256(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    # By hand: PyJWT refuses to use something that looks like a public key as an HMAC secret.
    head = b64(json.dumps({**header, "alg": "HS256"}).encode())
    body = b64(json.dumps(claims).encode())
    mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(mac)}"


@pytest.mark.parametrize(
    "kind",
    [
        "tampered",
        "expired",
        "wrong issuer",
        "unknown kid",
        "alg none",
        "HS256 with the public key",
        "garbage",
    ],
)
def test_forged_access_tokens_are_refused_by_the_verifier_and_validate_token(
    served, verifier, kind
) -> None:
    stub = served[1]
    sign_up(stub)
    token = sign_in(stub).access_token
    forged, verifier_refusal, reason = _forgeries(token, served)[kind]
    assert refused(verifier, forged) is verifier_refusal
    failed = fails(stub.ValidateToken, pb.ValidateTokenRequest(session_token=forged))
    assert (failed.code, failed.reason) == (grpc.StatusCode.UNAUTHENTICATED, reason)
    assert verifier.verify(token).user_id  # the genuine one still passes


def test_a_revoked_session_is_refused_by_a_verifier(served, verifier) -> None:
    stub = served[1]
    sign_up(stub)
    kept, revoked = sign_in(stub), sign_in(stub)
    verifier.verify(revoked.access_token)
    stub.RevokeSession(pb.RevokeSessionRequest(session_id=revoked.session.id))
    wait_until(lambda: refused(verifier, revoked.access_token) is TokenRevoked)
    assert verifier.verify(kept.access_token).session_id == kept.session.id


@pytest.mark.parametrize("how", ["disable", "delete", "sign out everywhere", "new password"])
def test_a_user_revocation_refuses_every_earlier_token_of_the_user(
    served, verifier, clock, how
) -> None:
    stub = served[1]
    user = sign_up(stub)
    signed_in = sign_in(stub)
    verifier.verify(signed_in.access_token)
    clock.advance(timedelta(seconds=1))  # tokens issued before the revocation, not with it
    if how == "disable":
        stub.DisableUser(pb.DisableUserRequest(id=user.id))
    elif how == "delete":
        stub.DeleteUser(pb.DeleteUserRequest(id=user.id))
    elif how == "sign out everywhere":
        stub.RevokeUserSessions(pb.RevokeUserSessionsRequest(user_id=user.id))
    else:
        stub.ChangePassword(
            pb.ChangePasswordRequest(
                session_token=signed_in.session_token,
                current_password=PASSWORD,
                new_password=PASSWORD + " again",
            )
        )
    wait_until(lambda: refused(verifier, signed_in.access_token) is TokenRevoked)
    if how == "new password":
        # The session lives on; a token issued after the change passes, even within
        # the same second (``iat`` and a user's ``not_before`` are whole seconds).
        again = stub.RefreshSession(pb.RefreshSessionRequest(update_token=signed_in.update_token))
        assert verifier.verify(again.access_token).session_id == signed_in.session.id
        valid = stub.ValidateToken(pb.ValidateTokenRequest(session_token=again.access_token))
        assert valid.session.id == signed_in.session.id
        failed = fails(
            stub.ValidateToken, pb.ValidateTokenRequest(session_token=signed_in.access_token)
        )
        assert failed.reason == "TOKEN_INVALID"


def test_a_verifier_cut_off_from_the_feed_fails_closed(served, verifier_for) -> None:
    server, stub = served
    sign_up(stub)
    token = sign_in(stub).access_token
    verifier = verifier_for(server.port, max_staleness=0.5)
    assert verifier.wait_until_fresh(10)
    assert verifier.verify(token).user_id
    server.stop(0)
    wait_until(lambda: refused(verifier, token) is RevocationFeedStale)


def test_a_stale_verifier_may_ask_validate_token_instead(served, verifier_for) -> None:
    server, stub = served
    sign_up(stub)
    signed_in = sign_in(stub)
    # Never fresh enough: every call goes to ValidateToken.
    verifier = verifier_for(server.port, max_staleness=-1.0, fallback_to_validate_token=True)
    assert verifier.verify(signed_in.access_token).session_id == signed_in.session.id
    stub.RevokeSession(pb.RevokeSessionRequest(session_id=signed_in.session.id))
    assert refused(verifier, signed_in.access_token) is TokenRevoked  # at once


def test_keys_rotate_without_a_refusal(served, verifier_for, clock) -> None:
    server, stub = served
    tokens = server.flows.access_tokens
    # The fake clock skips the lead at once; real verifiers see the key long before.
    verifier = verifier_for(server.port, refetch_interval=0.0)
    assert verifier.wait_until_fresh(10)
    sign_up(stub)
    before = sign_in(stub).access_token
    old_kid = parts(before)[0]["kid"]
    new = tokens.rotate()
    # Published at once, signing only after one TTL plus the JWKS refresh interval.
    jwks = json.loads(stub.GetSigningKeys(pb.GetSigningKeysRequest()).jwks_json)
    assert {k["kid"] for k in jwks["keys"]} == {old_kid, new.kid}
    assert verifier.verify(before).user_id
    clock.advance(tokens.policy.lead - timedelta(seconds=1))
    last_of_old = sign_in(stub).access_token
    assert parts(last_of_old)[0]["kid"] == old_kid
    clock.advance(timedelta(seconds=1))
    after = sign_in(stub).access_token
    assert parts(after)[0]["kid"] == new.kid
    assert verifier.verify(last_of_old).user_id == verifier.verify(after).user_id
    # The old key stays published while its last tokens can live, then goes.
    clock.advance(tokens.policy.ttl)
    jwks = json.loads(stub.GetSigningKeys(pb.GetSigningKeysRequest()).jwks_json)
    assert {k["kid"] for k in jwks["keys"]} == {old_kid, new.kid}
    clock.advance(timedelta(minutes=1))
    jwks = json.loads(stub.GetSigningKeys(pb.GetSigningKeysRequest()).jwks_json)
    assert {k["kid"] for k in jwks["keys"]} == {new.kid}


def test_signing_key_rows_hold_no_plaintext_private_key(served, database) -> None:
    with database.transaction(writes=False) as db:
        (row,) = db.scalars(select(SigningKey))
    raw = base64.b64decode(SecretKeys.parse(SECRET).unseal(row.private_key))
    private = Ed25519PrivateKey.from_private_bytes(raw)
    public = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    assert public == row.public_key
    stored = row.private_key.encode()
    for shown in (raw, base64.b64encode(raw), b64(raw).encode(), raw.hex().encode()):
        assert shown not in stored
    Fernet(SECRET.encode()).decrypt(stored)  # sealed with AUTHSVC_SECRET_KEY


def test_the_purge_timer_rotates_keys_by_period_and_deletes_retired_ones(
    start_server, clock, database
) -> None:
    server, stub = start_server(**FAST, signing_key_rotation=timedelta(hours=1))
    housekeeping, tokens = server.flows.housekeeping, server.flows.access_tokens
    sign_up(stub)
    (first,) = _kids(database)
    clock.advance(timedelta(minutes=49))
    housekeeping.purge()
    assert _kids(database) == [first]  # not due yet
    clock.advance(timedelta(minutes=2))  # the next key must be published one lead ahead
    housekeeping.purge()
    kids = _kids(database)
    assert len(kids) == 2 and kids[0] == first
    clock.advance(tokens.policy.lead)
    assert parts(sign_in(stub).access_token)[0]["kid"] == kids[1]
    clock.advance(tokens.policy.ttl + timedelta(minutes=1))
    housekeeping.purge()
    assert _kids(database) == [kids[1]]


def _kids(database) -> list[str]:
    with database.transaction(writes=False) as db:
        rows = db.scalars(select(SigningKey).order_by(SigningKey.signs_from))
        return [k.kid for k in rows]


def test_refetching_the_keys_for_an_unknown_kid_is_rate_limited(
    served, verifier_for, clock
) -> None:
    server, stub = served
    sign_up(stub)
    slow = verifier_for(server.port, refetch_interval=3600.0, jwks_refresh=3600.0)
    assert slow.wait_until_fresh(10)
    assert slow.verify(sign_in(stub).access_token).user_id  # its kid is known
    tokens = server.flows.access_tokens
    tokens.rotate()
    clock.advance(tokens.policy.lead)  # the fake clock skips the lead at once
    token = sign_in(stub).access_token
    assert refused(slow, token) is UnknownKey  # fetched just now: not again for an hour
    eager = verifier_for(server.port, refetch_interval=0.0)
    assert eager.wait_until_fresh(10)
    assert eager.verify(token).user_id
