"""The hot path on handler threads of its own: ValidateToken apart from every other call.

grpcio's sync server runs each call on a thread of one pool and starts a new thread
whenever a call arrives while none is idle. Sixteen validations in flight thus mean
sixteen threads taking turns at the GIL: each database round trip releases it, and
taking it back among that many threads costs context switches that, measured on this
2-core machine, cost more than the lookup itself (server CPU per uncached ValidateToken
about 0.63 ms on 8 threads, 0.46 to 0.50 ms on 4, 0.49 to 0.55 ms on 2; see
docs/benchmarks.md). A short call that only reads gains nothing from more threads than a
few per core.

grpcio lets a method's behaviour name the pool it runs on (``experimental_thread_pool``,
read by ``grpc._server._select_thread_pool_for_behavior``); ``HotPathPool`` gives the hot
methods' handlers a small pool of their own. That also keeps them off the shared pool,
where calls waiting for a password-hash slot hold their threads.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent import futures
from typing import Any

import grpc

from authsvc.edge.wrapping import Handler, PerMethodInterceptor

#: The calls every other service makes on every request it serves.
HOT_METHODS = frozenset({"/authsvc.v1.AuthService/ValidateToken"})


class HotPathPool(PerMethodInterceptor):
    """Runs the unary ``methods`` on ``pool`` instead of the server's shared pool."""

    def __init__(self, pool: futures.ThreadPoolExecutor, methods: Iterable[str] = HOT_METHODS):
        super().__init__()
        self._pool = pool
        self._methods = frozenset(methods)

    def wrap(self, handler: Handler, method: str) -> Handler:
        """``handler`` itself, or for a hot method one whose behaviour names the pool."""
        inner = handler.unary_unary
        if method not in self._methods or inner is None:
            return handler

        def on_hot_pool(request: Any, context: grpc.ServicerContext) -> Any:
            return inner(request, context)

        on_hot_pool.experimental_thread_pool = self._pool  # type: ignore[attr-defined]
        hot: Handler = grpc.unary_unary_rpc_method_handler(
            on_hot_pool,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
        return hot


#: The long-lived server streams: each holds its thread for as long as its consumer listens.
STREAM_METHODS = frozenset({"/authsvc.v1.AuthService/WatchEvents"})
#: The revocation feed's streams, one per verifier: on a pool of their own, so that many
#: verifiers never take the threads event consumers need, nor the reverse.
REVOCATION_STREAMS = frozenset({"/authsvc.v1.AuthService/WatchRevocations"})


class StreamPool(PerMethodInterceptor):
    """Runs the server-streaming ``methods`` on ``pool``, apart from the shared pool.

    A stream holds its thread until the consumer goes, so on the shared pool a few
    consumers would starve every other call. The pool should have a few threads more
    than the streams its flow admits, so that one stream too many is refused at once
    (RESOURCE_EXHAUSTED) rather than queued behind the others.
    """

    def __init__(
        self, pool: futures.ThreadPoolExecutor, methods: Iterable[str] = STREAM_METHODS
    ) -> None:
        super().__init__()
        self._pool = pool
        self._methods = frozenset(methods)

    def wrap(self, handler: Handler, method: str) -> Handler:
        """``handler`` itself, or for a stream method one whose behaviour names the pool."""
        inner = handler.unary_stream
        if method not in self._methods or inner is None:
            return handler

        def on_stream_pool(request: Any, context: grpc.ServicerContext) -> Any:
            return inner(request, context)

        on_stream_pool.experimental_thread_pool = self._pool  # type: ignore[attr-defined]
        own: Handler = grpc.unary_stream_rpc_method_handler(
            on_stream_pool,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
        return own
