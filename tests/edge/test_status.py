"""Errors as callers see them: always a rich status, never a leaked internal detail."""

from __future__ import annotations

import logging
import uuid

import grpc
import pytest

from authsvc.errors import AuthError, DeadlineExceeded, Reason
from authsvc.flows.accounts import Accounts
from authsvc.runtime.assembly import create_server
from authsvc.runtime.settings import Settings
from authsvc.storage.errors import ConnectionWaitExpired
from authsvc_client.v1 import auth_service_pb2 as pb
from authsvc_client.v1 import auth_service_pb2_grpc as pb_grpc
from tests.conftest import CHEAP_HASH
from tests.helpers import PASSWORD, fails


def test_unexpected_exception_is_internal_with_generic_message(stub, monkeypatch, caplog):
    def explode(self, user_id):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(Accounts, "get_user", explode)
    with caplog.at_level(logging.ERROR):
        failure = fails(stub.GetUser, pb.GetUserRequest(id=str(uuid.uuid4())))
    assert (failure.code, failure.reason, failure.domain) == (
        grpc.StatusCode.INTERNAL,
        "INTERNAL",
        "authsvc",
    )
    assert "secret" not in failure.message
    assert any("secret internal detail" in (r.exc_text or "") for r in caplog.records)


def test_a_connection_wait_past_the_deadline_is_deadline_exceeded(stub, monkeypatch):
    # Storage raises its own error; the edge answers as for any wait past the deadline.
    def wait_too_long(self, user_id):
        raise ConnectionWaitExpired()

    monkeypatch.setattr(Accounts, "get_user", wait_too_long)
    failure = fails(stub.GetUser, pb.GetUserRequest(id=str(uuid.uuid4())))
    assert (failure.code, failure.reason, failure.message) == (
        grpc.StatusCode.DEADLINE_EXCEEDED,
        "DEADLINE_EXCEEDED",
        DeadlineExceeded.message,
    )


@pytest.fixture
def unreachable_stub():
    settings = Settings(
        address="127.0.0.1:0",
        database_url="postgresql+psycopg2://postgres@127.0.0.1:1/authsvc",
        password_hash=CHEAP_HASH,
    )
    server, port = create_server(settings)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield pb_grpc.AuthServiceStub(channel), channel
    server.stop(0)


@pytest.mark.parametrize(
    ("method", "request_"),
    [
        (
            "CreateUser",
            pb.CreateUserRequest(email="a@b.co", password=PASSWORD, first_name="A", last_name="B"),
        ),
        ("CreateSession", pb.CreateSessionRequest(email="a@b.co", password=PASSWORD)),
        ("ValidateToken", pb.ValidateTokenRequest(session_token="asv_st_" + "A" * 43)),
        ("ListUsers", pb.ListUsersRequest()),
    ],
)
def test_unreachable_database_is_unavailable(unreachable_stub, method, request_):
    stub, _ = unreachable_stub
    failure = fails(getattr(stub, method), request_)
    assert (failure.code, failure.reason) == (grpc.StatusCode.UNAVAILABLE, "DATABASE_UNAVAILABLE")


def test_health_is_not_serving_without_database(unreachable_stub):
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    _, channel = unreachable_stub
    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""))
    assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING


def test_every_error_carries_error_info_in_domain_authsvc(stub):
    cases = [
        (stub.GetUser, pb.GetUserRequest(id="bad")),
        (stub.GetUser, pb.GetUserRequest(id=str(uuid.uuid4()))),
        (stub.ValidateToken, pb.ValidateTokenRequest(session_token="x")),
        (stub.CreateSession, pb.CreateSessionRequest(email="a@b.co", password="whatever1")),
        (stub.DeleteSession, pb.DeleteSessionRequest(session_token="")),
    ]
    for call, request in cases:
        failure = fails(call, request)
        assert failure.domain == "authsvc"
        assert failure.reason.isupper()


def test_the_proto_lists_exactly_the_reasons_the_service_returns():
    in_proto = {name.removeprefix("ERROR_REASON_") for name in pb.ErrorReason.keys()}  # noqa: SIM118
    assert in_proto - {"UNSPECIFIED"} == {reason.value for reason in Reason}


def test_every_error_class_carries_a_reason_of_the_proto():
    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    names = set(pb.ErrorReason.keys())
    for error in subclasses(AuthError):
        assert f"ERROR_REASON_{error.reason}" in names, error
