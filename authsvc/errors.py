"""The errors authsvc reports. Each carries its gRPC code and an UPPER_SNAKE reason.

Domain code raises these; one interceptor (``authsvc.interceptors``) turns them into
``google.rpc.Status`` with ``ErrorInfo`` (and ``BadRequest`` for field errors).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

import grpc

DOMAIN = "authsvc"


@dataclass(frozen=True)
class FieldViolation:
    """One bad request field: its path (``user.email``) and what is wrong with it."""

    field: str
    description: str


class AuthError(Exception):
    """Base of every error a caller may see."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    reason: str = "INTERNAL"
    message: str = "internal error"
    #: When true the transaction that raised it commits before the error reaches the
    #: caller (e.g. a reused update token revokes its session *and* fails the call).
    commit: bool = False

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message

    @property
    def metadata(self) -> dict[str, str]:
        """Extra ``ErrorInfo.metadata``."""
        return {}


class InvalidArgument(AuthError):
    """One or more request fields are malformed or out of policy."""

    code = grpc.StatusCode.INVALID_ARGUMENT
    reason = "INVALID_ARGUMENT"

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


class EmailTaken(AuthError):
    code = grpc.StatusCode.ALREADY_EXISTS
    reason = "EMAIL_TAKEN"
    message = "this email is already registered"


class InvalidCredentials(AuthError):
    code = grpc.StatusCode.UNAUTHENTICATED
    reason = "INVALID_CREDENTIALS"
    message = "wrong email or password"


class TokenInvalid(AuthError):
    code = grpc.StatusCode.UNAUTHENTICATED
    reason = "TOKEN_INVALID"
    message = "the token is not valid"


class TokenExpired(AuthError):
    code = grpc.StatusCode.UNAUTHENTICATED
    reason = "TOKEN_EXPIRED"
    message = "the token has expired"


class RefreshTokenReused(AuthError):
    code = grpc.StatusCode.UNAUTHENTICATED
    reason = "REFRESH_TOKEN_REUSED"
    message = "this update token was already used; the session has been revoked"
    commit = True

    def __init__(
        self, user_id: uuid.UUID | None = None, session_id: uuid.UUID | None = None
    ) -> None:
        super().__init__()
        #: For the security log and audit trail only; never sent to the caller, who may
        #: be the thief.
        self.user_id = user_id
        #: The session revoked because of the reuse (so caches can forget it).
        self.session_id = session_id


class TooManyAttempts(AuthError):
    """Sign-ins are throttled for now; ``retry_after`` says for how long.

    Commits, so the audit row of the refused attempt is kept.
    """

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "TOO_MANY_ATTEMPTS"
    message = "too many failed attempts; retry later"
    commit = True

    def __init__(self, retry_after: timedelta) -> None:
        super().__init__()
        self.retry_after = retry_after


class UserNotFound(AuthError):
    code = grpc.StatusCode.NOT_FOUND
    reason = "USER_NOT_FOUND"
    message = "no user has this id"


class DatabaseUnavailable(AuthError):
    code = grpc.StatusCode.UNAVAILABLE
    reason = "DATABASE_UNAVAILABLE"
    message = "the database is unavailable; retry later"


class Overloaded(AuthError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "OVERLOADED"
    message = "too many sign-ins in progress; retry later"


class Internal(AuthError):
    """Anything unexpected; the caller learns nothing more."""


# Who may call and overload (issue 5).


class CallerNotAllowed(AuthError):
    """The client certificate's identities may not call this method (caller policy)."""

    code = grpc.StatusCode.PERMISSION_DENIED
    reason = "CALLER_NOT_ALLOWED"
    message = "this caller may not call this method"


class DeadlineExceeded(AuthError):
    """The call's deadline passed while it waited for a hash slot or a connection."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED
    reason = "DEADLINE_EXCEEDED"
    message = "the deadline passed before the call could be served"
