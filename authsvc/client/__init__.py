"""Calling authsvc from Python: ``AuthClient``, and ``require_session`` for gRPC servers.

with AuthClient("authsvc:50051") as auth:
    user = auth.validate_token(token).user

server = grpc.server(pool, interceptors=[require_session(auth)])
...  # in a handler: current_user()
"""

from authsvc.client.auth_client import (
    DEFAULT_TIMEOUT,
    IDEMPOTENT_METHODS,
    AuthClient,
    AuthClientError,
    RetryPolicy,
    service_config,
)
from authsvc.client.session_interceptor import (
    SessionInterceptor,
    current_session,
    current_user,
    require_session,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "IDEMPOTENT_METHODS",
    "AuthClient",
    "AuthClientError",
    "RetryPolicy",
    "SessionInterceptor",
    "current_session",
    "current_user",
    "require_session",
    "service_config",
]
