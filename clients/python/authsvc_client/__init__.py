"""The Python client of authsvc: ``AuthClient``, ``require_session`` for gRPC servers,
and ``Verifier`` to check access tokens locally.

with AuthClient("authsvc:50051") as auth:
    user = auth.validate_token(token).user

server = grpc.server(pool, interceptors=[require_session(auth)])
...  # in a handler: current_user()

verifier = Verifier(channel)          # keys and revocation feed in the background
verified = verifier.verify(access_token)  # user_id, session_id, aal, methods

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
from authsvc_client.verifier import (
    BadSignature,
    MalformedToken,
    RevocationFeedStale,
    TokenExpired,
    TokenRevoked,
    UnknownKey,
    VerificationError,
    VerifiedToken,
    Verifier,
    WrongIssuer,
)

__all__ = [
    "API_KEY_HEADER",
    "DEFAULT_TIMEOUT",
    "DOMAIN",
    "IDEMPOTENT_METHODS",
    "AuthClient",
    "AuthClientError",
    "BadSignature",
    "EventStream",
    "FieldViolation",
    "MalformedToken",
    "RetryPolicy",
    "RevocationFeedStale",
    "SessionInterceptor",
    "TokenExpired",
    "TokenRevoked",
    "UnknownKey",
    "VerificationError",
    "VerifiedToken",
    "Verifier",
    "WrongIssuer",
    "current_session",
    "current_user",
    "require_session",
    "service_config",
]
