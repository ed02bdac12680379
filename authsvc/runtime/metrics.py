"""Prometheus metrics of one server, and the HTTP endpoint that exposes them.

Each server owns its registry, so several servers can run in one process (tests do).
RPC metrics follow go-grpc-prometheus's names, so existing gRPC dashboards work.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import grpc
from prometheus_client import CollectorRegistry, Counter, Histogram, make_wsgi_app

from authsvc.errors import Reason

SIGN_IN_METHOD = "/authsvc.v1.AuthService/CreateSession"
REFRESH_METHOD = "/authsvc.v1.AuthService/RefreshSession"
SIGN_IN_OUTCOMES = {
    grpc.StatusCode.OK: "success",
    grpc.StatusCode.UNAUTHENTICATED: "bad_credentials",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "throttled",
}
# Hashing dominates sign-ins (tens to hundreds of ms); the rest takes a few ms.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The counters and histograms of one server, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.handled = Counter(
            "grpc_server_handled",
            "RPCs completed on the server, by method and status code.",
            ["grpc_service", "grpc_method", "grpc_code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "grpc_server_handling_seconds",
            "Time to handle an RPC on the server, by method.",
            ["grpc_service", "grpc_method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.sign_ins = Counter(
            "authsvc_sign_ins",
            "Sign-ins (CreateSession) by outcome: success, bad_credentials, throttled, error.",
            ["outcome"],
            registry=self.registry,
        )
        self.tokens_refreshed = Counter(
            "authsvc_tokens_refreshed",
            "Sessions whose tokens were rotated by RefreshSession.",
            registry=self.registry,
        )
        self.thefts = Counter(
            "authsvc_refresh_token_reuse_detected",
            "Reused update tokens (likely stolen); each revoked its session.",
            registry=self.registry,
        )
        for outcome in (*SIGN_IN_OUTCOMES.values(), "error"):
            self.sign_ins.labels(outcome)  # exported at 0 before the first sign-in

    def observe(self, method: str, code: grpc.StatusCode, reason: str, seconds: float) -> None:
        """Records one finished RPC (``/package.Service/Method``)."""
        service, _, name = method.lstrip("/").rpartition("/")
        self.handled.labels(service, name, code.name).inc()
        self.latency.labels(service, name).observe(seconds)
        if method == SIGN_IN_METHOD:
            self.sign_ins.labels(SIGN_IN_OUTCOMES.get(code, "error")).inc()
        elif method == REFRESH_METHOD and code == grpc.StatusCode.OK:
            self.tokens_refreshed.inc()
        elif method == REFRESH_METHOD and reason == Reason.REFRESH_TOKEN_REUSED:
            self.thefts.inc()


@dataclass
class MetricsServer:
    """The running ``/metrics`` HTTP endpoint; ``port`` is the bound port."""

    httpd: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        """The bound TCP port (useful when the address asked for port 0)."""
        return int(self.httpd.server_port)

    def stop(self) -> None:
        """Stops serving and releases the port."""
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


def start_metrics_server(address: str, registry: CollectorRegistry) -> MetricsServer:
    """Serves ``registry`` at ``/metrics`` on ``address`` (HOST:PORT, ``[::1]:9090``).

    Raises OSError when the address cannot be bound, ValueError when PORT is no number.
    """
    host, _, port = address.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"  # noqa: S104 (all interfaces only when asked to)

    class Server(_ThreadingWSGIServer):
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

    httpd = make_server(host, int(port), make_wsgi_app(registry), Server, _QuietHandler)
    # A short poll interval makes stop() quick; the default (0.5 s) slows every test.
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="metrics", daemon=True
    )
    thread.start()
    return MetricsServer(httpd, thread)


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not worth a log line each."""
