"""The interceptor that applies the one error mapping (``edge.status``) to every call.

A request that does not parse (corrupt wire format, invalid UTF-8 in a string field)
becomes INVALID_ARGUMENT too. Every status carries ``google.rpc.ErrorInfo``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn, Protocol

import grpc
from google.protobuf.message import DecodeError

from authsvc.deadlines import enter_call, leave_call
from authsvc.edge.status import as_auth_error, to_status
from authsvc.edge.wrapping import Handler, PerMethodInterceptor, guard_handler
from authsvc.errors import DatabaseUnavailable, InvalidArgument


class DatabaseWatch(Protocol):
    """Hears what calls find out about the database (the runtime's health)."""

    def database_failed(self) -> None:
        """A call failed because the database could not be reached."""

    def call_succeeded(self) -> None:
        """A call succeeded (cheap: called on every successful unary call)."""


class _Unwatched:
    def database_failed(self) -> None:
        pass

    def call_succeeded(self) -> None:
        pass


_UNWATCHED = _Unwatched()
_WATCHED = "/authsvc."  # the services whose calls may touch the database


class ErrorInterceptor(PerMethodInterceptor):
    """Wraps every handler so its exceptions become rich statuses.

    It also records the call's deadline for the waits in ``authsvc.deadlines``.
    Streaming handlers (health Watch, reflection) are covered too, so errors raised by
    other interceptors on them (a denied caller) carry ErrorInfo as well.

    It parses requests too: left to grpc, parsing happens before any handler runs and
    a malformed request gets a bare INTERNAL without ErrorInfo. Interceptors outside
    this one therefore see requests as raw bytes.

    ``watch`` hears of every call that finds the database unavailable, and of every
    successful unary call of authsvc's own services (not health checks or reflection,
    which never touch the database), so health can follow the database between polls.
    """

    def __init__(self, watch: DatabaseWatch | None = None) -> None:
        super().__init__()
        self._watch = watch or _UNWATCHED

    def wrap(self, handler: Handler, method: str) -> Handler:
        """``handler`` parsing its own request, its errors mapped to statuses."""
        watch = self._watch if method.startswith(_WATCHED) else _UNWATCHED
        if handler.unary_unary is not None:
            # The hot path (every AuthService call): a plain try, no context manager.
            return grpc.unary_unary_rpc_method_handler(
                _unary(handler.unary_unary, handler.request_deserializer, method, watch),
                request_deserializer=None,  # grpc passes the bytes through as they came
                response_serializer=handler.response_serializer,
            )
        return guard_handler(_parsing(handler), lambda context: _guarded(context, method, watch))


def _unary(
    inner: Callable[[Any, grpc.ServicerContext], Any],
    parse: Callable[[bytes], Any] | None,
    method: str,
    watch: DatabaseWatch,
) -> Callable[[Any, grpc.ServicerContext], Any]:
    succeeded = watch.call_succeeded

    def behavior(request: Any, context: grpc.ServicerContext) -> Any:
        token = enter_call(context.time_remaining)
        try:
            response = inner(request if parse is None else _parse(parse, request), context)
        except Exception as exc:  # the single mapping point
            _abort(context, exc, method, watch)
        finally:
            leave_call(token)
        succeeded()
        return response

    return behavior


def _abort(
    context: grpc.ServicerContext, exc: Exception, method: str, watch: DatabaseWatch
) -> NoReturn:
    error = as_auth_error(exc, method)
    if isinstance(error, DatabaseUnavailable):
        watch.database_failed()
    context.abort_with_status(to_status(error))


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
        (handler.unary_stream, grpc.unary_stream_rpc_method_handler, one),
        (handler.stream_unary, grpc.stream_unary_rpc_method_handler, many),
        (handler.stream_stream, grpc.stream_stream_rpc_method_handler, many),
    )
    for behavior, make, convert in kinds:
        if behavior is not None:
            return make(
                _on_parsed(behavior, convert),
                request_deserializer=None,
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
def _guarded(context: grpc.ServicerContext, method: str, watch: DatabaseWatch) -> Iterator[None]:
    token = enter_call(context.time_remaining)
    try:
        yield
    except Exception as exc:  # the single mapping point
        _abort(context, exc, method, watch)
    finally:
        leave_call(token)
