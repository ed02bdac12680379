"""The composition root: builds the infrastructure, the flows and the gRPC server.

Interceptors, outermost first: observability (logs, metrics), errors → statuses (and
the call's deadline), then the caller policy when one is set. Calls beyond
``max_concurrent_rpcs`` are shed by gRPC with RESOURCE_EXHAUSTED instead of queueing
without bound.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from datetime import datetime

import grpc
from grpc_health.v1 import health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from authsvc.edge.caller_interceptor import CallerInterceptor
from authsvc.edge.caller_policy import SERVICES
from authsvc.edge.error_interceptor import ErrorInterceptor
from authsvc.edge.observability import ObservabilityInterceptor
from authsvc.edge.servicer import AuthServicer
from authsvc.edge.worker_tag import WorkerTag
from authsvc.errors import InvalidCredentials
from authsvc.flows.accounts import Accounts
from authsvc.flows.audit_trail import AuditTrail
from authsvc.flows.changes import Changes
from authsvc.flows.credentials import Credentials
from authsvc.flows.housekeeping import Housekeeping
from authsvc.flows.secret_check import CheckEvents, SecretCheck
from authsvc.flows.service import Flows
from authsvc.flows.sessions import Sessions
from authsvc.flows.sign_in import SignIn
from authsvc.rules.audit import AuditEvent
from authsvc.rules.hash_capacity import HashCapacity
from authsvc.rules.hashing import Hasher
from authsvc.rules.sessions import SessionPolicy
from authsvc.rules.throttling import ThrottlePolicy
from authsvc.rules.validation import TokenValidator
from authsvc.runtime import tls
from authsvc.runtime.health import SERVICE_NAME, DatabaseHealth
from authsvc.runtime.housekeeping import PurgeTimer
from authsvc.runtime.metrics import Metrics, MetricsServer, start_metrics_server
from authsvc.runtime.settings import Settings
from authsvc.storage.engine import Database, make_engine
from authsvc.storage.invalidation import Listener
from authsvc.storage.models import utcnow
from authsvc.storage.purge import Retention
from authsvc.storage.read_model import Validated
from authsvc.storage.token_lookup import make_lookup
from authsvc.storage.validation_cache import ValidationCache
from authsvc.v1 import auth_service_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
MAX_MESSAGE_BYTES = 64 * 1024


def sign_in_throttle(settings: Settings) -> ThrottlePolicy:
    """The throttle of passwords (sign-in and ChangePassword), keyed by account."""
    return ThrottlePolicy(
        scope="account",
        threshold=settings.throttle_account_threshold,
        base_delay=settings.throttle_base_delay,
        max_delay=settings.throttle_max_delay,
        subject_limit=settings.throttle_account_limit,
        subject_window=settings.throttle_account_window,
        ip_limit=settings.throttle_ip_limit,
        ip_window=settings.throttle_ip_window,
        forget_after=settings.throttle_forget_after,
    )


def retention(settings: Settings) -> Retention:
    """What the purge keeps, from the settings."""
    policy = sign_in_throttle(settings)
    return Retention(
        batch_size=settings.purge_batch_size,
        audit=settings.audit_retention,
        throttle_window=max(policy.subject_window, policy.ip_window),
        throttle_idle=policy.forget_after,
    )


def make_hash_capacity(settings: Settings, processes: int = 1) -> HashCapacity:
    """The replica's password-hash capacity, for ``processes`` worker processes.

    Make it once per replica, before forking the workers, so they all share it.
    """
    return HashCapacity(settings.hash_slots, settings.hash_queue_length, processes)


@dataclass
class Infrastructure:
    """What the flows run on: the database, the hasher, the validator and its cache."""

    database: Database
    hasher: Hasher
    cache: ValidationCache[Validated]
    validator: TokenValidator
    listener: Listener | None

    @classmethod
    def build(
        cls,
        settings: Settings,
        database: Database,
        clock: Clock,
        capacity: HashCapacity | None = None,
    ) -> Infrastructure:
        """Builds (without starting) everything for ``settings``.

        ``capacity``: the replica's hash slots (shared with other workers); a server
        alone in its process gets its own.
        """
        timeout = settings.hash_queue_timeout.total_seconds()
        hasher = Hasher(settings.password_hash, capacity or make_hash_capacity(settings), timeout)
        cache: ValidationCache[Validated] = ValidationCache(settings.cache_size)
        lookup = make_lookup(settings.database_url, keep_idle=settings.rpc_threads)
        validator = TokenValidator(lookup, cache, clock)
        # Other replicas' revocations reach the cache only through a LISTEN connection.
        listening = cache.size and not settings.is_sqlite
        listener = Listener(settings.database_url, cache) if listening else None
        return cls(database, hasher, cache, validator, listener)

    def start(self) -> None:
        """Starts the background parts (the invalidation listener)."""
        if self.listener:
            self.listener.start()

    def close(self) -> None:
        """Stops the background parts and closes every database connection."""
        if self.listener:
            self.listener.stop()
        self.validator.close()
        self.hasher.close()
        self.database.dispose()


def build_flows(settings: Settings, infra: Infrastructure, clock: Clock) -> Flows:
    """Every flow, wired to ``infra`` with the policies ``settings`` describe."""
    changes = Changes(infra.database, infra.cache, clock)
    sessions = SessionPolicy(
        ttl=settings.session_ttl,
        refresh_ttl=settings.refresh_ttl,
        max_age=settings.session_max_age,
        max_per_user=settings.max_sessions_per_user,
    )
    throttle = sign_in_throttle(settings)
    sign_in = CheckEvents(AuditEvent.SIGN_IN_FAILED, AuditEvent.SIGN_IN_THROTTLED)
    change = CheckEvents(AuditEvent.PASSWORD_CHANGE_FAILED, AuditEvent.PASSWORD_CHANGE_THROTTLED)
    return Flows(
        accounts=Accounts(changes, infra.hasher),
        sign_in=SignIn(
            changes,
            infra.hasher,
            SecretCheck(changes, throttle, sign_in, InvalidCredentials),
            sessions,
        ),
        sessions=Sessions(changes, infra.validator, sessions),
        credentials=Credentials(
            changes,
            infra.hasher,
            SecretCheck(changes, throttle, change, InvalidCredentials),
            infra.validator,
        ),
        audit_trail=AuditTrail(changes),
        housekeeping=Housekeeping(changes, retention(settings)),
    )


@dataclass
class AuthServer:
    """A started gRPC server and what it owns; ``stop()`` drains and releases all of it."""

    grpc_server: grpc.Server
    flows: Flows
    infra: Infrastructure
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
        self.infra.close()

    def wait_for_termination(self, timeout: float | None = None) -> bool:
        """Blocks until the server stops (or ``timeout``); True if it stopped."""
        return bool(self.grpc_server.wait_for_termination(timeout))


def create_server(
    settings: Settings,
    *,
    clock: Clock = utcnow,
    database: Database | None = None,
    worker: bool = False,
    servicer: Callable[[Flows], pb_grpc.AuthServiceServicer] = AuthServicer,
    hash_capacity: HashCapacity | None = None,
) -> tuple[AuthServer, int]:
    """Builds and starts the server on ``settings.address`` (port 0 picks a free port).

    Returns the server and the bound port. The schema must already be migrated. Raises
    RuntimeError when the address cannot be bound. ``worker`` marks one of several
    pre-forked processes sharing the port (``SO_REUSEPORT``, reserved by the parent),
    whose pid each response carries; ``hash_capacity`` is then the replica's, shared
    by all of them (by default the server makes its own). ``servicer`` lets the
    benchmark swap AuthService.
    """
    db = database or Database(make_engine(settings.database_url, pool_size=settings.rpc_threads))
    infra = Infrastructure.build(settings, db, clock, hash_capacity)
    flows = build_flows(settings, infra, clock)
    metrics = Metrics() if settings.metrics_address else None
    server = _grpc_server(settings, _interceptors(settings, metrics, flows, worker), worker)
    pb_grpc.add_AuthServiceServicer_to_server(servicer(flows), server)
    health = DatabaseHealth(db, settings.health_interval.total_seconds())
    health_pb2_grpc.add_HealthServicer_to_server(health.servicer, server)
    reflection.enable_server_reflection([s.full_name for s in SERVICES], server)
    port = tls.add_port(server, settings)
    if port == 0:
        raise RuntimeError(f"cannot bind {settings.address}")
    metrics_server = _start_metrics(settings.metrics_address, metrics)
    infra.start()
    health.start()
    server.start()
    timer = _start_purge_timer(settings, flows)
    log.info("serving %s on port %d", SERVICE_NAME, port)
    return AuthServer(server, flows, infra, health, port, metrics_server, timer), port


def _grpc_server(
    settings: Settings, interceptors: list[grpc.ServerInterceptor], worker: bool
) -> grpc.Server:
    # Calls waiting in the replica's hash queue hold a handler thread each; threads for
    # as many as it admits keep ``rpc_threads`` free for everything else, so a burst of
    # sign-ups on this worker never queues a ValidateToken behind it.
    threads = settings.rpc_threads + settings.hash_slots + settings.hash_queue_length
    return grpc.server(
        futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="rpc"),
        interceptors=interceptors,
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            # Off unless pre-forked: then a port someone else holds is detected.
            ("grpc.so_reuseport", 1 if worker else 0),
        ],
        maximum_concurrent_rpcs=settings.max_concurrent_rpcs,
    )


def _start_purge_timer(settings: Settings, flows: Flows) -> PurgeTimer | None:
    if not settings.purge_interval:
        return None
    timer = PurgeTimer(flows.housekeeping.purge, settings.purge_interval.total_seconds())
    timer.start()
    return timer


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
    settings: Settings, metrics: Metrics | None, flows: Flows, worker: bool
) -> list[grpc.ServerInterceptor]:
    # Outermost first: observability must see the status ErrorInterceptor maps to, and
    # ErrorInterceptor maps the caller policy's denials.
    interceptors: list[grpc.ServerInterceptor] = [
        ObservabilityInterceptor(metrics),
        ErrorInterceptor(),
    ]
    if worker:
        interceptors.insert(0, WorkerTag())
    if settings.callers is not None:
        interceptors.append(CallerInterceptor(settings.callers, flows.audit_trail.caller_denied))
    return interceptors
