"""One log line and the Prometheus metrics of every RPC, from the final status.

``ObservabilityInterceptor`` sits outside ``ErrorInterceptor``, so it sees the status
code (and ``ErrorInfo.reason``) that the caller receives, mapped errors included.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

import grpc
from google.rpc import error_details_pb2, status_pb2

from authsvc.edge.wrapping import UnaryBehavior, wrap_unary

rpc_log = logging.getLogger("authsvc.rpc")

_STATUS_DETAILS_KEY = "grpc-status-details-bin"
# Probes call health checks every few seconds: a line each would drown the real calls.
_QUIET_PREFIX = "/grpc.health.v1.Health/"


class RpcObserver(Protocol):
    """Records finished RPCs (the runtime's Prometheus metrics)."""

    def observe(self, method: str, code: grpc.StatusCode, reason: str, seconds: float) -> None: ...


class ObservabilityInterceptor(grpc.ServerInterceptor):
    """Times each unary call, then logs it and records it in ``metrics`` (when given).

    Streaming calls (health Watch, reflection) pass through untouched: they are long-lived
    and would distort the latency histograms.
    """

    def __init__(self, metrics: RpcObserver | None) -> None:
        self._metrics = metrics

    def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Any], details: Any
    ) -> Any:
        method: str = details.method

        def observing(inner: UnaryBehavior) -> UnaryBehavior:
            def observed(request: Any, context: grpc.ServicerContext) -> Any:
                start = time.perf_counter()
                try:
                    response = inner(request, context)
                except BaseException:
                    self._record(method, context, time.perf_counter() - start, raised=True)
                    raise
                self._record(method, context, time.perf_counter() - start, raised=False)
                return response

            return observed

        return wrap_unary(continuation(details), observing)

    def _record(
        self, method: str, context: grpc.ServicerContext, seconds: float, *, raised: bool
    ) -> None:
        code, reason = final_status(context, raised=raised)
        if self._metrics is not None:
            self._metrics.observe(method, code, reason, seconds)
        duration_ms = round(seconds * 1000, 3)
        fields: dict[str, Any] = {"event": "rpc", "method": method, "code": code.name}
        fields.update(duration_ms=duration_ms, peer=context.peer(), reason=reason or None)
        level = logging.DEBUG if method.startswith(_QUIET_PREFIX) else logging.INFO
        rpc_log.log(level, "%s %s %.1fms", method, code.name, duration_ms, extra=fields)


def final_status(context: grpc.ServicerContext, *, raised: bool) -> tuple[grpc.StatusCode, str]:
    """The code and ``ErrorInfo.reason`` the call ends with, once its handler is done.

    A handler that raised without setting a code ends UNKNOWN (gRPC's own rule).
    """
    # code() and trailing_metadata() exist on the server context since grpcio 1.38, but
    # types-grpcio lacks code().
    ctx: Any = context
    code: grpc.StatusCode | None = ctx.code()
    if code is None:
        code = grpc.StatusCode.UNKNOWN if raised else grpc.StatusCode.OK
    return code, _reason(ctx.trailing_metadata())


def _reason(trailing: Any) -> str:
    for key, value in trailing or ():
        if key == _STATUS_DETAILS_KEY:
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    return str(info.reason)
    return ""
