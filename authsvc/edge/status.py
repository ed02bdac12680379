"""The one mapping of exceptions to gRPC statuses.

An AuthError carries its own code, reason and details. Storage errors become theirs: a
lost database UNAVAILABLE with reason DATABASE_UNAVAILABLE, a connection wait that
outlived the call's deadline DEADLINE_EXCEEDED; anything else becomes INTERNAL with a
generic message, its traceback logged, never sent.
"""

from __future__ import annotations

import logging

import grpc
from google.protobuf import any_pb2
from google.rpc import status_pb2
from grpc_status import rpc_status

from authsvc.errors import AuthError, DatabaseUnavailable, DeadlineExceeded, Internal
from authsvc.storage.engine import is_connection_error
from authsvc.storage.errors import ConnectionWaitExpired, StorageUnavailable

log = logging.getLogger(__name__)


def to_status(error: AuthError) -> grpc.Status:
    """The rich gRPC status for ``error``: its code, message and details."""
    details = []
    for detail in error.details():
        packed = any_pb2.Any()
        packed.Pack(detail)
        details.append(packed)
    status = status_pb2.Status(code=error.code, message=error.message, details=details)
    converted: grpc.Status = rpc_status.to_status(status)
    return converted


def as_auth_error(exc: BaseException, method: str) -> AuthError:
    """The AuthError a caller sees for any exception raised by a handler."""
    if isinstance(exc, AuthError):
        return exc
    if isinstance(exc, ConnectionWaitExpired):
        return DeadlineExceeded()
    if isinstance(exc, StorageUnavailable) or is_connection_error(exc):
        log.warning("%s: database unavailable: %s", method, exc)
        return DatabaseUnavailable()
    log.error("%s: unexpected error", method, exc_info=exc)
    return Internal()
