"""Email verification, and sign-in when a verified email is required."""

from __future__ import annotations

import uuid
from datetime import timedelta

import grpc
import pytest
from google.protobuf import field_mask_pb2

from authsvc_client.v1 import auth_service_pb2 as pb
from tests.flows.lifecycle_helpers import (
    complete_reset,
    disable,
    events,
    race,
    start_reset,
    start_verification,
    token_rows,
    verify,
)
from tests.helpers import fails, sign_in, sign_up


def verify_fails(stub, token):
    return fails(stub.VerifyEmail, pb.VerifyEmailRequest(verification_token=token))


def change_email(stub, user_id, email):
    user = pb.User(id=user_id, email=email)
    mask = field_mask_pb2.FieldMask(paths=["email"])
    request = pb.UpdateUserRequest(user=user, update_mask=mask)
    return stub.UpdateUser(request, timeout=10).user


def test_verify_email_marks_the_user_verified(stub, clock, database):
    user = sign_up(stub)
    assert not user.email_verified and not user.HasField("email_verify_time")
    started = start_verification(stub, user.id)
    assert started.verification_token.startswith("asv_vt_")
    assert started.expire_time.ToDatetime().replace(tzinfo=clock.now.tzinfo) == (
        clock.now + timedelta(hours=24)
    )
    clock.advance(timedelta(minutes=5))
    done = verify(stub, started.verification_token).user
    assert done.email_verified
    assert done.email_verify_time.ToDatetime().replace(tzinfo=clock.now.tzinfo) == clock.now
    assert events(database, "EMAIL_VERIFIED") == 1
    assert token_rows(database) == []


def test_validate_token_carries_the_new_user_fields(stub):
    user = sign_up(stub)
    s = sign_in(stub)
    before = stub.ValidateToken(pb.ValidateTokenRequest(session_token=s.session_token)).user
    assert (before.email_verified, before.state) == (False, pb.USER_STATE_ACTIVE)
    verify(stub, start_verification(stub, user.id).verification_token)
    after = stub.ValidateToken(pb.ValidateTokenRequest(session_token=s.session_token)).user
    assert after.email_verified and after.HasField("email_verify_time")


def test_verification_token_works_once_even_concurrently(stub, database):
    user = sign_up(stub)
    token = start_verification(stub, user.id).verification_token
    results = race(lambda: verify(stub, token))
    assert len([r for r in results if not isinstance(r, str)]) == 1
    assert set(r for r in results if isinstance(r, str)) == {"TOKEN_INVALID"}
    assert events(database, "EMAIL_VERIFIED") == 1


def test_verification_token_expires(start_server, clock):
    _, stub = start_server(verification_ttl=timedelta(hours=2))
    user = sign_up(stub)
    token = start_verification(stub, user.id).verification_token
    clock.advance(timedelta(hours=2))
    got = verify_fails(stub, token)
    assert (got.code, got.reason) == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_EXPIRED")


def test_a_reset_token_is_no_verification_token(stub):
    sign_up(stub)
    token = start_reset(stub).reset_token
    assert verify_fails(stub, token).reason == "TOKEN_INVALID"
    complete_reset(stub, token)


def test_changing_the_email_clears_the_verification_and_its_tokens(stub, database):
    user = sign_up(stub)
    verify(stub, start_verification(stub, user.id).verification_token)
    pending = start_verification(stub, user.id).verification_token
    changed = change_email(stub, user.id, "ada@new.example.com")
    assert not changed.email_verified and not changed.HasField("email_verify_time")
    assert verify_fails(stub, pending).reason == "TOKEN_INVALID"
    got = stub.GetUser(pb.GetUserRequest(id=user.id), timeout=10).user
    assert not got.email_verified


def test_same_email_again_keeps_the_verification(stub):
    user = sign_up(stub)
    verify(stub, start_verification(stub, user.id).verification_token)
    assert change_email(stub, user.id, "ADA@example.com").email_verified


def test_disabled_user_gets_no_verification(stub):
    user = sign_up(stub)
    token = start_verification(stub, user.id).verification_token
    disable(stub, user.id)
    got = fails(stub.StartEmailVerification, pb.StartEmailVerificationRequest(user_id=user.id))
    assert (got.code, got.reason) == (grpc.StatusCode.PERMISSION_DENIED, "USER_DISABLED")
    assert verify_fails(stub, token).reason == "TOKEN_INVALID"


def test_unknown_user_gets_no_verification(stub):
    request = pb.StartEmailVerificationRequest(user_id=str(uuid.uuid4()))
    got = fails(stub.StartEmailVerification, request)
    assert (got.code, got.reason) == (grpc.StatusCode.NOT_FOUND, "USER_NOT_FOUND")


def test_wrong_verification_tokens_are_audited(stub, database):
    assert verify_fails(stub, "asv_vt_" + "C" * 43).reason == "TOKEN_INVALID"
    assert events(database, "EMAIL_VERIFICATION_FAILED") == 1


def test_required_verification_refuses_the_right_password_only(start_server, database):
    _, stub = start_server(require_verified_email=True)
    user = sign_up(stub)
    got = fails(
        stub.CreateSession,
        pb.CreateSessionRequest(email="ada@example.com", password="correct horse battery staple"),
    )
    assert (got.code, got.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "EMAIL_NOT_VERIFIED")
    wrong = fails(
        stub.CreateSession,
        pb.CreateSessionRequest(email="ada@example.com", password="not the password"),
    )
    assert (wrong.code, wrong.reason) == (grpc.StatusCode.UNAUTHENTICATED, "INVALID_CREDENTIALS")
    verify(stub, start_verification(stub, user.id).verification_token)
    assert sign_in(stub).user.email_verified


def test_verification_is_not_required_by_default(stub):
    sign_up(stub)
    assert not sign_in(stub).user.email_verified


@pytest.mark.parametrize(
    ("request_", "fields"),
    [
        (pb.StartEmailVerificationRequest(), ["user_id"]),
        (pb.StartEmailVerificationRequest(user_id="nope"), ["user_id"]),
        (pb.VerifyEmailRequest(), ["verification_token"]),
        (pb.VerifyEmailRequest(verification_token="t", user_agent="x" * 600), ["user_agent"]),
    ],
)
def test_email_verification_requests_name_each_malformed_field(stub, request_, fields):
    method = type(request_).__name__.removesuffix("Request")
    got = fails(getattr(stub, method), request_)
    assert (got.code, got.reason, got.fields) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_ARGUMENT",
        fields,
    )
