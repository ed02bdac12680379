"""AuthClient: a typed Python client for authsvc, with a deadline on every call.

gRPC itself retries UNAVAILABLE, through the channel's service config, and only for the
idempotent RPCs: a retried sign-in could open two sessions and a retried refresh could
present an already exchanged update token, which revokes the session.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
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
IDEMPOTENT_METHODS = (
    "GetUser",
    "ListUsers",
    "ValidateToken",
    "ListSessions",
    "ListAuditEvents",
    "ListPasskeys",
    "ListEvents",
    "ListWebhooks",
    "ListWebhookDeliveries",
)
DEFAULT_TIMEOUT = 5.0
#: The call metadata that carries ``api_key``.
API_KEY_HEADER = "x-api-key"
#: What one ImportUsers call may carry: the server's user limit, and its 64 KiB message
#: limit less room for framing.
IMPORT_BATCH_USERS = 1000
IMPORT_BATCH_BYTES = 60 * 1024

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
        options: tuple[tuple[str, Any], ...] = (),
        api_key: str | None = None,
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
        ip_address: str = "",
        user_agent: str = "",
        timeout: float | None = None,
        **profile: str,
    ) -> pb.User:
        """Signs up a user (never retried); ``ip_address`` is the end user's (sign-ups are
        throttled per address); ``profile``: the profile's other fields by name
        (``locale="de-CH"``). Reasons: INVALID_ARGUMENT, EMAIL_TAKEN, TOO_MANY_ATTEMPTS."""
        request = pb.CreateUserRequest(
            email=email,
            password=password,
            first_name=first_name,
            last_name=last_name,
            ip_address=ip_address,
            user_agent=user_agent,
            **profile,
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
        **profile: str | None,
    ) -> pb.User:
        """Updates the profile fields given (not None), those above or any other by name
        (``locale="de-CH"``). Reasons: INVALID_ARGUMENT, USER_NOT_FOUND, EMAIL_TAKEN."""
        given = {"email": email, "first_name": first_name, "last_name": last_name, **profile}
        changes = {name: value for name, value in given.items() if value is not None}
        user = pb.User(id=user_id)
        for name, value in changes.items():
            setattr(user, name, value)
        mask = field_mask_pb2.FieldMask(paths=list(changes))
        request = pb.UpdateUserRequest(user=user, update_mask=mask)
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

    # Account lifecycle: none of these writes is idempotent, so none is retried.

    def start_password_reset(
        self,
        email: str,
        *,
        ip_address: str = "",
        user_agent: str = "",
        timeout: float | None = None,
    ) -> pb.StartPasswordResetResponse:
        """A reset token to deliver (empty for an unknown or disabled account: show the
        same page anyway). Reasons: INVALID_ARGUMENT, TOO_MANY_ATTEMPTS."""
        request = pb.StartPasswordResetRequest(
            email=email, ip_address=ip_address, user_agent=user_agent
        )
        return self._call(self._stub.StartPasswordReset, request, timeout)

    def complete_password_reset(
        self,
        reset_token: str,
        new_password: str,
        *,
        ip_address: str = "",
        user_agent: str = "",
        timeout: float | None = None,
    ) -> pb.User:
        """Sets the new password and ends every session of the user. Reasons:
        INVALID_ARGUMENT, TOKEN_INVALID, TOKEN_EXPIRED, TOO_MANY_ATTEMPTS, USER_DISABLED."""
        request = pb.CompletePasswordResetRequest(
            reset_token=reset_token,
            new_password=new_password,
            ip_address=ip_address,
            user_agent=user_agent,
        )
        return self._call(self._stub.CompletePasswordReset, request, timeout).user

    def start_email_verification(
        self, user_id: str, *, timeout: float | None = None
    ) -> pb.StartEmailVerificationResponse:
        """A verification token to deliver. Reasons: INVALID_ARGUMENT, USER_NOT_FOUND,
        USER_DISABLED."""
        request = pb.StartEmailVerificationRequest(user_id=user_id)
        return self._call(self._stub.StartEmailVerification, request, timeout)

    def verify_email(
        self,
        verification_token: str,
        *,
        ip_address: str = "",
        user_agent: str = "",
        timeout: float | None = None,
    ) -> pb.User:
        """Marks the email verified. Reasons: INVALID_ARGUMENT, TOKEN_INVALID,
        TOKEN_EXPIRED, TOO_MANY_ATTEMPTS, USER_DISABLED."""
        request = pb.VerifyEmailRequest(
            verification_token=verification_token, ip_address=ip_address, user_agent=user_agent
        )
        return self._call(self._stub.VerifyEmail, request, timeout).user

    def disable_user(self, user_id: str, *, timeout: float | None = None) -> pb.User:
        """Disables the user and ends every session. Reasons: INVALID_ARGUMENT, USER_NOT_FOUND."""
        return self._call(self._stub.DisableUser, pb.DisableUserRequest(id=user_id), timeout).user

    def enable_user(self, user_id: str, *, timeout: float | None = None) -> pb.User:
        """Enables a disabled user. Reasons: INVALID_ARGUMENT, USER_NOT_FOUND."""
        return self._call(self._stub.EnableUser, pb.EnableUserRequest(id=user_id), timeout).user

    def revoke_session(self, session_id: str, *, timeout: float | None = None) -> None:
        """Ends one session by id. Reasons: INVALID_ARGUMENT, SESSION_NOT_FOUND."""
        request = pb.RevokeSessionRequest(session_id=session_id)
        self._call(self._stub.RevokeSession, request, timeout)

    def revoke_user_sessions(self, user_id: str, *, timeout: float | None = None) -> int:
        """Ends every session of the user; returns how many. Reasons: INVALID_ARGUMENT,
        USER_NOT_FOUND."""
        request = pb.RevokeUserSessionsRequest(user_id=user_id)
        return self._call(self._stub.RevokeUserSessions, request, timeout).revoked_count

    def set_password(
        self, user_id: str, new_password: str, *, timeout: float | None = None
    ) -> None:
        """Sets the password (administrator) and ends every session. Reasons:
        INVALID_ARGUMENT, USER_NOT_FOUND."""
        request = pb.SetPasswordRequest(user_id=user_id, new_password=new_password)
        self._call(self._stub.SetPassword, request, timeout)

    def import_users(
        self, users: Sequence[pb.ImportedUser], *, timeout: float | None = None
    ) -> list[pb.ImportUserResult]:
        """Imports users with their old password hashes (admin only): one result per user,
        in order, each with the new ``user_id`` or an ``error`` (reason EMAIL_TAKEN for an
        email registered already, UNSUPPORTED_HASH_FORMAT, INVALID_ARGUMENT; field paths
        such as ``users[3].email`` index ``users``).

        Sends as many ImportUsers calls as the server's limits need; ``timeout`` applies to
        each. Safe to repeat after a failure: imported users come back as EMAIL_TAKEN.
        Raises AuthClientError when a call fails (the users of earlier calls stay imported).
        """
        results: list[pb.ImportUserResult] = []
        for batch in _import_batches(users):
            request = pb.ImportUsersRequest(users=batch)
            reply = self._call(self._stub.ImportUsers, request, timeout)
            offset = len(results)
            for result in reply.results:
                for violation in result.error.field_violations:
                    violation.field = _shift_index(violation.field, offset)
                results.append(result)
        return results

    # Multi-factor sign-in (issue 10). None of these is retried: each spends a code,
    # a challenge or a counter, or starts a ceremony.

    def start_totp_enrollment(
        self, session_token: str, *, timeout: float | None = None
    ) -> pb.StartTotpEnrollmentResponse:
        """A new TOTP secret and its otpauth URI. Reasons: REAUTHENTICATION_REQUIRED,
        MFA_NOT_CONFIGURED, TOTP_ALREADY_ENROLLED, TOKEN_INVALID, TOKEN_EXPIRED."""
        request = pb.StartTotpEnrollmentRequest(session_token=session_token)
        return self._call(self._stub.StartTotpEnrollment, request, timeout)

    def confirm_totp_enrollment(
        self, session_token: str, code: str, *, timeout: float | None = None
    ) -> list[str]:
        """Activates TOTP; returns the 10 recovery codes (shown once). Reasons: CODE_INVALID,
        TOTP_NOT_ENROLLED, TOO_MANY_ATTEMPTS, REAUTHENTICATION_REQUIRED."""
        request = pb.ConfirmTotpEnrollmentRequest(session_token=session_token, code=code)
        return list(self._call(self._stub.ConfirmTotpEnrollment, request, timeout).recovery_codes)

    def remove_totp(self, session_token: str, code: str, *, timeout: float | None = None) -> None:
        """Removes TOTP and the recovery codes, given a TOTP or recovery code. Reasons:
        CODE_INVALID, TOTP_NOT_ENROLLED, TOO_MANY_ATTEMPTS, REAUTHENTICATION_REQUIRED."""
        request = pb.RemoveTotpRequest(session_token=session_token, code=code)
        self._call(self._stub.RemoveTotp, request, timeout)

    def complete_sign_in(
        self,
        challenge_token: str,
        *,
        totp_code: str = "",
        recovery_code: str = "",
        passkey_assertion: pb.PasskeyAssertion | None = None,
        timeout: float | None = None,
    ) -> pb.CompleteSignInResponse:
        """Exchanges a CreateSession ``challenge`` and one second factor for tokens: a
        ``totp_code``, a ``recovery_code`` or a ``passkey_assertion`` (the challenge token
        of ``start_passkey_sign_in(email)`` and the browser's assertion JSON).

        Reasons: CHALLENGE_INVALID, CODE_INVALID, PASSKEY_INVALID, CLONED_AUTHENTICATOR,
        TOO_MANY_ATTEMPTS, INVALID_ARGUMENT.
        """
        request = pb.CompleteSignInRequest(challenge_token=challenge_token)
        if passkey_assertion is not None:
            request.passkey_assertion.CopyFrom(passkey_assertion)
        elif recovery_code:
            request.recovery_code = recovery_code
        else:
            request.totp_code = totp_code
        return self._call(self._stub.CompleteSignIn, request, timeout)

    def reauthenticate_session(
        self,
        session_token: str,
        *,
        password: str = "",
        totp_code: str = "",
        recovery_code: str = "",
        passkey_challenge_token: str = "",
        passkey_assertion_json: str = "",
        passkey_assertion: pb.PasskeyAssertion | None = None,
        timeout: float | None = None,
    ) -> pb.Session:
        """Records a fresh authentication (one proof) on the session; no new tokens.
        A user with a second factor must step up with one (TOTP, a recovery code, which
        this spends, or a passkey) before changing factors or the password. A passkey
        proof is ``passkey_assertion`` (as in ``complete_sign_in``) or, the same,
        ``passkey_challenge_token`` with ``passkey_assertion_json``.

        Reasons: INVALID_CREDENTIALS, CODE_INVALID, PASSKEY_INVALID, CHALLENGE_INVALID,
        CLONED_AUTHENTICATOR, TOO_MANY_ATTEMPTS, TOKEN_INVALID, TOKEN_EXPIRED.
        """
        request = pb.ReauthenticateSessionRequest(session_token=session_token)
        if passkey_assertion is not None:
            request.passkey_assertion.CopyFrom(passkey_assertion)
        elif totp_code:
            request.totp_code = totp_code
        elif recovery_code:
            request.recovery_code = recovery_code
        elif passkey_assertion_json:
            request.passkey_assertion.challenge_token = passkey_challenge_token
            request.passkey_assertion.assertion_json = passkey_assertion_json
        else:
            request.password = password
        return self._call(self._stub.ReauthenticateSession, request, timeout).session

    def start_passkey_registration(
        self, session_token: str, *, timeout: float | None = None
    ) -> pb.StartPasskeyRegistrationResponse:
        """A challenge token and the options for navigator.credentials.create(). Reasons:
        REAUTHENTICATION_REQUIRED, MFA_NOT_CONFIGURED, TOKEN_INVALID, TOKEN_EXPIRED."""
        request = pb.StartPasskeyRegistrationRequest(session_token=session_token)
        return self._call(self._stub.StartPasskeyRegistration, request, timeout)

    def finish_passkey_registration(
        self,
        challenge_token: str,
        credential_json: str,
        name: str = "",
        *,
        timeout: float | None = None,
    ) -> pb.Passkey:
        """Stores the new passkey. Reasons: CHALLENGE_INVALID, PASSKEY_INVALID."""
        request = pb.FinishPasskeyRegistrationRequest(
            challenge_token=challenge_token, credential_json=credential_json, name=name
        )
        return self._call(self._stub.FinishPasskeyRegistration, request, timeout).passkey

    def list_passkeys(
        self, session_token: str, *, timeout: float | None = None
    ) -> list[pb.Passkey]:
        """The user's passkeys, oldest first. Reasons: TOKEN_INVALID, TOKEN_EXPIRED."""
        request = pb.ListPasskeysRequest(session_token=session_token)
        return list(self._call(self._stub.ListPasskeys, request, timeout).passkeys)

    def remove_passkey(
        self, session_token: str, passkey_id: str, *, timeout: float | None = None
    ) -> None:
        """Removes one passkey. Reasons: PASSKEY_NOT_FOUND, REAUTHENTICATION_REQUIRED."""
        request = pb.RemovePasskeyRequest(session_token=session_token, passkey_id=passkey_id)
        self._call(self._stub.RemovePasskey, request, timeout)

    def start_passkey_sign_in(
        self, email: str = "", *, timeout: float | None = None
    ) -> pb.StartPasskeySignInResponse:
        """A challenge token and the options for navigator.credentials.get() (no email:
        discoverable passkeys). Reasons: MFA_NOT_CONFIGURED, INVALID_ARGUMENT."""
        request = pb.StartPasskeySignInRequest(email=email)
        return self._call(self._stub.StartPasskeySignIn, request, timeout)

    def finish_passkey_sign_in(
        self,
        challenge_token: str,
        assertion_json: str,
        *,
        user_agent: str = "",
        ip_address: str = "",
        timeout: float | None = None,
    ) -> pb.FinishPasskeySignInResponse:
        """Signs in with a passkey (AAL2). Reasons: CHALLENGE_INVALID, PASSKEY_INVALID,
        CLONED_AUTHENTICATOR."""
        request = pb.FinishPasskeySignInRequest(
            challenge_token=challenge_token,
            assertion_json=assertion_json,
            user_agent=user_agent,
            ip_address=ip_address,
        )
        return self._call(self._stub.FinishPasskeySignIn, request, timeout)

    # Account events

    def list_events(
        self,
        after_cursor: str = "",
        page_size: int = 0,
        types: Sequence[str] = (),
        *,
        timeout: float | None = None,
    ) -> pb.ListEventsResponse:
        """One page of account events after ``after_cursor``, in commit order (privileged).

        Pass ``next_cursor`` as ``after_cursor`` next time. Reasons: INVALID_ARGUMENT,
        CURSOR_EXPIRED (older than the server's retention).
        """
        request = pb.ListEventsRequest(
            after_cursor=after_cursor, page_size=page_size, types=list(types)
        )
        return self._call(self._stub.ListEvents, request, timeout)

    def watch_events(
        self,
        after_cursor: str = "",
        types: Sequence[str] = (),
        *,
        heartbeats: bool = False,
        idle_timeout: float = 30.0,
    ) -> EventStream:
        """Account events after ``after_cursor`` ("": the oldest retained, "now": only
        new ones), then new ones as they commit, forever (privileged)::

            events = auth.watch_events(after_cursor=load_cursor())
            for event in events:
                handle(event)                # deduplicate on event.id if handle is not
                save_cursor(event.cursor)    # idempotent and may run twice

        When the stream breaks (the server restarts, the network drops, nothing arrives
        for ``idle_timeout`` seconds although the server sends a heartbeat at least every
        10 s), it is opened again after the last cursor received, with a growing backoff,
        so every event arrives once, in order, with no gap. ``heartbeats=True`` yields the
        heartbeats too (type "heartbeat"; only ``cursor`` and ``time``). The iterator's
        ``cursor`` is the latest cursor received (heartbeats included); ``close()`` ends it.

        Raises AuthClientError when resuming cannot help: CURSOR_EXPIRED (the cursor is
        older than the server's retention), INVALID_ARGUMENT, PERMISSION_DENIED,
        UNAUTHENTICATED.
        """
        if after_cursor == "now":
            # A concrete position first, so a reconnection before the first message
            # does not skip what committed meanwhile.
            after_cursor = self.list_events("now", page_size=1, types=types).next_cursor
        return EventStream(self._open_watch, after_cursor, tuple(types), heartbeats, idle_timeout)

    def _open_watch(self, after_cursor: str, types: tuple[str, ...]) -> Any:
        request = pb.WatchEventsRequest(after_cursor=after_cursor, types=list(types))
        return self._stub.WatchEvents(request, metadata=self._metadata)

    # Webhooks (privileged). Creating and deleting are not retried.

    def create_webhook(
        self, url: str, types: Sequence[str] = (), *, timeout: float | None = None
    ) -> pb.CreateWebhookResponse:
        """Registers an endpoint for events of ``types`` (none: every type); the response
        carries its signing ``secret``, shown only this once. Reasons: INVALID_ARGUMENT
        (a bad or private URL, an unknown type), WEBHOOKS_NOT_CONFIGURED."""
        request = pb.CreateWebhookRequest(url=url, types=list(types))
        return self._call(self._stub.CreateWebhook, request, timeout)

    def list_webhooks(self, *, timeout: float | None = None) -> list[pb.Webhook]:
        """Every endpoint, oldest first (never a secret)."""
        request = pb.ListWebhooksRequest()
        return list(self._call(self._stub.ListWebhooks, request, timeout).webhooks)

    def delete_webhook(self, webhook_id: str, *, timeout: float | None = None) -> None:
        """Deletes an endpoint and drops its pending deliveries. Reason: WEBHOOK_NOT_FOUND."""
        request = pb.DeleteWebhookRequest(id=webhook_id)
        self._call(self._stub.DeleteWebhook, request, timeout)

    def list_webhook_deliveries(
        self,
        webhook_id: str,
        page_size: int = 0,
        page_token: str = "",
        *,
        timeout: float | None = None,
    ) -> pb.ListWebhookDeliveriesResponse:
        """One page of an endpoint's deliveries, newest event first: state, attempts, the
        last status and error. Reasons: WEBHOOK_NOT_FOUND, INVALID_ARGUMENT."""
        request = pb.ListWebhookDeliveriesRequest(
            webhook_id=webhook_id, page_size=page_size, page_token=page_token
        )
        return self._call(self._stub.ListWebhookDeliveries, request, timeout)

    # Local verification of access tokens (what Verifier fetches and follows)

    def get_signing_keys(self, *, timeout: float | None = None) -> str:
        """The public keys that sign access tokens, as a JWKS (JSON text; open to every
        caller). ``Verifier`` fetches and refetches it for you."""
        request = pb.GetSigningKeysRequest()
        return self._call(self._stub.GetSigningKeys, request, timeout).jwks_json

    def watch_revocations(self, after_cursor: str = "") -> Iterator[pb.Revocation]:
        """The raw revocation feed (open to every caller): a snapshot of the revocations
        that can still matter, then new ones as they commit, and heartbeats (a cursor and
        no subject). It does not resume by itself: ``Verifier`` holds it open, resumes it
        after a disconnect and fails closed when it goes silent; use that.

        Raises AuthClientError (INVALID_ARGUMENT for a bad cursor) while iterating.
        """
        request = pb.WatchRevocationsRequest(after_cursor=after_cursor)
        stream = self._stub.WatchRevocations(request, metadata=self._metadata)
        try:
            yield from stream
        except grpc.RpcError as exc:
            raise AuthClientError.from_rpc_error(exc) from None
        finally:
            stream.cancel()

    def _call(
        self, rpc: grpc.UnaryUnaryMultiCallable[_Req, _Resp], request: _Req, timeout: float | None
    ) -> _Resp:
        try:
            deadline = self.timeout if timeout is None else timeout
            return rpc(request, timeout=deadline, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise AuthClientError.from_rpc_error(exc) from None


#: The failures of a stream that a new stream from the last cursor can get past.
RESUMABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
    }
)
#: Waits before reopening a broken stream (seconds); the last one repeats.
RESUME_BACKOFF = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0)


class EventStream:
    """The iterator ``AuthClient.watch_events`` returns: events, resumed after the last
    cursor whenever the stream breaks. ``cursor`` is the latest cursor received."""

    def __init__(
        self,
        open_call: Any,
        after_cursor: str,
        types: tuple[str, ...],
        heartbeats: bool,
        idle_timeout: float,
    ) -> None:
        if idle_timeout <= 0:
            raise ValueError("idle_timeout must be greater than 0")
        self.cursor = after_cursor
        self.resumes = 0
        self._open = open_call
        self._types = types
        self._heartbeats = heartbeats
        self._idle = idle_timeout
        self._closed = threading.Event()
        self._call: Any = None
        self._events = self._follow()

    def __iter__(self) -> EventStream:
        return self

    def __next__(self) -> pb.Event:
        return next(self._events)

    def close(self) -> None:
        """Ends the stream (a ``for`` loop over it then stops)."""
        self._closed.set()
        if self._call is not None:
            self._call.cancel()

    def _follow(self) -> Iterator[pb.Event]:
        failures = 0
        while not self._closed.is_set():
            try:
                for event in self._one_stream():
                    failures = 0
                    yield event
            except grpc.RpcError as exc:
                if self._closed.is_set():
                    return
                if exc.code() not in RESUMABLE:
                    raise AuthClientError.from_rpc_error(exc) from None
            self._closed.wait(RESUME_BACKOFF[min(failures, len(RESUME_BACKOFF) - 1)])
            failures += 1
            self.resumes += 1

    def _one_stream(self) -> Iterator[pb.Event]:
        """One WatchEvents call, cancelled by a watchdog when it goes quiet."""
        self._call = call = self._open(self.cursor, self._types)
        watchdog = _Watchdog(call, self._idle)
        try:
            for event in call:
                watchdog.fed()
                self.cursor = event.cursor
                if event.type != "heartbeat" or self._heartbeats:
                    yield event
        finally:
            watchdog.stop()
            call.cancel()


class _Watchdog(threading.Thread):
    """Cancels ``call`` when ``fed()`` was not called for ``idle`` seconds."""

    def __init__(self, call: Any, idle: float) -> None:
        super().__init__(name="authsvc-event-watchdog", daemon=True)
        self._call = call
        self._idle = idle
        self._last = time.monotonic()
        self._stopped = threading.Event()
        self.start()

    def fed(self) -> None:
        self._last = time.monotonic()

    def stop(self) -> None:
        self._stopped.set()

    def run(self) -> None:
        while not self._stopped.wait(min(1.0, self._idle / 4)):
            if time.monotonic() - self._last > self._idle:
                self._call.cancel()  # the loop then sees CANCELLED and resumes
                return


def _import_batches(users: Sequence[pb.ImportedUser]) -> Iterator[list[pb.ImportedUser]]:
    """``users`` in runs that fit one ImportUsers call."""
    batch: list[pb.ImportedUser] = []
    size = 0
    for user in users:
        user_size = user.ByteSize() + 4  # the field's tag and length
        if batch and (len(batch) == IMPORT_BATCH_USERS or size + user_size > IMPORT_BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(user)
        size += user_size
    if batch:
        yield batch


def _shift_index(path: str, offset: int) -> str:
    """``users[3].email`` of a batch that starts at ``offset`` → its index in the whole list."""
    head, _, rest = path.partition("]")
    if not head.startswith("users[") or not head[6:].isdigit():
        return path
    return f"users[{int(head[6:]) + offset}]{rest}"


def _api_key_metadata(api_key: str | None) -> tuple[tuple[str, str], ...] | None:
    """The metadata carrying ``api_key``; raises ValueError if gRPC could not send it."""
    if api_key is None:
        return None
    sendable = api_key.isascii() and api_key.isprintable() and api_key.strip() == api_key
    if not (api_key and sendable):
        # The key itself stays out of the message: it is a secret.
        raise ValueError("api_key must be non-empty printable ASCII without surrounding spaces")
    return ((API_KEY_HEADER, api_key),)
