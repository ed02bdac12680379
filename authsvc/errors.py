"""The errors a caller of authsvc can see: one small hierarchy.

Each class carries its status code (``google.rpc.Code``), its reason (``Reason``, the
proto's ``authsvc.v1.ErrorReason`` without its prefix) and builds its own status
details. Every layer may raise them; only the edge (``authsvc.edge.status``) turns them
into gRPC statuses. An error never decides whether a transaction commits: a flow that
must keep a change (a revocation, an audit row) commits it first, then raises.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import timedelta

from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2

from authsvc.setting_names import AUTHSVC_EVENT_RETENTION, AUTHSVC_SECRET_KEY

DOMAIN = "authsvc"


class Reason(enum.StrEnum):
    """Every ``ErrorInfo.reason`` authsvc returns (``authsvc.v1.ErrorReason`` in the proto)."""

    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    EMAIL_TAKEN = "EMAIL_TAKEN"
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    TOKEN_INVALID = "TOKEN_INVALID"  # noqa: S105 (a reason, not a secret)
    TOKEN_EXPIRED = "TOKEN_EXPIRED"  # noqa: S105
    REFRESH_TOKEN_REUSED = "REFRESH_TOKEN_REUSED"  # noqa: S105
    TOO_MANY_ATTEMPTS = "TOO_MANY_ATTEMPTS"
    USER_NOT_FOUND = "USER_NOT_FOUND"
    OVERLOADED = "OVERLOADED"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    CALLER_NOT_ALLOWED = "CALLER_NOT_ALLOWED"
    DATABASE_UNAVAILABLE = "DATABASE_UNAVAILABLE"
    INTERNAL = "INTERNAL"
    EMAIL_NOT_VERIFIED = "EMAIL_NOT_VERIFIED"
    USER_DISABLED = "USER_DISABLED"
    SESSION_NOT_FOUND = "SESSION_NOT_FOUND"
    API_KEY_INVALID = "API_KEY_INVALID"
    # Importing users (25-29).
    UNSUPPORTED_HASH_FORMAT = "UNSUPPORTED_HASH_FORMAT"
    # Multi-factor sign-in (issue 10)
    REAUTHENTICATION_REQUIRED = "REAUTHENTICATION_REQUIRED"
    MFA_NOT_CONFIGURED = "MFA_NOT_CONFIGURED"
    CHALLENGE_INVALID = "CHALLENGE_INVALID"
    CODE_INVALID = "CODE_INVALID"
    TOTP_ALREADY_ENROLLED = "TOTP_ALREADY_ENROLLED"
    TOTP_NOT_ENROLLED = "TOTP_NOT_ENROLLED"
    PASSKEY_INVALID = "PASSKEY_INVALID"
    CLONED_AUTHENTICATOR = "CLONED_AUTHENTICATOR"
    PASSKEY_NOT_FOUND = "PASSKEY_NOT_FOUND"
    # Account events (issue 19)
    CURSOR_EXPIRED = "CURSOR_EXPIRED"
    # Webhooks (issue 19)
    WEBHOOK_NOT_FOUND = "WEBHOOK_NOT_FOUND"
    WEBHOOKS_NOT_CONFIGURED = "WEBHOOKS_NOT_CONFIGURED"


@dataclass(frozen=True)
class FieldViolation:
    """One bad request field: its proto path (``user.email``) and what is wrong with it."""

    field: str
    description: str


class AuthError(Exception):
    """Base of every error a caller may see."""

    code: int = code_pb2.INTERNAL
    reason: Reason = Reason.INTERNAL
    message: str = "internal error"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message

    def details(self) -> list[Message]:
        """The ``google.rpc.Status`` details: always an ``ErrorInfo``, then the class's own."""
        return [error_details_pb2.ErrorInfo(reason=self.reason, domain=DOMAIN)]


class InvalidArgument(AuthError):
    """One or more request fields are malformed or out of policy (adds ``BadRequest``)."""

    code = code_pb2.INVALID_ARGUMENT
    reason = Reason.INVALID_ARGUMENT

    def __init__(self, violations: list[FieldViolation]) -> None:
        self.violations = violations
        names = ", ".join(v.field for v in violations)
        first = violations[0].description if violations else ""
        super().__init__(
            f"invalid {names}: {first}" if len(violations) == 1 else f"invalid {names}"
        )

    @classmethod
    def of(cls, field: str, description: str) -> InvalidArgument:
        """One violation."""
        return cls([FieldViolation(field, description)])

    def details(self) -> list[Message]:
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=v.description
                )
                for v in self.violations
            ]
        )
        return [*super().details(), bad]


class EmailTaken(AuthError):
    code = code_pb2.ALREADY_EXISTS
    reason = Reason.EMAIL_TAKEN
    message = "this email is already registered"


class InvalidCredentials(AuthError):
    code = code_pb2.UNAUTHENTICATED
    reason = Reason.INVALID_CREDENTIALS
    message = "wrong email or password"


class TokenInvalid(AuthError):
    code = code_pb2.UNAUTHENTICATED
    reason = Reason.TOKEN_INVALID
    message = "the token is not valid"


class TokenExpired(AuthError):
    code = code_pb2.UNAUTHENTICATED
    reason = Reason.TOKEN_EXPIRED
    message = "the token has expired"


class RefreshTokenReused(AuthError):
    """An update token came back after it was exchanged: its session is revoked.

    Says nothing about the session or user to the caller, who may be the thief.
    """

    code = code_pb2.UNAUTHENTICATED
    reason = Reason.REFRESH_TOKEN_REUSED
    message = "this update token was already used; the session has been revoked"


class TooManyAttempts(AuthError):
    """Attempts are throttled for now; ``retry_after`` says for how long (adds ``RetryInfo``)."""

    code = code_pb2.RESOURCE_EXHAUSTED
    reason = Reason.TOO_MANY_ATTEMPTS
    message = "too many failed attempts; retry later"

    def __init__(self, retry_after: timedelta) -> None:
        super().__init__()
        self.retry_after = retry_after

    def details(self) -> list[Message]:
        retry = error_details_pb2.RetryInfo()
        retry.retry_delay.FromTimedelta(self.retry_after)
        return [*super().details(), retry]


class UserNotFound(AuthError):
    code = code_pb2.NOT_FOUND
    reason = Reason.USER_NOT_FOUND
    message = "no user has this id"


class EmailNotVerified(AuthError):
    """The password was right, but the server requires a verified email to sign in."""

    code = code_pb2.FAILED_PRECONDITION
    reason = Reason.EMAIL_NOT_VERIFIED
    message = "the email address is not verified yet"


class UserDisabled(AuthError):
    """The user is disabled: no sign-in, no refresh, no reset, no verification."""

    code = code_pb2.PERMISSION_DENIED
    reason = Reason.USER_DISABLED
    message = "this user is disabled"


class SessionNotFound(AuthError):
    code = code_pb2.NOT_FOUND
    reason = Reason.SESSION_NOT_FOUND
    message = "no live session has this id"


class Overloaded(AuthError):
    code = code_pb2.RESOURCE_EXHAUSTED
    reason = Reason.OVERLOADED
    message = "too many sign-ins in progress; retry later"


class DeadlineExceeded(AuthError):
    """The call's deadline passed while it waited for a hash slot or a connection."""

    code = code_pb2.DEADLINE_EXCEEDED
    reason = Reason.DEADLINE_EXCEEDED
    message = "the deadline passed before the call could be served"


class CallerNotAllowed(AuthError):
    """The caller policy (or, without one, protected mode) does not let this caller call
    this method; the message says how to allow it."""

    code = code_pb2.PERMISSION_DENIED
    reason = Reason.CALLER_NOT_ALLOWED
    message = "this caller may not call this method"


class ApiKeyInvalid(AuthError):
    """The call's ``x-api-key`` is not a live API key: unknown, revoked or malformed."""

    code = code_pb2.UNAUTHENTICATED
    reason = Reason.API_KEY_INVALID
    message = "the API key in x-api-key is not valid (unknown, revoked or malformed)"


class DatabaseUnavailable(AuthError):
    code = code_pb2.UNAVAILABLE
    reason = Reason.DATABASE_UNAVAILABLE
    message = "the database is unavailable; retry later"


class UnsupportedHashFormat(InvalidArgument):
    """An imported user's password hash is in no accepted format (a per-user result)."""

    reason = Reason.UNSUPPORTED_HASH_FORMAT


class Internal(AuthError):
    """Anything unexpected; the caller learns nothing more."""


# Multi-factor sign-in (issue 10)


class ReauthenticationRequired(AuthError):
    """A sensitive call needs an authentication on the session within the max age."""

    code = code_pb2.FAILED_PRECONDITION
    reason = Reason.REAUTHENTICATION_REQUIRED
    message = "authenticate again (ReauthenticateSession) before this call"


class MfaNotConfigured(AuthError):
    """The server lacks the setting this factor needs (a secret key, a relying party)."""

    code = code_pb2.FAILED_PRECONDITION
    reason = Reason.MFA_NOT_CONFIGURED
    message = "this factor is not configured on the server"


class ChallengeInvalid(AuthError):
    """A challenge token that is unknown, used, expired or of another ceremony."""

    code = code_pb2.UNAUTHENTICATED
    reason = Reason.CHALLENGE_INVALID
    message = "the challenge is not valid; start again"


class CodeInvalid(AuthError):
    """A wrong TOTP or recovery code, or one already used."""

    code = code_pb2.UNAUTHENTICATED
    reason = Reason.CODE_INVALID
    message = "the code is wrong or was already used"


class TotpAlreadyEnrolled(AuthError):
    code = code_pb2.FAILED_PRECONDITION
    reason = Reason.TOTP_ALREADY_ENROLLED
    message = "TOTP is already enrolled; remove it first"


class TotpNotEnrolled(AuthError):
    code = code_pb2.FAILED_PRECONDITION
    reason = Reason.TOTP_NOT_ENROLLED
    message = "no TOTP enrolment for this call"


class PasskeyInvalid(AuthError):
    code = code_pb2.UNAUTHENTICATED
    reason = Reason.PASSKEY_INVALID
    message = "the passkey response was refused"


class ClonedAuthenticator(AuthError):
    """The passkey's sign counter went backwards: a copy of it exists somewhere."""

    code = code_pb2.UNAUTHENTICATED
    reason = Reason.CLONED_AUTHENTICATOR
    message = "the passkey was refused: its counter went backwards"


class PasskeyNotFound(AuthError):
    code = code_pb2.NOT_FOUND
    reason = Reason.PASSKEY_NOT_FOUND
    message = "no passkey of this user has this id"


class CursorExpired(AuthError):
    """An event cursor older than the retention: events after it may be gone."""

    code = code_pb2.FAILED_PRECONDITION
    reason = Reason.CURSOR_EXPIRED
    message = (
        f"events after this cursor were purged ({AUTHSVC_EVENT_RETENTION}); "
        "start again from an empty cursor or 'now'"
    )


class TooManyStreams(Overloaded):
    """Every event stream slot of this replica is taken (AUTHSVC_EVENT_STREAMS)."""

    message = "too many event streams on this replica; retry later or on another replica"


# Webhooks (issue 19)


class WebhookNotFound(AuthError):
    code = code_pb2.NOT_FOUND
    reason = Reason.WEBHOOK_NOT_FOUND
    message = "no webhook endpoint has this id"


class WebhooksNotConfigured(AuthError):
    """Webhook secrets are stored encrypted with AUTHSVC_SECRET_KEY, which is not set."""

    code = code_pb2.FAILED_PRECONDITION
    reason = Reason.WEBHOOKS_NOT_CONFIGURED
    message = f"webhooks need {AUTHSVC_SECRET_KEY} to store their signing secrets encrypted"
