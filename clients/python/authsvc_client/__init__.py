"""The Python client of authsvc: ``AuthClient``, and ``require_session`` for gRPC servers.

with AuthClient("authsvc:50051") as auth:
    user = auth.validate_token(token).user

server = grpc.server(pool, interceptors=[require_session(auth)])
...  # in a handler: current_user()

The generated messages and stub are in ``authsvc_client.v1``.
"""

from authsvc_client.auth_client import (
    API_KEY_HEADER,
    DEFAULT_TIMEOUT,
    IDEMPOTENT_METHODS,
    AuthClient,
    EventStream,
    RetryPolicy,
    service_config,
)
from authsvc_client.errors import DOMAIN, AuthClientError, FieldViolation
from authsvc_client.session_interceptor import (
    SessionInterceptor,
    current_session,
    current_user,
    require_session,
)

__all__ = [
    "API_KEY_HEADER",
    "DEFAULT_TIMEOUT",
    "DOMAIN",
    "IDEMPOTENT_METHODS",
    "AuthClient",
    "AuthClientError",
    "EventStream",
    "FieldViolation",
    "RetryPolicy",
    "SessionInterceptor",
    "current_session",
    "current_user",
    "require_session",
    "service_config",
]
