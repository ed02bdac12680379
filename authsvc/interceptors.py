"""The one place where exceptions become gRPC statuses.

AuthError → its code and reason; a lost database → UNAVAILABLE; a request that does
not parse (corrupt wire format, invalid UTF-8 in a string field) → INVALID_ARGUMENT;
anything else → INTERNAL with a generic message (the traceback goes to the log, never
to the caller). Every status carries ``google.rpc.ErrorInfo``; field errors add
``google.rpc.BadRequest``, throttled calls ``google.rpc.RetryInfo``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import DecodeError
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from authsvc.db import translate_db_error
from authsvc.deadlines import call_deadline
from authsvc.errors import DOMAIN, AuthError, Internal, InvalidArgument, TooManyAttempts
from authsvc.handlers import Handler, guard_handler

log = logging.getLogger(__name__)


def to_status(error: AuthError) -> grpc.Status:
    """The rich gRPC status for ``error``."""
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain=DOMAIN, metadata=error.metadata)
    details = [_pack(info)]
    if isinstance(error, InvalidArgument):
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=v.description
                )
                for v in error.violations
            ]
        )
        details.append(_pack(bad))
    if isinstance(error, TooManyAttempts):
        retry = error_details_pb2.RetryInfo()
        retry.retry_delay.FromTimedelta(error.retry_after)
        details.append(_pack(retry))
    status = status_pb2.Status(
        code=getattr(code_pb2, error.code.name), message=error.message, details=details
    )
    converted: grpc.Status = rpc_status.to_status(status)
    return converted


def _pack(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def as_auth_error(exc: BaseException, method: str) -> AuthError:
    """The AuthError a caller sees for any exception raised by a handler."""
    if isinstance(exc, AuthError):
        return exc
    translated = translate_db_error(exc)
    if translated is not None:
        log.warning("%s: database unavailable: %s", method, type(exc).__name__)
        return translated
    log.error("%s: unexpected error", method, exc_info=exc)
    return Internal()


class ErrorInterceptor(grpc.ServerInterceptor):
    """Wraps every handler so its exceptions become rich statuses.

    It also records the call's deadline for the waits in ``authsvc.deadlines``.
    Streaming handlers (health Watch, reflection) are covered too, so errors raised by
    other interceptors on them (a denied caller) carry ErrorInfo as well.

    It parses requests too: left to grpc, parsing happens before any handler runs and
    a malformed request gets a bare INTERNAL without ErrorInfo. Interceptors outside
    this one therefore see requests as raw bytes.
    """

    def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Any], details: Any
    ) -> Any:
        handler = continuation(details)
        if handler is None:
            return handler
        method = details.method
        return guard_handler(_parsing(handler), lambda context: _guarded(context, method))


def _parsing(handler: Handler) -> Handler:
    """``handler`` taking raw request bytes and parsing them itself, inside the guard."""
    parse = handler.request_deserializer
    if parse is None:
        return handler

    def one(request: bytes) -> Any:
        return _parse(parse, request)

    def many(requests: Iterator[bytes]) -> Iterator[Any]:
        return (_parse(parse, r) for r in requests)

    kinds: tuple[tuple[Any, Callable[..., Handler], Callable[[Any], Any]], ...] = (
        (handler.unary_unary, grpc.unary_unary_rpc_method_handler, one),
        (handler.unary_stream, grpc.unary_stream_rpc_method_handler, one),
        (handler.stream_unary, grpc.stream_unary_rpc_method_handler, many),
        (handler.stream_stream, grpc.stream_stream_rpc_method_handler, many),
    )
    for behavior, make, convert in kinds:
        if behavior is not None:
            return make(
                _on_parsed(behavior, convert),
                request_deserializer=None,  # grpc passes the bytes through as they came
                response_serializer=handler.response_serializer,
            )
    return handler


def _on_parsed(
    inner: Callable[[Any, grpc.ServicerContext], Any], convert: Callable[[Any], Any]
) -> Callable[[Any, grpc.ServicerContext], Any]:
    def behavior(request: Any, context: grpc.ServicerContext) -> Any:
        return inner(convert(request), context)

    return behavior


def _parse(parse: Callable[[bytes], Any], request: bytes) -> Any:
    """The message in ``request``; raises InvalidArgument when the bytes don't parse."""
    try:
        return parse(request)
    except DecodeError:
        # The parser's message says what is wrong with the bytes, never what they hold.
        raise InvalidArgument.of(
            "request", "is not a valid protobuf message (string fields must be UTF-8)"
        ) from None


@contextmanager
def _guarded(context: grpc.ServicerContext, method: str) -> Iterator[None]:
    try:
        with call_deadline(context.time_remaining()):
            yield
    except Exception as exc:  # the single mapping point
        context.abort_with_status(to_status(as_auth_error(exc, method)))
