"""A fake AuthService on port 0, so the client's own tests need no authsvc server.

The end-to-end tests against a real authsvc are in the repository's
``tests/clients/test_python_*.py``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest

from authsvc_client import AuthClient, RetryPolicy
from authsvc_client.v1 import auth_service_pb2 as pb

FAST_RETRY = RetryPolicy(max_attempts=4, initial_backoff=0.01, max_backoff=0.05)
SERVICE = "authsvc.v1.AuthService"
#: What a failing call of the fake ends with: a code and a message, or a whole status.
Failure = tuple[grpc.StatusCode, str] | grpc.Status


class FakeAuthService:
    """Counts attempts per method and fails the first ``failures[method]`` of them.

    A failure aborts with ``code`` or, when ``status`` is set, with that rich status.
    ``ListUsers`` hangs until ``release`` is set (for deadline tests). The metadata of
    every call is kept in ``metadata``.
    """

    def __init__(
        self,
        failures: dict[str, int],
        code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE,
        status: grpc.Status | None = None,
    ) -> None:
        self.failures = failures
        self.code = code
        self.status = status
        self.attempts: dict[str, int] = {}
        self.metadata: list[dict[str, str]] = []
        self.release = threading.Event()
        self._lock = threading.Lock()

    def handler(self, method: str, request_type: Any, response: Any) -> grpc.RpcMethodHandler:
        def behave(request: Any, context: grpc.ServicerContext) -> Any:
            with self._lock:
                attempt = self.attempts[method] = self.attempts.get(method, 0) + 1
                self.metadata.append(dict(context.invocation_metadata()))
            if method == "ListUsers":
                self.release.wait(10)
            if attempt <= self.failures.get(method, 0):
                if self.status is not None:
                    context.abort_with_status(self.status)
                context.abort(self.code, f"attempt {attempt} fails")
            return response

        return grpc.unary_unary_rpc_method_handler(
            behave,
            request_deserializer=request_type.FromString,
            response_serializer=type(response).SerializeToString,
        )

    def handlers(self) -> dict[str, grpc.RpcMethodHandler]:
        user = pb.User(id="u1", email="ada@example.com")
        answers = {
            "GetUser": (pb.GetUserRequest, pb.GetUserResponse(user=user)),
            "ValidateToken": (pb.ValidateTokenRequest, pb.ValidateTokenResponse(user=user)),
            "CreateUser": (pb.CreateUserRequest, pb.CreateUserResponse(user=user)),
            "CreateSession": (pb.CreateSessionRequest, pb.CreateSessionResponse(user=user)),
            "RefreshSession": (pb.RefreshSessionRequest, pb.RefreshSessionResponse()),
            "ListUsers": (pb.ListUsersRequest, pb.ListUsersResponse()),
        }
        return {name: self.handler(name, *answer) for name, answer in answers.items()}


StartFake = Callable[..., tuple[FakeAuthService, AuthClient]]


@pytest.fixture
def fake() -> Iterator[StartFake]:
    """``fake(failures, retry=..., api_key=..., code=..., status=...)`` -> (service, client)."""
    started: list[tuple[grpc.Server, FakeAuthService, AuthClient]] = []

    def start(
        failures: dict[str, int] | None = None,
        retry: RetryPolicy | None = FAST_RETRY,
        api_key: str | None = None,
        **kw: Any,
    ) -> tuple[FakeAuthService, AuthClient]:
        service = FakeAuthService(failures or {}, **kw)
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        server.add_generic_rpc_handlers(
            [grpc.method_handlers_generic_handler(SERVICE, service.handlers())]
        )
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        client = AuthClient(f"127.0.0.1:{port}", timeout=10, retry=retry, api_key=api_key)
        started.append((server, service, client))
        return service, client

    yield start
    for server, service, client in started:
        service.release.set()
        client.close()
        server.stop(0)
