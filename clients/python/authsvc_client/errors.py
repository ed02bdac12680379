"""AuthClientError: a failed authsvc call, decoded from its ``google.rpc.Status``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import cast

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

#: The ``google.rpc.ErrorInfo`` domain of every error authsvc itself raises.
DOMAIN = "authsvc"


@dataclass(frozen=True)
class FieldViolation:
    """One bad request field: its proto path (``user.email``) and what is wrong with it."""

    field: str
    description: str


class AuthClientError(Exception):
    """A failed call: its gRPC ``code``, the ``ErrorInfo.reason`` and any field violations.

    ``reason`` is the stable, machine-readable cause (``EMAIL_TAKEN``, ``TOKEN_EXPIRED``):
    branch on it, never on ``message``, which is for people. It is empty when the status
    carries no ErrorInfo (a deadline that expired in the client, a server that could not
    be reached). ``violations`` lists the bad fields of an INVALID_ARGUMENT.
    ``retry_after`` is the ``google.rpc.RetryInfo`` delay of a throttled call (reason
    TOO_MANY_ATTEMPTS): do not try again before it has passed; None when the status
    carries no RetryInfo.
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        reason: str,
        message: str,
        violations: tuple[FieldViolation, ...] = (),
        domain: str = "",
        retry_after: timedelta | None = None,
    ) -> None:
        self.code = code
        self.reason = reason
        self.message = message
        self.violations = violations
        self.domain = domain
        self.retry_after = retry_after
        super().__init__(self._describe())

    def _describe(self) -> str:
        """``CODE REASON: message (retry after Ns)``, naming the reason once.

        The reason is left out when it only repeats the code (INVALID_ARGUMENT) or is
        already in the message.
        """
        text = self.code.name
        if self.reason and self.reason != self.code.name and self.reason not in self.message:
            text += f" {self.reason}"
        if self.message:
            text += f": {self.message}"
        if self.retry_after is not None:
            text += f" (retry after {self.retry_after.total_seconds():g}s)"
        return text

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> AuthClientError:
        """Decodes the ``google.rpc.Status`` details of a failed call.

        Details of other types are ignored; a status without details gives an error
        with an empty ``reason``.
        """
        call = cast(grpc.Call, error)
        status = rpc_status.from_call(call)
        info = error_details_pb2.ErrorInfo()
        bad = error_details_pb2.BadRequest()
        retry = error_details_pb2.RetryInfo()
        for detail in status.details if status is not None else ():
            for message in (info, bad, retry):
                if detail.Is(message.DESCRIPTOR):
                    detail.Unpack(message)
        violations = tuple(FieldViolation(v.field, v.description) for v in bad.field_violations)
        retry_after = retry.retry_delay.ToTimedelta() if retry.HasField("retry_delay") else None
        message = call.details() or ""
        return cls(call.code(), info.reason, message, violations, info.domain, retry_after)
