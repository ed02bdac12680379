"""AuthClient: a typed Python client for authsvc, with a deadline on every call.

gRPC itself retries UNAVAILABLE, through the channel's service config, and only for the
idempotent RPCs: a retried sign-in could open two sessions and a retried refresh could
present an already exchanged update token, which revokes the session.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

import grpc
from google.protobuf import field_mask_pb2

from authsvc_client.errors import AuthClientError
from authsvc_client.v1 import auth_service_pb2 as pb
from authsvc_client.v1 import auth_service_pb2_grpc as pb_grpc

SERVICE = "authsvc.v1.AuthService"
#: The RPCs that change nothing (ValidateToken only reads), so a retry is harmless.
IDEMPOTENT_METHODS = ("GetUser", "ListUsers", "ValidateToken", "ListSessions", "ListAuditEvents")
DEFAULT_TIMEOUT = 5.0
#: The metadata key that carries ``api_key`` on every call.
API_KEY_HEADER = "x-api-key"

_Req = TypeVar("_Req")
_Resp = TypeVar("_Resp")


@dataclass(frozen=True)
class RetryPolicy:
    """gRPC's retry policy for the idempotent RPCs (gRPC caps ``max_attempts`` at 5)."""

    max_attempts: int = 4
    initial_backoff: float = 0.1
    max_backoff: float = 2.0
    backoff_multiplier: float = 2.0

    def __post_init__(self) -> None:
        if not 2 <= self.max_attempts <= 5:
            raise ValueError("max_attempts must be 2 to 5 (gRPC's limit)")
        if self.initial_backoff <= 0 or self.max_backoff <= 0 or self.backoff_multiplier <= 0:
            raise ValueError("backoffs and multiplier must be greater than 0")


def service_config(retry: RetryPolicy | None) -> str:
    """The channel's ``grpc.service_config`` JSON: ``retry`` for the idempotent RPCs only."""
    if retry is None:
        return json.dumps({"methodConfig": []})
    policy = {
        "maxAttempts": retry.max_attempts,
        "initialBackoff": f"{retry.initial_backoff:.3f}s",
        "maxBackoff": f"{retry.max_backoff:.3f}s",
        "backoffMultiplier": retry.backoff_multiplier,
        "retryableStatusCodes": ["UNAVAILABLE"],
    }
    names = [{"service": SERVICE, "method": method} for method in IDEMPOTENT_METHODS]
    return json.dumps({"methodConfig": [{"name": names, "retryPolicy": policy}]})


class AuthClient:
    """One method per AuthService RPC; each raises AuthClientError when the call fails.

    ``timeout`` (seconds) is the default deadline of every call, retries included; each
    method takes ``timeout=`` to override it. ``retry=None`` turns retries off.

    ``credentials`` secures the channel; None (the default) is plaintext, for local
    development or a mesh that adds TLS itself. For TLS, trust the CA that signed
    authsvc's certificate (``AUTHSVC_TLS_CERT``); for mutual TLS (``AUTHSVC_TLS_CLIENT_CA``
    set on the server) also present this service's own certificate and key::

        ca = Path("ca.pem").read_bytes()
        tls = grpc.ssl_channel_credentials(root_certificates=ca)
        mutual = grpc.ssl_channel_credentials(
            root_certificates=ca,
            private_key=Path("orders.key").read_bytes(),
            certificate_chain=Path("orders.pem").read_bytes(),
        )
        auth = AuthClient("authsvc.internal:50051", credentials=mutual)

    ``root_certificates=None`` trusts the system's CAs. When the name in the server's
    certificate differs from the target's host, pass
    ``options=(("grpc.ssl_target_name_override", "authsvc.internal"),)``.

    ``api_key``, when given, is sent as metadata ``x-api-key`` on every call (never
    logged by this client). ``options`` are extra gRPC channel arguments.

    Raises ValueError for a timeout that is not positive or an API key that cannot be
    sent as metadata (not printable ASCII, or with surrounding spaces).
    """

    def __init__(
        self,
        target: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = RetryPolicy(),
        credentials: grpc.ChannelCredentials | None = None,
        api_key: str | None = None,
        options: tuple[tuple[str, Any], ...] = (),
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be greater than 0")
        self._metadata = _api_key_metadata(api_key)
        all_options = (
            ("grpc.enable_retries", 1 if retry else 0),
            ("grpc.service_config", service_config(retry)),
            *options,
        )
        if credentials is None:
            self._channel = grpc.insecure_channel(target, options=all_options)
        else:
            self._channel = grpc.secure_channel(target, credentials, options=all_options)
        self._stub = pb_grpc.AuthServiceStub(self._channel)
        self.timeout = timeout

    def close(self) -> None:
        """Closes the channel; calls in flight are cancelled."""
        self._channel.close()

    def __enter__(self) -> AuthClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # Users

    def create_user(
        self,
        email: str,
        password: str,
        first_name: str,
        last_name: str,
        *,
        timeout: float | None = None,
    ) -> pb.User:
        """Signs up a user (never retried). Reasons: INVALID_ARGUMENT, EMAIL_TAKEN."""
        request = pb.CreateUserRequest(
            email=email, password=password, first_name=first_name, last_name=last_name
        )
        return self._call(self._stub.CreateUser, request, timeout).user

    def get_user(self, user_id: str, *, timeout: float | None = None) -> pb.User:
        """One user by id. Reasons: INVALID_ARGUMENT, USER_NOT_FOUND."""
        return self._call(self._stub.GetUser, pb.GetUserRequest(id=user_id), timeout).user

    def update_user(
        self,
        user_id: str,
        *,
        email: str | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
        timeout: float | None = None,
    ) -> pb.User:
        """Updates the fields given (not None). Reasons: INVALID_ARGUMENT, USER_NOT_FOUND,
        EMAIL_TAKEN."""
        values = {"email": email, "first_name": first_name, "last_name": last_name}
        paths = [name for name, value in values.items() if value is not None]
        # Fields outside the mask are ignored by the server, so "" stands for "unchanged".
        user = pb.User(
            id=user_id, email=email or "", first_name=first_name or "", last_name=last_name or ""
        )
        request = pb.UpdateUserRequest(user=user, update_mask=field_mask_pb2.FieldMask(paths=paths))
        return self._call(self._stub.UpdateUser, request, timeout).user

    def delete_user(self, user_id: str, *, timeout: float | None = None) -> None:
        """Deletes the user and its sessions. Reasons: INVALID_ARGUMENT, USER_NOT_FOUND."""
        self._call(self._stub.DeleteUser, pb.DeleteUserRequest(id=user_id), timeout)

    def list_users(
        self, page_size: int = 0, page_token: str = "", *, timeout: float | None = None
    ) -> pb.ListUsersResponse:
        """One page of users, oldest first; ``next_page_token`` is empty on the last."""
        request = pb.ListUsersRequest(page_size=page_size, page_token=page_token)
        return self._call(self._stub.ListUsers, request, timeout)

    def change_password(
        self,
        session_token: str,
        current_password: str,
        new_password: str,
        *,
        timeout: float | None = None,
    ) -> None:
        """Changes the password and ends the user's other sessions (never retried).

        Reasons: INVALID_ARGUMENT, TOKEN_INVALID, TOKEN_EXPIRED, INVALID_CREDENTIALS,
        TOO_MANY_ATTEMPTS (wait for the error's ``retry_after``).
        """
        request = pb.ChangePasswordRequest(
            session_token=session_token,
            current_password=current_password,
            new_password=new_password,
        )
        self._call(self._stub.ChangePassword, request, timeout)

    # Sessions

    def create_session(
        self,
        email: str,
        password: str,
        *,
        user_agent: str = "",
        ip_address: str = "",
        timeout: float | None = None,
    ) -> pb.CreateSessionResponse:
        """Signs in (never retried).

        Reasons: INVALID_ARGUMENT, INVALID_CREDENTIALS, TOO_MANY_ATTEMPTS: after repeated
        failures for the account or ``ip_address``; the error's ``retry_after`` says how
        long to wait (a sign-in before then fails the same way, even with the right
        password).
        """
        request = pb.CreateSessionRequest(
            email=email, password=password, user_agent=user_agent, ip_address=ip_address
        )
        return self._call(self._stub.CreateSession, request, timeout)

    def validate_token(
        self, session_token: str, *, timeout: float | None = None
    ) -> pb.ValidateTokenResponse:
        """The user and session of a live token. Reasons: TOKEN_INVALID, TOKEN_EXPIRED."""
        request = pb.ValidateTokenRequest(session_token=session_token)
        return self._call(self._stub.ValidateToken, request, timeout)

    def refresh_session(
        self, update_token: str, *, timeout: float | None = None
    ) -> pb.RefreshSessionResponse:
        """Exchanges the update token for new tokens (never retried). Reasons:
        TOKEN_INVALID, TOKEN_EXPIRED, REFRESH_TOKEN_REUSED."""
        request = pb.RefreshSessionRequest(update_token=update_token)
        return self._call(self._stub.RefreshSession, request, timeout)

    def delete_session(self, session_token: str, *, timeout: float | None = None) -> None:
        """Signs out. Reasons: INVALID_ARGUMENT, TOKEN_INVALID."""
        request = pb.DeleteSessionRequest(session_token=session_token)
        self._call(self._stub.DeleteSession, request, timeout)

    def list_sessions(
        self,
        user_id: str,
        page_size: int = 0,
        page_token: str = "",
        *,
        timeout: float | None = None,
    ) -> pb.ListSessionsResponse:
        """One page of the user's live sessions. Reasons: INVALID_ARGUMENT, USER_NOT_FOUND."""
        request = pb.ListSessionsRequest(
            user_id=user_id, page_size=page_size, page_token=page_token
        )
        return self._call(self._stub.ListSessions, request, timeout)

    def list_audit_events(
        self,
        user_id: str = "",
        page_size: int = 0,
        page_token: str = "",
        *,
        timeout: float | None = None,
    ) -> pb.ListAuditEventsResponse:
        """One page of audit events, newest first (admin only). Reason: INVALID_ARGUMENT."""
        request = pb.ListAuditEventsRequest(
            user_id=user_id, page_size=page_size, page_token=page_token
        )
        return self._call(self._stub.ListAuditEvents, request, timeout)

    def _call(
        self, rpc: grpc.UnaryUnaryMultiCallable[_Req, _Resp], request: _Req, timeout: float | None
    ) -> _Resp:
        try:
            deadline = self.timeout if timeout is None else timeout
            return rpc(request, timeout=deadline, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise AuthClientError.from_rpc_error(exc) from None


def _api_key_metadata(api_key: str | None) -> tuple[tuple[str, str], ...] | None:
    """The metadata carrying ``api_key``; raises ValueError if gRPC could not send it."""
    if api_key is None:
        return None
    sendable = api_key.isascii() and api_key.isprintable() and api_key.strip() == api_key
    if not (api_key and sendable):
        # The key itself stays out of the message: it is a secret.
        raise ValueError("api_key must be non-empty printable ASCII without surrounding spaces")
    return ((API_KEY_HEADER, api_key),)
