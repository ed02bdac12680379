"""``require_session``: a server interceptor for other Python gRPC services.

It reads ``authorization: Bearer <session_token>`` from the call's metadata, checks the
token with authsvc's ValidateToken, and runs the handler with the user available through
``current_user()``. Calls without a live token end UNAUTHENTICATED with a
``google.rpc.ErrorInfo`` reason; the token itself is never logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from authsvc_client._wrapping import guard_handler
from authsvc_client.auth_client import AuthClient
from authsvc_client.errors import DOMAIN, AuthClientError
from authsvc_client.v1 import auth_service_pb2 as pb

log = logging.getLogger(__name__)

AUTHORIZATION = "authorization"
#: Reasons of the calls this interceptor refuses itself (authsvc's pass through as they are).
MISSING = "AUTHORIZATION_MISSING"
MALFORMED = "AUTHORIZATION_MALFORMED"
AUTH_UNAVAILABLE = "AUTH_UNAVAILABLE"

_validated: ContextVar[pb.ValidateTokenResponse | None] = ContextVar(
    "authsvc_validated", default=None
)


def current_user() -> pb.User:
    """The signed-in user of the call being handled.

    Raises LookupError outside a call that passed ``require_session``.
    """
    return _current().user


def current_session() -> pb.Session:
    """The session of the call being handled; raises LookupError like ``current_user``."""
    return _current().session


def _current() -> pb.ValidateTokenResponse:
    validated = _validated.get()
    if validated is None:
        raise LookupError("no session: this call did not pass require_session")
    return validated


class _Refused(Exception):
    """A call without a live session: the status to end it with."""

    def __init__(self, code: grpc.StatusCode, reason: str, message: str, domain: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.domain = code, reason, message, domain


class SessionInterceptor(grpc.ServerInterceptor):
    """Requires a live authsvc session token on every call but the ``exempt`` methods."""

    def __init__(self, client: AuthClient, exempt: Collection[str] = ()) -> None:
        self._client = client
        self._exempt = frozenset(exempt)

    def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Any], details: Any
    ) -> Any:
        handler = continuation(details)
        if handler is None or details.method in self._exempt:
            return handler
        return guard_handler(handler, lambda context: self._session(details.method, context))

    @contextmanager
    def _session(self, method: str, context: grpc.ServicerContext) -> Iterator[None]:
        """Authenticates the call and exposes its session while the handler runs."""
        self._authenticate(method, context)
        try:
            yield
        finally:
            _validated.set(None)  # the worker thread serves other calls next

    def _authenticate(self, method: str, context: grpc.ServicerContext) -> None:
        """Validates the call's token and publishes the result, or aborts the call."""
        try:
            validated = self._validate(_bearer_token(context.invocation_metadata()))
        except _Refused as refused:
            log.info("refused %s: %s", method, refused.reason, extra={"reason": refused.reason})
            context.abort_with_status(_status(refused))
        _validated.set(validated)

    def _validate(self, token: str) -> pb.ValidateTokenResponse:
        try:
            return self._client.validate_token(token)
        except AuthClientError as exc:
            if exc.code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.INVALID_ARGUMENT):
                reason = exc.reason or "TOKEN_INVALID"
                raise _Refused(
                    grpc.StatusCode.UNAUTHENTICATED, reason, exc.message, exc.domain or DOMAIN
                ) from None
            # authsvc is down or overloaded: the caller should retry, not sign in again.
            log.warning("cannot validate the session: authsvc answered %s", exc.code.name)
            raise _Refused(
                grpc.StatusCode.UNAVAILABLE,
                AUTH_UNAVAILABLE,
                "the authentication service is unavailable; retry later",
                DOMAIN,
            ) from None


def require_session(client: AuthClient, *, exempt: Collection[str] = ()) -> SessionInterceptor:
    """The interceptor to install in ``grpc.server(interceptors=[...])``.

    ``exempt`` lists full method names (``/pkg.Service/Method``) that need no session,
    e.g. health checks. Handlers read the caller with ``current_user()``.
    """
    return SessionInterceptor(client, exempt)


def _bearer_token(metadata: Any) -> str:
    values = [value for key, value in metadata or () if key == AUTHORIZATION]
    if not values:
        raise _Refused(
            grpc.StatusCode.UNAUTHENTICATED, MISSING, "authorization metadata is missing", DOMAIN
        )
    scheme, _, token = str(values[0]).strip().partition(" ")
    if len(values) > 1 or scheme.lower() != "bearer" or not token.strip():
        raise _Refused(
            grpc.StatusCode.UNAUTHENTICATED,
            MALFORMED,
            "expected one 'authorization: Bearer <session_token>'",
            DOMAIN,
        )
    return token.strip()


def _status(refused: _Refused) -> grpc.Status:
    info = error_details_pb2.ErrorInfo(reason=refused.reason, domain=refused.domain)
    detail = any_pb2.Any()
    detail.Pack(info)
    status = status_pb2.Status(
        code=getattr(code_pb2, refused.code.name), message=refused.message, details=[detail]
    )
    converted: grpc.Status = rpc_status.to_status(status)
    return converted
