"""Naming the pre-forked worker process that served a call, in its trailing metadata."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import grpc

from authsvc.edge.wrapping import UnaryBehavior, wrap_unary

#: Trailing metadata naming the worker process that served a call.
WORKER_METADATA = "authsvc-worker"


class WorkerTag(grpc.ServerInterceptor):
    """Adds ``authsvc-worker: <pid>`` to the trailing metadata of successful calls."""

    def __init__(self) -> None:
        self._tag = ((WORKER_METADATA, str(os.getpid())),)

    def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Any], details: Any
    ) -> Any:
        tag = self._tag

        def tagging(inner: UnaryBehavior) -> UnaryBehavior:
            def tagged(request: Any, context: grpc.ServicerContext) -> Any:
                context.set_trailing_metadata(tag)
                return inner(request, context)

            return tagged

        return wrap_unary(continuation(details), tagging)
