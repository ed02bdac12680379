"""The access log and the Prometheus metrics of every RPC, from the final status.

``ObservabilityInterceptor`` sits outside ``ErrorInterceptor``, so it sees the status
code (and ``ErrorInfo.reason``) that the caller receives, mapped errors included. A
successful call costs two clock reads, a look at the context's code and an append
(``edge.access_log``); only failures pay for decoding the reason and formatting a line.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import grpc
from google.rpc import error_details_pb2, status_pb2

from authsvc.edge.access_log import AccessLog
from authsvc.edge.wrapping import Handler, PerMethodInterceptor, UnaryBehavior, wrap_unary

_STATUS_DETAILS_KEY = "grpc-status-details-bin"


class RpcObserver(Protocol):
    """Records finished RPCs (the runtime's Prometheus metrics)."""

    def observe(self, method: str, code: grpc.StatusCode, reason: str, seconds: float) -> None: ...


class ObservabilityInterceptor(PerMethodInterceptor):
    """Times each unary call, then hands it to ``access_log`` and ``metrics`` (when given).

    Streaming calls (health Watch, reflection) pass through untouched: they are long-lived
    and would distort the latency histograms.
    """

    def __init__(self, access_log: AccessLog, metrics: RpcObserver | None) -> None:
        super().__init__()
        self._access = access_log
        self._metrics = metrics

    def wrap(self, handler: Handler, method: str) -> Handler:
        """``handler`` timed and recorded (unary calls only)."""
        wrapped: Handler = wrap_unary(handler, lambda inner: self._observing(inner, method))
        return wrapped

    def _observing(self, inner: UnaryBehavior, method: str) -> UnaryBehavior:
        clock = time.perf_counter
        finished = self._quiet_finished if self._access.quiet(method) else self._finished

        def observed(request: Any, context: grpc.ServicerContext) -> Any:
            start = clock()
            try:
                response = inner(request, context)
            except BaseException:
                finished(method, context, clock() - start, True)
                raise
            finished(method, context, clock() - start, False)
            return response

        return observed

    def _finished(
        self, method: str, context: grpc.ServicerContext, seconds: float, raised: bool
    ) -> None:
        code = _code(context, raised=raised)
        if code is grpc.StatusCode.OK:
            self._access.succeeded(method, seconds, context.peer)
            reason = ""
        else:
            reason = _reason(context)
            self._access.failed(method, code, reason, seconds, context.peer())
        if self._metrics is not None:
            self._metrics.observe(method, code, reason, seconds)

    def _quiet_finished(
        self, method: str, context: grpc.ServicerContext, seconds: float, raised: bool
    ) -> None:
        code = _code(context, raised=raised)
        self._access.quiet_call(method, code, seconds, context.peer)
        if self._metrics is not None:
            self._metrics.observe(method, code, "", seconds)


def _code(context: grpc.ServicerContext, *, raised: bool) -> grpc.StatusCode:
    """The code the call ends with; a handler that raised without setting one ends UNKNOWN
    (gRPC's own rule)."""
    # code() exists on the server context since grpcio 1.38, but types-grpcio lacks it.
    ctx: Any = context
    code: grpc.StatusCode | None = ctx.code()
    if code is None:
        return grpc.StatusCode.UNKNOWN if raised else grpc.StatusCode.OK
    return code


def _reason(context: grpc.ServicerContext) -> str:
    """The ``ErrorInfo.reason`` in the call's status details ("" when there is none)."""
    ctx: Any = context
    for key, value in ctx.trailing_metadata() or ():
        if key == _STATUS_DETAILS_KEY:
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    return str(info.reason)
    return ""
