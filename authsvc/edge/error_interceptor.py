"""The interceptor that applies the one error mapping (``edge.status``) to every call.

A request that does not parse (corrupt wire format, invalid UTF-8 in a string field)
becomes INVALID_ARGUMENT too. Every status carries ``google.rpc.ErrorInfo``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from authsvc.deadlines import call_deadline
from authsvc.edge.status import as_auth_error, to_status
from authsvc.edge.wrapping import Handler, guard_handler
from authsvc.errors import InvalidArgument


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
