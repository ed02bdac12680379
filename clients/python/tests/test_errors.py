"""AuthClientError: what a failed call exposes, and how it reads."""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from authsvc_client import AuthClientError, FieldViolation
from fake_auth import StartFake

CODE = grpc.StatusCode


def rich_status(code: grpc.StatusCode, message: str, *details: object) -> grpc.Status:
    """A ``google.rpc.Status`` with ``details`` packed, as authsvc sends them."""
    packed = []
    for detail in details:
        item = any_pb2.Any()
        item.Pack(detail)
        packed.append(item)
    status = status_pb2.Status(code=getattr(code_pb2, code.name), message=message, details=packed)
    converted: grpc.Status = rpc_status.to_status(status)
    return converted


def test_error_info_bad_request_and_retry_info_are_decoded(fake: StartFake):
    status = rich_status(
        CODE.INVALID_ARGUMENT,
        "invalid email, password",
        error_details_pb2.ErrorInfo(reason="INVALID_ARGUMENT", domain="authsvc"),
        error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field="email", description="no @"),
                error_details_pb2.BadRequest.FieldViolation(field="password", description="short"),
            ]
        ),
        error_details_pb2.RetryInfo(
            retry_delay=duration_pb2.Duration(seconds=2, nanos=500_000_000)
        ),
    )
    _, client = fake({"CreateUser": 1}, status=status)
    with pytest.raises(AuthClientError) as caught:
        client.create_user("ada", "pw", "Ada", "Lovelace")
    error = caught.value
    assert (error.code, error.reason, error.domain) == (
        CODE.INVALID_ARGUMENT,
        "INVALID_ARGUMENT",
        "authsvc",
    )
    assert error.violations == (
        FieldViolation("email", "no @"),
        FieldViolation("password", "short"),
    )
    assert error.retry_after == timedelta(seconds=2.5)
    assert error.message == "invalid email, password"


def test_a_status_without_details_has_no_reason_and_no_retry_after(fake: StartFake):
    _, client = fake({"GetUser": 1}, code=CODE.PERMISSION_DENIED)
    with pytest.raises(AuthClientError) as caught:
        client.get_user("u1")
    assert (caught.value.reason, caught.value.violations) == ("", ())
    assert caught.value.retry_after is None
    assert str(caught.value) == "PERMISSION_DENIED: attempt 1 fails"


@pytest.mark.parametrize(
    ("code", "reason", "message", "retry_after", "expected"),
    [
        # The reason that only repeats the code is said once.
        (
            CODE.INVALID_ARGUMENT,
            "INVALID_ARGUMENT",
            "invalid email: not an address",
            None,
            "INVALID_ARGUMENT: invalid email: not an address",
        ),
        (
            CODE.ALREADY_EXISTS,
            "EMAIL_TAKEN",
            "email is taken",
            None,
            "ALREADY_EXISTS EMAIL_TAKEN: email is taken",
        ),
        # A message that already names the reason does not get it twice.
        (
            CODE.UNAUTHENTICATED,
            "TOKEN_EXPIRED",
            "TOKEN_EXPIRED: log in",
            None,
            "UNAUTHENTICATED: TOKEN_EXPIRED: log in",
        ),
        (
            CODE.RESOURCE_EXHAUSTED,
            "TOO_MANY_ATTEMPTS",
            "too many attempts",
            timedelta(milliseconds=1500),
            "RESOURCE_EXHAUSTED TOO_MANY_ATTEMPTS: too many attempts (retry after 1.5s)",
        ),
        (CODE.DEADLINE_EXCEEDED, "", "", None, "DEADLINE_EXCEEDED"),
    ],
)
def test_str_names_code_reason_and_message_once(code, reason, message, retry_after, expected):
    error = AuthClientError(code, reason, message, retry_after=retry_after)
    assert str(error) == expected
    assert str(error).count(reason or "\0") <= 1
