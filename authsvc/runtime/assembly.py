"""The composition root: builds the infrastructure, the flows and the gRPC server.

Interceptors, outermost first: observability (logs, metrics), errors → statuses (and
the call's deadline), then who may call what (the caller policy, or protected mode
without one; API keys resolved by ``flows.api_keys``). Calls beyond
``max_concurrent_rpcs`` are shed by gRPC with RESOURCE_EXHAUSTED instead of queueing
without bound.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import grpc
from grpc_health.v1 import health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from authsvc.edge.access_log import AccessLog, AccessLogMode
from authsvc.edge.caller_interceptor import CallerInterceptor
from authsvc.edge.caller_policy import SERVICES, Admission
from authsvc.edge.error_interceptor import ErrorInterceptor
from authsvc.edge.observability import ObservabilityInterceptor
from authsvc.edge.servicer import AuthServicer
from authsvc.edge.thread_pools import HotPath, StreamPool
from authsvc.edge.worker_tag import WorkerTag
from authsvc.errors import CodeInvalid, InvalidCredentials, TokenInvalid
from authsvc.flows.accounts import Accounts
from authsvc.flows.api_keys import ApiKeys
from authsvc.flows.audit_trail import AuditTrail
from authsvc.flows.changes import Changes
from authsvc.flows.credentials import Credentials
from authsvc.flows.email_verification import EmailVerification
from authsvc.flows.event_feed import EventFeed, StreamSlots
from authsvc.flows.factors import FactorPolicy, Factors
from authsvc.flows.housekeeping import Housekeeping
from authsvc.flows.importing import Importing
from authsvc.flows.mailed_tokens import TokenCheck
from authsvc.flows.passkeys import Passkeys
from authsvc.flows.password_reset import PasswordReset
from authsvc.flows.second_factor import SecondFactorCheck
from authsvc.flows.secret_check import CheckEvents, SecretCheck
from authsvc.flows.service import Flows
from authsvc.flows.sessions import Sessions
from authsvc.flows.sign_in import SignIn, SignInPolicy
from authsvc.flows.step_up import StepUp
from authsvc.rules.audit import AuditEvent
from authsvc.rules.hash_capacity import HashCapacity
from authsvc.rules.hashing import Hasher
from authsvc.rules.passkeys import RelyingParty
from authsvc.rules.sessions import SessionPolicy
from authsvc.rules.throttling import ThrottlePolicy
from authsvc.rules.user_tokens import Purpose
from authsvc.rules.validation import TokenValidator
from authsvc.runtime import tls
from authsvc.runtime.health import SERVICE_NAME, DatabaseHealth
from authsvc.runtime.housekeeping import PurgeTimer
from authsvc.runtime.logs import AccessSummaries
from authsvc.runtime.metrics import Metrics, MetricsServer, start_metrics_server
from authsvc.runtime.settings import Settings
from authsvc.storage.engine import Database, make_engine
from authsvc.storage.event_wakeups import NotifiedWakeups, Wakeups
from authsvc.storage.invalidation import Listener
from authsvc.storage.models import utcnow
from authsvc.storage.purge import Retention
from authsvc.storage.read_model import Validated
from authsvc.storage.token_lookup import make_lookup
from authsvc.storage.validation_cache import ValidationCache
from authsvc_client.v1 import auth_service_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
MAX_MESSAGE_BYTES = 64 * 1024
#: Stream-pool threads beyond AUTHSVC_EVENT_STREAMS, which only refuse one stream too many.
_STREAM_REFUSERS = 4


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


#: Wrong reset or verification tokens allowed per hour across the whole service, before
#: everyone waits: 256-bit tokens cannot be guessed, so this only caps the rate of tries
#: (high enough that no one attacker's failures lock other users out for long).
TOKEN_FAILURES_PER_HOUR = 1000
HOUR = timedelta(hours=1)


def reset_start_throttle(settings: Settings) -> ThrottlePolicy:
    """The throttle of StartPasswordReset: every start counts, per email and per IP.

    Its IP keys are its own, so starting resets never eats an IP's sign-in budget.
    """
    limit = settings.reset_start_limit
    return ThrottlePolicy(
        scope="reset_start",
        threshold=limit,
        base_delay=HOUR,
        max_delay=HOUR,
        subject_limit=limit,
        subject_window=HOUR,
        ip_limit=4 * limit,
        ip_window=HOUR,
        forget_after=HOUR,
        own_ip_keys=True,
    )


def token_throttle(settings: Settings, purpose: Purpose) -> ThrottlePolicy:
    """The throttle of presented reset or verification tokens: a global subject per
    purpose, and the end user's IP (shared with sign-in: a wrong secret is a failure)."""
    return ThrottlePolicy(
        scope=f"{purpose.value}_token",
        threshold=TOKEN_FAILURES_PER_HOUR,
        base_delay=settings.throttle_base_delay,
        max_delay=settings.throttle_max_delay,
        subject_limit=TOKEN_FAILURES_PER_HOUR,
        subject_window=HOUR,
        ip_limit=settings.throttle_ip_limit,
        ip_window=settings.throttle_ip_window,
        forget_after=settings.throttle_forget_after,
    )


def second_factor_throttle(settings: Settings) -> ThrottlePolicy:
    """The throttle of TOTP and recovery codes, keyed by user (scope ``totp``).

    Tighter than passwords: a 6-digit code has three valid values in a million, so
    at most 10 wrong codes per user an hour (about 1 in 800,000 odds of a guess in
    that hour), with the same growing delay after the threshold.
    """
    return replace(
        sign_in_throttle(settings),
        scope="totp",
        threshold=min(3, settings.throttle_account_threshold),
        subject_limit=10,
        subject_window=timedelta(hours=1),
    )


def retention(settings: Settings) -> Retention:
    """What the purge keeps, from the settings (the longest of every policy's windows)."""
    policies = [
        sign_in_throttle(settings),
        reset_start_throttle(settings),
        token_throttle(settings, Purpose.RESET),
    ]
    return Retention(
        batch_size=settings.purge_batch_size,
        audit=settings.audit_retention,
        events=settings.event_retention,
        throttle_window=max(max(p.subject_window, p.ip_window) for p in policies),
        throttle_idle=max(p.forget_after for p in policies),
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
    #: Wakes this replica's event streams (PostgreSQL: on NOTIFY; SQLite: polling).
    wakeups: Wakeups

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
        lookup = make_lookup(settings.database_url, keep_idle=settings.validate_threads)
        validator = TokenValidator(lookup, cache, clock)
        # Other replicas' revocations reach the cache only through a LISTEN connection.
        listening = cache.size and not settings.is_sqlite
        listener = Listener(settings.database_url, cache) if listening else None
        wakeups = Wakeups() if settings.is_sqlite else NotifiedWakeups(settings.database_url)
        return cls(database, hasher, cache, validator, listener, wakeups)

    def start(self) -> None:
        """Starts the background parts (the invalidation and events listeners)."""
        if self.listener:
            self.listener.start()
        self.wakeups.start()

    def close(self) -> None:
        """Stops the background parts and closes every database connection."""
        if self.listener:
            self.listener.stop()
        self.wakeups.stop()
        self.validator.close()
        self.hasher.close()
        self.database.dispose()


def build_flows(settings: Settings, infra: Infrastructure, clock: Clock) -> Flows:
    """Every flow, wired to ``infra`` with the policies ``settings`` describe."""
    changes = Changes(infra.database, infra.cache, clock)
    codes = _second_factor_check(settings, changes)
    factors = _factors(settings, changes, infra, codes)
    signing_in = _sign_in(settings, infra, changes, codes)
    passkeys = _passkeys(settings, changes, factors, signing_in)
    return Flows(
        accounts=Accounts(changes, infra.hasher),
        sign_in=signing_in,
        sessions=Sessions(changes, infra.validator, session_policy(settings)),
        credentials=Credentials(
            changes,
            infra.hasher,
            _password_check(settings, changes, AuditEvent.PASSWORD_CHANGE_FAILED),
            infra.validator,
        ),
        audit_trail=AuditTrail(changes),
        housekeeping=Housekeeping(changes, retention(settings)),
        password_reset=_password_reset(settings, infra, changes),
        email_verification=EmailVerification(
            changes,
            _token_check(settings, changes, Purpose.VERIFICATION),
            settings.verification_ttl,
        ),
        api_keys=ApiKeys(changes, settings.api_key_cache_ttl),
        importing=Importing(changes),
        factors=factors,
        step_up=StepUp(
            changes,
            infra.validator,
            infra.hasher,
            _password_check(settings, changes, AuditEvent.REAUTHENTICATION_FAILED),
            codes,
            passkeys,
        ),
        passkeys=passkeys,
        events=EventFeed(
            changes,
            infra.wakeups,
            settings.event_heartbeat_interval,
            StreamSlots(settings.event_streams),
        ),
    )


def session_policy(settings: Settings) -> SessionPolicy:
    """Lifetimes and limits of sessions, from the settings."""
    return SessionPolicy(
        ttl=settings.session_ttl,
        refresh_ttl=settings.refresh_ttl,
        max_age=settings.session_max_age,
        max_per_user=settings.max_sessions_per_user,
    )


# Each password check audits its failure and its refusal under its own names; all share
# the account's throttle, so a password cannot be guessed through one of them instead.
_THROTTLED_AFTER = {
    AuditEvent.SIGN_IN_FAILED: AuditEvent.SIGN_IN_THROTTLED,
    AuditEvent.PASSWORD_CHANGE_FAILED: AuditEvent.PASSWORD_CHANGE_THROTTLED,
    AuditEvent.REAUTHENTICATION_FAILED: AuditEvent.REAUTHENTICATION_THROTTLED,
}


def _password_check(settings: Settings, changes: Changes, failed: AuditEvent) -> SecretCheck:
    events = CheckEvents(failed, _THROTTLED_AFTER[failed])
    return SecretCheck(changes, sign_in_throttle(settings), events, InvalidCredentials)


def _sign_in(
    settings: Settings, infra: Infrastructure, changes: Changes, codes: SecondFactorCheck
) -> SignIn:
    policy = SignInPolicy(
        settings.challenge_ttl, settings.require_mfa, settings.require_verified_email
    )
    check = _password_check(settings, changes, AuditEvent.SIGN_IN_FAILED)
    return SignIn(changes, infra.hasher, check, session_policy(settings), codes, policy)


def _password_reset(settings: Settings, infra: Infrastructure, changes: Changes) -> PasswordReset:
    starts = SecretCheck(
        changes,
        reset_start_throttle(settings),
        CheckEvents(AuditEvent.PASSWORD_RESET_STARTED, AuditEvent.PASSWORD_RESET_THROTTLED),
        TokenInvalid,  # never raised: starts are only counted, never verified
    )
    tokens = _token_check(settings, changes, Purpose.RESET)
    return PasswordReset(changes, infra.hasher, starts, tokens, settings.reset_ttl)


def _token_check(settings: Settings, changes: Changes, purpose: Purpose) -> TokenCheck:
    if purpose is Purpose.RESET:
        events = CheckEvents(AuditEvent.PASSWORD_RESET_FAILED, AuditEvent.PASSWORD_RESET_THROTTLED)
    else:
        events = CheckEvents(
            AuditEvent.EMAIL_VERIFICATION_FAILED, AuditEvent.EMAIL_VERIFICATION_THROTTLED
        )
    check = SecretCheck(changes, token_throttle(settings, purpose), events, TokenInvalid)
    return TokenCheck(changes, check, purpose, events.failed)


def _second_factor_check(settings: Settings, changes: Changes) -> SecondFactorCheck:
    events = CheckEvents(AuditEvent.TOTP_FAILED, AuditEvent.TOTP_THROTTLED)
    throttle = second_factor_throttle(settings)
    check = SecretCheck(changes, throttle, events, CodeInvalid)
    return SecondFactorCheck(changes, check, settings.secret_key)


def _factors(
    settings: Settings, changes: Changes, infra: Infrastructure, codes: SecondFactorCheck
) -> Factors:
    policy = FactorPolicy(
        settings.reauth_max_age, settings.challenge_ttl, settings.webauthn_rp_name
    )
    return Factors(changes, infra.validator, codes, settings.secret_key, policy)


def _passkeys(settings: Settings, changes: Changes, factors: Factors, sign_in: SignIn) -> Passkeys:
    rp = RelyingParty(settings.webauthn_rp_id, settings.webauthn_rp_name, settings.webauthn_origins)
    return Passkeys(changes, factors, rp, sign_in, settings.challenge_ttl)


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
    summaries: AccessSummaries | None = None  # with AUTHSVC_ACCESS_LOG=summary

    def stop(self, grace: float | None) -> None:
        """Refuses new calls, lets calls in flight finish within ``grace``, then closes."""
        self.health.stop()
        if self.purge_timer:
            self.purge_timer.stop()
        self.grpc_server.stop(grace).wait()
        if self.summaries:
            self.summaries.stop()  # after the drain: the last calls are summed up too
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
    health = DatabaseHealth(db, settings.health_interval.total_seconds())
    metrics = Metrics() if settings.metrics_address else None
    access_log = AccessLog(settings.access_log)
    interceptors = _interceptors(settings, (access_log, metrics, health), flows, worker)
    server = _grpc_server(settings, interceptors, worker)
    pb_grpc.add_AuthServiceServicer_to_server(servicer(flows), server)
    health_pb2_grpc.add_HealthServicer_to_server(health.servicer, server)
    reflection.enable_server_reflection([s.full_name for s in SERVICES], server)
    port = tls.add_port(server, settings)  # before anything connects to the database
    if port == 0:
        raise RuntimeError(f"cannot bind {settings.address}")
    metrics_server = _start_metrics(settings.metrics_address, metrics)
    infra.start()
    health.start()
    server.start()
    timer = _start_purge_timer(settings, flows)
    summaries = _start_summaries(settings, access_log)
    log.info("serving %s on port %d", SERVICE_NAME, port)
    _log_caller_mode(settings)
    started = AuthServer(server, flows, infra, health, port, metrics_server, timer, summaries)
    return started, port


def _grpc_server(
    settings: Settings, interceptors: list[grpc.ServerInterceptor], worker: bool
) -> grpc.Server:
    # Calls waiting in the replica's hash queue hold a handler thread each; threads for
    # as many as it admits keep ``rpc_threads`` free for the other calls, so a burst of
    # sign-ups on this worker never queues them behind it (ValidateToken has its own
    # pool, see ``HotPath``).
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


def _log_caller_mode(settings: Settings) -> None:
    """Says once, at start-up, who may call the privileged RPCs."""
    if settings.callers is None and not settings.privileged_from_anywhere:
        log.info(
            "protected mode: privileged RPCs answer loopback callers only; "
            "set AUTHSVC_CALLERS to allow other callers"
        )
    elif settings.callers is None:
        log.warning("AUTHSVC_PRIVILEGED_FROM_ANYWHERE: any peer may call the privileged RPCs")
    if settings.callers is not None and not settings.tls_cert:
        log.warning(
            "caller policy over plaintext: API keys cross the network readable; "
            "use TLS (AUTHSVC_TLS_CERT) unless the network between callers and authsvc is trusted"
        )


def _start_purge_timer(settings: Settings, flows: Flows) -> PurgeTimer | None:
    if not settings.purge_interval:
        return None
    timer = PurgeTimer(flows.housekeeping.purge, settings.purge_interval.total_seconds())
    timer.start()
    return timer


def _start_summaries(settings: Settings, access_log: AccessLog) -> AccessSummaries | None:
    if settings.access_log is not AccessLogMode.SUMMARY:
        return None
    summaries = AccessSummaries(access_log, settings.access_log_interval.total_seconds())
    summaries.start()
    return summaries


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
    settings: Settings,
    observers: tuple[AccessLog, Metrics | None, DatabaseHealth],
    flows: Flows,
    worker: bool,
) -> list[grpc.ServerInterceptor]:
    # Outermost first: observability must see the status ErrorInterceptor maps to, and
    # ErrorInterceptor maps the caller policy's denials. Health hears from the error
    # mapping the moment a call finds the database gone (or back).
    access_log, metrics, health = observers
    interceptors: list[grpc.ServerInterceptor] = [
        ObservabilityInterceptor(access_log, metrics),
        ErrorInterceptor(health),
    ]
    if worker:
        interceptors.insert(0, WorkerTag())
    # Outermost of all: grpcio reads the pool from the handler the whole chain returns.
    hot_pool = futures.ThreadPoolExecutor(settings.validate_threads, thread_name_prefix="hot")
    interceptors.insert(0, HotPath(hot_pool))
    # A few threads beyond the streams admitted: the one too many is refused, not queued.
    streams = settings.event_streams + _STREAM_REFUSERS
    stream_pool = futures.ThreadPoolExecutor(streams, thread_name_prefix="stream")
    interceptors.insert(0, StreamPool(stream_pool))
    admission = Admission(settings.callers, settings.privileged_from_anywhere)
    interceptors.append(
        CallerInterceptor(admission, flows.api_keys, flows.audit_trail.caller_denied)
    )
    return interceptors
