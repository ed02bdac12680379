"""Wrapping gRPC method handlers of every kind, for server interceptors.

grpcio hands an interceptor the method name but not the call's context, so an
interceptor that needs the context (the peer's certificate, the deadline) returns a
handler that runs the original one inside a *guard*: a context manager made from the
call's context when the call runs.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any, TypeAlias

import grpc

Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
Guard: TypeAlias = Callable[[grpc.ServicerContext], AbstractContextManager[object]]
_Behavior: TypeAlias = Callable[[Any, grpc.ServicerContext], Any]


def guard_handler(handler: Handler, guard: Guard) -> Handler:
    """``handler`` with each call run inside ``guard(context)``.

    Unary and streaming handlers alike; for a streaming response the guard stays open
    until the last message is produced, so errors raised while streaming pass through it.
    """
    make: Callable[..., Handler]
    wrap: Callable[[_Behavior, Guard], _Behavior]
    kinds = (
        (handler.unary_unary, grpc.unary_unary_rpc_method_handler, _returning),
        (handler.unary_stream, grpc.unary_stream_rpc_method_handler, _streaming),
        (handler.stream_unary, grpc.stream_unary_rpc_method_handler, _returning),
        (handler.stream_stream, grpc.stream_stream_rpc_method_handler, _streaming),
    )
    for behavior, make, wrap in kinds:
        if behavior is not None:
            return make(
                wrap(behavior, guard),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
    return handler


def _returning(inner: _Behavior, guard: Guard) -> _Behavior:
    def behavior(request: Any, context: grpc.ServicerContext) -> Any:
        with guard(context):
            return inner(request, context)

    return behavior


def _streaming(inner: _Behavior, guard: Guard) -> _Behavior:
    def behavior(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        with guard(context):
            yield from inner(request, context)

    return behavior


UnaryBehavior: TypeAlias = Callable[[Any, grpc.ServicerContext], Any]


def wrap_unary(handler: Handler | None, wrap: Callable[[UnaryBehavior], UnaryBehavior]) -> Any:
    """A unary-unary ``handler`` whose behaviour is ``wrap(original)``; others unchanged."""
    if handler is None or handler.unary_unary is None:
        return handler
    return grpc.unary_unary_rpc_method_handler(
        wrap(handler.unary_unary),
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


class PerMethodInterceptor(grpc.ServerInterceptor):
    """An interceptor whose wrapped handler depends on the method alone, built once per method.

    grpcio runs the interceptor chain for every call; rebuilding the same handler (and
    its closures) each time cost a measurable share of a cached ValidateToken. The
    handler of a registered method never changes, so the wrapped one is kept; unknown
    methods (``None``) are not, so a caller inventing names cannot grow the map.
    """

    def __init__(self) -> None:
        self._wrapped: dict[str, Any] = {}

    @abc.abstractmethod
    def wrap(self, handler: Handler, method: str) -> Handler:
        """The handler to serve ``method`` with, around ``handler`` (never None)."""

    def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Any], details: Any
    ) -> Any:
        method: str = details.method
        found = self._wrapped.get(method)
        if found is None:
            handler = continuation(details)
            if handler is None:
                return None
            found = self._wrapped[method] = self.wrap(handler, method)
        return found
