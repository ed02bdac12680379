"""Helpers for calling authsvc, reading its rich errors, and waiting for what it does."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from authsvc_client.v1 import auth_service_pb2 as pb

T = TypeVar("T")

PASSWORD = "correct horse battery staple"
#: AuthService's server-streaming RPCs (WatchEvents...): they answer with a stream.
STREAMING = frozenset(
    m.name for m in pb.DESCRIPTOR.services_by_name["AuthService"].methods if m.server_streaming
)


def rpc(stub: Any, name: str) -> Callable[..., Any]:
    """``stub``'s method ``name`` as a unary call: a streaming one returns its first
    message (then is cancelled), or raises the RpcError that ends the stream first."""
    method = getattr(stub, name)
    if name not in STREAMING:
        return method  # type: ignore[no-any-return]

    def first(request: Any, timeout: float | None = None, **kw: Any) -> Any:
        stream = method(request, timeout=timeout, **kw)
        try:
            return next(stream)
        finally:
            stream.cancel()

    return first


@dataclass
class Failure:
    """What a caller can read from a failed call."""

    code: grpc.StatusCode
    reason: str
    domain: str
    message: str
    fields: list[str]


def failure(error: grpc.RpcError) -> Failure:
    """Decodes ``google.rpc.Status`` details; fails the test when ErrorInfo is missing."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, f"no rich status on {error.code()}: {error.details()}"
    info, fields = None, []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields = [v.field for v in bad.field_violations]
    assert info is not None, "status without ErrorInfo"
    return Failure(error.code(), info.reason, info.domain, status.message, fields)


def fails(call: Callable[..., Any], request: Any, timeout: float | None = 10) -> Failure:
    """Makes a call that must fail and returns how it failed (``timeout``: its deadline)."""
    with pytest.raises(grpc.RpcError) as caught:
        call(request, timeout=timeout)
    return failure(caught.value)


def sign_up(stub: Any, email: str = "ada@example.com", password: str = PASSWORD) -> pb.User:
    reply = stub.CreateUser(
        pb.CreateUserRequest(
            email=email, password=password, first_name="Ada", last_name="Lovelace"
        ),
        timeout=10,
    )
    return reply.user


def sign_in(stub: Any, email: str = "ada@example.com", password: str = PASSWORD, **kw: str) -> Any:
    return stub.CreateSession(
        pb.CreateSessionRequest(email=email, password=password, **kw), timeout=10
    )


def wait_until(
    condition: Callable[[], T],
    timeout: float = 30.0,
    *,
    interval: float = 0.02,
    what: str | Callable[[], str] = "",
) -> T:
    """Calls ``condition`` every ``interval`` seconds until it returns something truthy,
    and returns that; fails the test (AssertionError) once ``timeout`` seconds passed.

    The one way tests wait for something to happen (a worker's write, a server's port, a
    mail): never a sleep of a guessed length. ``timeout`` is a hang guard, not a timing:
    a condition that holds ends the wait at once. ``what`` (or a function giving it, to
    show state read at the end) names what was awaited in the failure.
    """
    give_up = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > give_up:
            awaited = what() if callable(what) else what
            raise AssertionError(f"gave up after {timeout} s waiting for {awaited or condition}")
        time.sleep(interval)
