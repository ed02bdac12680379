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
read by ``grpc._server._select_thread_pool_for_behavior``); ``OwnPools`` gives the hot
methods' handlers a small pool of their own. That also keeps them off the shared pool,
where calls waiting for a password-hash slot hold their threads.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent import futures
from typing import Any

import grpc

from authsvc.edge.wrapping import Handler, PerMethodInterceptor

#: The calls every other service makes on every request it serves.
HOT_METHODS = frozenset({"/authsvc.v1.AuthService/ValidateToken"})


class OwnPools(PerMethodInterceptor):
    """Runs each method of ``pools`` (unary or server-streaming) on its pool, not the
    server's shared one."""

    def __init__(self, pools: Mapping[str, futures.ThreadPoolExecutor]) -> None:
        super().__init__()
        self._pools = dict(pools)

    def wrap(self, handler: Handler, method: str) -> Handler:
        """``handler`` itself, or for a method of ``pools`` one whose behaviour names
        its pool."""
        pool = self._pools.get(method)
        if pool is None:
            return handler
        if handler.unary_unary is not None:
            inner, make = handler.unary_unary, grpc.unary_unary_rpc_method_handler
        elif handler.unary_stream is not None:
            inner, make = handler.unary_stream, grpc.unary_stream_rpc_method_handler
        else:
            return handler

        def on_own_pool(request: Any, context: grpc.ServicerContext) -> Any:
            return inner(request, context)

        on_own_pool.experimental_thread_pool = pool  # type: ignore[attr-defined]
        own: Handler = make(
            on_own_pool,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
        return own


#: The long-lived server streams: each holds its thread for as long as its consumer
#: listens. Their pool should have a few threads more than the streams the flow admits,
#: so that one stream too many is refused at once (RESOURCE_EXHAUSTED), not queued.
STREAM_METHODS = frozenset({"/authsvc.v1.AuthService/WatchEvents"})
#: The revocation feed's streams, one per verifier: on a pool of their own, so that many
#: verifiers never take the threads event consumers need, nor the reverse.
REVOCATION_STREAMS = frozenset({"/authsvc.v1.AuthService/WatchRevocations"})
