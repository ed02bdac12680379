"""Running a gRPC method handler of any kind inside a per-call guard.

grpcio hands a server interceptor the method name but not the call's context, so an
interceptor that needs the context (here: its metadata) returns a handler that runs the
original one inside a *guard*: a context manager made from the call's context when the
call runs. (A copy of the server's ``authsvc.edge.wrapping.guard_handler``: the client
imports nothing from the server.)
"""

from __future__ import annotations

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
