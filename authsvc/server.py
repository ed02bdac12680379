"""Builds the gRPC server: AuthService, health, reflection and the interceptors.

Interceptors, outermost first: observability (logs, metrics), errors → statuses (and
the call's deadline), then the caller policy when one is set. Calls beyond
``max_concurrent_rpcs`` are shed by gRPC with RESOURCE_EXHAUSTED instead of queueing
without bound.
"""

from __future__ import annotations

import logging
from concurrent import futures
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from authsvc import tls
from authsvc.app import AuthApp, Clock
from authsvc.callers import SERVICES, CallerInterceptor, DeniedHook, caller_denied
from authsvc.config import Settings
from authsvc.db import Database, make_engine
from authsvc.health import SERVICE_NAME, DatabaseHealth
from authsvc.interceptors import ErrorInterceptor
from authsvc.metrics import Metrics, MetricsServer, start_metrics_server
from authsvc.models import utcnow
from authsvc.observability import ObservabilityInterceptor
from authsvc.prefork import WorkerTag
from authsvc.purge import PurgeTimer
from authsvc.servicer import AuthServicer
from authsvc.v1 import auth_service_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024


@dataclass
class AuthServer:
    """A started gRPC server and what it owns; ``stop()`` drains and releases all of it."""

    grpc_server: grpc.Server
    app: AuthApp
    health: DatabaseHealth
    port: int
    metrics: MetricsServer | None = None  # None unless AUTHSVC_METRICS_ADDRESS is set
    purge_timer: PurgeTimer | None = None

    def stop(self, grace: float | None) -> None:
        """Refuses new calls, lets calls in flight finish within ``grace``, then closes."""
        self.health.stop()
        if self.purge_timer:
            self.purge_timer.stop()
        self.grpc_server.stop(grace).wait()
        if self.metrics is not None:
            self.metrics.stop()
        self.app.close()

    def wait_for_termination(self, timeout: float | None = None) -> bool:
        """Blocks until the server stops (or ``timeout``); True if it stopped."""
        return bool(self.grpc_server.wait_for_termination(timeout))


def create_server(
    settings: Settings,
    *,
    clock: Clock = utcnow,
    database: Database | None = None,
    worker: bool = False,
) -> tuple[AuthServer, int]:
    """Builds and starts the server on ``settings.address`` (port 0 picks a free port).

    Returns the server and the bound port. The schema must
    already be migrated. Raises RuntimeError when the address cannot be bound.
    ``worker`` marks one of several pre-forked processes sharing the port
    (``SO_REUSEPORT``, reserved by the parent), whose pid each response carries.
    """
    db = database or Database(make_engine(settings.database_url, pool_size=settings.max_workers))
    app = AuthApp(settings, db, clock)
    metrics = Metrics() if settings.metrics_address else None
    interceptors = _interceptors(settings, metrics, app)
    if worker:
        interceptors.insert(0, WorkerTag())
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=settings.max_workers, thread_name_prefix="rpc"),
        interceptors=interceptors,
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            # Off unless pre-forked: then a port someone else holds is detected.
            ("grpc.so_reuseport", 1 if worker else 0),
        ],
        maximum_concurrent_rpcs=settings.max_concurrent_rpcs,
    )
    pb_grpc.add_AuthServiceServicer_to_server(AuthServicer(app), server)
    health = DatabaseHealth(db, settings.health_interval.total_seconds())
    health_pb2_grpc.add_HealthServicer_to_server(health.servicer, server)
    reflection.enable_server_reflection([s.full_name for s in SERVICES], server)
    port = tls.add_port(server, settings)
    if port == 0:
        raise RuntimeError(f"cannot bind {settings.address}")
    metrics_server = _start_metrics(settings.metrics_address, metrics)
    app.start()
    health.start()
    server.start()
    timer = None
    if settings.purge_interval:
        timer = PurgeTimer(app.purge, settings.purge_interval.total_seconds())
        timer.start()
    log.info("serving %s on port %d", SERVICE_NAME, port)
    return AuthServer(server, app, health, port, metrics_server, timer), port


def _start_metrics(address: str, metrics: Metrics | None) -> MetricsServer | None:
    if metrics is None:
        return None
    try:
        started = start_metrics_server(address, metrics.registry)
    except (OSError, ValueError) as exc:
        raise RuntimeError(f"cannot serve metrics on {address}: {exc}") from None
    log.info("serving metrics on port %d", started.port)
    return started


def _interceptors(
    settings: Settings, metrics: Metrics | None, app: AuthApp
) -> list[grpc.ServerInterceptor]:
    # Outermost first: observability must see the status ErrorInterceptor maps to, and
    # ErrorInterceptor maps the caller policy's denials.
    interceptors: list[grpc.ServerInterceptor] = [
        ObservabilityInterceptor(metrics),
        ErrorInterceptor(),
    ]
    if settings.callers is not None:
        interceptors.append(CallerInterceptor(settings.callers, on_denied=_on_denied(app)))
    return interceptors


def _on_denied(app: AuthApp) -> DeniedHook:
    def on_denied(identities: tuple[str, ...], method: str) -> None:
        caller_denied(identities, method)  # the security log
        app.audit_caller_denied(identities, method)

    return on_denied
