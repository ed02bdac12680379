"""Naming the pre-forked worker process that served a call, in its trailing metadata."""

from __future__ import annotations

import os
from typing import Any

import grpc

from authsvc.edge.wrapping import Handler, PerMethodInterceptor, UnaryBehavior, wrap_unary

#: Trailing metadata naming the worker process that served a call.
WORKER_METADATA = "authsvc-worker"


class WorkerTag(PerMethodInterceptor):
    """Adds ``authsvc-worker: <pid>`` to the trailing metadata of successful calls."""

    def __init__(self) -> None:
        super().__init__()
        self._tag = ((WORKER_METADATA, str(os.getpid())),)

    def wrap(self, handler: Handler, method: str) -> Handler:
        """``handler`` tagging each unary call's trailing metadata."""
        tag = self._tag

        def tagging(inner: UnaryBehavior) -> UnaryBehavior:
            def tagged(request: Any, context: grpc.ServicerContext) -> Any:
                context.set_trailing_metadata(tag)
                return inner(request, context)

            return tagged

        wrapped: Handler = wrap_unary(handler, tagging)
        return wrapped
