"""The composition root: builds the infrastructure, the flows and the gRPC server.

Interceptors, outermost first: observability (logs, metrics), errors → statuses (and
the call's deadline), then who may call what (the caller policy, or protected mode
without one; API keys resolved by ``flows.api_keys``). Calls beyond
``max_concurrent_rpcs`` are shed by gRPC with RESOURCE_EXHAUSTED instead of queueing
without bound.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from datetime import datetime
from email.utils import parseaddr
from typing import NamedTuple

import grpc
from grpc_health.v1 import health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from authsvc.edge.access_log import AccessLog, AccessLogMode
from authsvc.edge.caller_interceptor import CallerInterceptor
from authsvc.edge.caller_policy import SERVICES, Admission
from authsvc.edge.error_interceptor import ErrorInterceptor
from authsvc.edge.observability import ObservabilityInterceptor
from authsvc.edge.pool_interceptors import (
    HOT_METHODS,
    REVOCATION_STREAMS,
    STREAM_METHODS,
    OwnPools,
)
from authsvc.edge.servicer import AuthServicer
from authsvc.edge.worker_tag import WorkerTag
from authsvc.errors import CodeInvalid, InvalidCredentials, TokenInvalid
from authsvc.flows.access_tokens import AccessTokens, TokenPolicy
from authsvc.flows.accounts import Accounts
from authsvc.flows.api_keys import ApiKeys
from authsvc.flows.audit_trail import AuditTrail
from authsvc.flows.changes import Changes
from authsvc.flows.code_check import CodeCheck
from authsvc.flows.email_verification import EmailVerification
from authsvc.flows.event_feed import EventFeed, StreamSlots
from authsvc.flows.factor_enrolment import FactorEnrolment, FactorPolicy
from authsvc.flows.housekeeping import Housekeeping
from authsvc.flows.importing import Importing
from authsvc.flows.mail_delivery import MailDelivery, MailDeliveryPolicy
from authsvc.flows.mail_outbox import MailPolicy, Outbox
from authsvc.flows.passkeys import Passkeys
from authsvc.flows.password_changes import PasswordChanges
from authsvc.flows.password_check import PasswordCheck
from authsvc.flows.password_reset import PasswordReset
from authsvc.flows.registry import Flows
from authsvc.flows.revocation_watch import RevocationWatch
from authsvc.flows.secret_check import CheckEvents, SecretCheck
from authsvc.flows.sessions import Sessions
from authsvc.flows.sign_in import SignIn, SignInPolicy
from authsvc.flows.step_up import StepUp
from authsvc.flows.token_check import TokenCheck
from authsvc.flows.webhooks import DeliveryPolicy, Webhooks
from authsvc.rules import revocations
from authsvc.rules.audit import AuditEvent
from authsvc.rules.hash_capacity import HashCapacity
from authsvc.rules.hashing import Hasher
from authsvc.rules.mail import MailKind
from authsvc.rules.mail_templates import MailTemplates
from authsvc.rules.passkeys import RelyingParty
from authsvc.rules.retention import retention
from authsvc.rules.sessions import SessionPolicy
from authsvc.rules.throttle_policies import (
    reset_start_throttle,
    second_factor_throttle,
    sign_in_throttle,
    sign_up_throttle,
    token_throttle,
)
from authsvc.rules.user_tokens import Purpose
from authsvc.rules.validation import TokenValidator
from authsvc.runtime import tls
from authsvc.runtime.health import SERVICE_NAME, DatabaseHealth
from authsvc.runtime.logs import AccessSummaries
from authsvc.runtime.mail_sender import MailSender
from authsvc.runtime.metrics import Metrics, MetricsServer, start_metrics_server
from authsvc.runtime.periodic import Periodic
from authsvc.runtime.settings import Settings
from authsvc.runtime.smtp import SmtpTransport
from authsvc.runtime.webhook_worker import WebhookWorker
from authsvc.setting_names import (
    AUTHSVC_CALLERS,
    AUTHSVC_PRIVILEGED_FROM_ANYWHERE,
    AUTHSVC_TLS_CERT,
)
from authsvc.storage import invalidation
from authsvc.storage.engine import Database, make_engine
from authsvc.storage.event_wakeups import NotifiedWakeups, Wakeups
from authsvc.storage.models import utcnow
from authsvc.storage.notifications import Listener
from authsvc.storage.read_model import Validated
from authsvc.storage.revocation_feed import RevocationFeed
from authsvc.storage.token_lookup import make_lookup
from authsvc.storage.validation_cache import ValidationCache
from authsvc_client.v1 import auth_service_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
MAX_MESSAGE_BYTES = 64 * 1024
#: Stream-pool threads beyond AUTHSVC_EVENT_STREAMS, which only refuse one stream too many.
_STREAM_REFUSERS = 4


#: How often the mail sender looks for due mail queued elsewhere (other processes or
#: replicas; this process's own changes wake it at once), in seconds.
MAIL_POLL_INTERVAL = 2.0


def mail_policy(settings: Settings) -> MailPolicy:
    """What authsvc mails, from the settings (nothing in ``caller`` mode)."""
    domain = parseaddr(settings.mail_from)[1].rpartition("@")[2]
    return MailPolicy(
        enabled=settings.sends_mail,
        notices=frozenset(MailKind(name) for name in settings.mail_notices),
        no_account_mail=settings.mail_no_account,
        verify_on_sign_up=settings.verify_email_on_sign_up,
        sign_up_enumeration_safe=settings.sign_up_enumeration_safe,
        recipient_limit=settings.mail_recipient_limit,
        domain=domain or "authsvc.invalid",
    )


def mail_delivery(settings: Settings, changes: Changes) -> MailDelivery:
    """The outbox's sender flow: smtplib to AUTHSVC_SMTP_URL (none in ``caller`` mode)."""
    url = settings.smtp_url
    timeout = settings.smtp_timeout.total_seconds()
    transport = SmtpTransport(url, settings.smtp_ca_file, timeout) if url else None
    policy = MailDeliveryPolicy(
        sender=settings.mail_from,
        links={
            MailKind.PASSWORD_RESET: settings.reset_url,
            MailKind.EMAIL_VERIFICATION: settings.verify_url,
        },
        # Longer than any one SMTP conversation (each step has the timeout).
        lease=4 * settings.smtp_timeout,
        retry_for=settings.mail_retry_for,
    )
    templates = MailTemplates(settings.mail_templates)
    return MailDelivery(changes, templates, settings.secret_key, transport, policy)


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
    #: The one LISTEN connection of the cache, the event streams and the feed
    #: (PostgreSQL; None on SQLite).
    listener: Listener | None
    #: Wakes this replica's event streams (PostgreSQL: on NOTIFY; SQLite: polling).
    wakeups: Wakeups
    feed: RevocationFeed

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
        listener = None if settings.is_sqlite else Listener(settings.database_url)
        if listener and cache.size:
            # Other replicas' revocations reach the cache only through the listener.
            invalidation.subscribe(listener, cache)
        wakeups = NotifiedWakeups(listener) if listener else Wakeups()
        feed = RevocationFeed(
            # Its own connection: the feed never waits behind the calls for the pool.
            Database(make_engine(settings.database_url, pool_size=1)),
            clock,
            (revocations.after, revocations.last_position),
            settings.revocation_heartbeat.total_seconds(),
            listener,
        )
        return cls(database, hasher, cache, validator, listener, wakeups, feed)

    def start(self) -> None:
        """Starts the background parts (the listener, the revocation feed)."""
        if self.listener:
            self.listener.start()
        self.feed.start()

    def close(self) -> None:
        """Stops the background parts and closes every database connection."""
        self.feed.stop()
        if self.listener:
            self.listener.stop()
        self.validator.close()
        self.hasher.close()
        self.database.dispose()


def build_flows(settings: Settings, infra: Infrastructure, clock: Clock) -> Flows:
    """Every flow, wired to ``infra`` with the policies ``settings`` describe."""
    outbox = Outbox(mail_policy(settings), settings.secret_key, threading.Event())
    changes = Changes(
        infra.database,
        infra.cache,
        clock,
        settings.access_token_ttl,
        infra.feed.wake,
        outbox=outbox,
    )
    tokens = AccessTokens(changes, settings.secret_key, token_policy(settings))
    codes = _second_factor_check(settings, changes)
    factors = _factors(settings, changes, infra, codes)
    signing_in = _sign_in(settings, infra, changes, codes, tokens)
    passkeys = _passkeys(settings, changes, factors, signing_in)
    verification = EmailVerification(
        changes,
        _token_check(settings, changes, Purpose.VERIFICATION),
        infra.validator,
        settings.verification_ttl,
    )
    return Flows(
        accounts=Accounts(changes, infra.hasher, _sign_ups(settings, changes), verification),
        sign_in=signing_in,
        sessions=Sessions(changes, infra.validator, session_policy(settings), tokens),
        password_changes=PasswordChanges(
            changes,
            infra.hasher,
            _password_check(settings, infra, changes, AuditEvent.PASSWORD_CHANGE_FAILED),
            infra.validator,
            settings.reauth_max_age,
        ),
        audit_trail=AuditTrail(changes),
        housekeeping=housekeeping(settings, changes, tokens),
        password_reset=_password_reset(settings, infra, changes),
        email_verification=verification,
        api_keys=ApiKeys(changes, settings.api_key_cache_ttl),
        importing=Importing(changes),
        factor_enrolment=factors,
        step_up=StepUp(
            changes,
            infra.validator,
            _password_check(settings, infra, changes, AuditEvent.REAUTHENTICATION_FAILED),
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
        webhooks=webhooks(settings, changes),
        access_tokens=tokens,
        revocation_watch=RevocationWatch(
            infra.feed, settings.revocation_heartbeat.total_seconds(), clock
        ),
        mail=mail_delivery(settings, changes),
    )


def token_policy(settings: Settings) -> TokenPolicy:
    """Access tokens' issuer, lifetime, claims and key rotation, from the settings."""
    return TokenPolicy(
        issuer=settings.issuer,
        ttl=settings.access_token_ttl,
        jwks_refresh=settings.jwks_refresh,
        rotation=settings.signing_key_rotation,
        with_email=settings.access_token_email,
    )


def housekeeping(settings: Settings, changes: Changes, tokens: AccessTokens) -> Housekeeping:
    """The purge (``authsvc purge``, serve's timer), keeping what ``settings`` retain."""
    return Housekeeping(changes, retention(settings), tokens)


def webhooks(settings: Settings, changes: Changes) -> Webhooks:
    """The webhooks flow, with the delivery policy of ``settings``."""
    policy = DeliveryPolicy(
        settings.webhook_retry_schedule, settings.webhook_timeout, settings.webhook_allow_private
    )
    return Webhooks(changes, settings.secret_key, policy)


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


def _password_check(
    settings: Settings, infra: Infrastructure, changes: Changes, failed: AuditEvent
) -> PasswordCheck:
    events = CheckEvents(failed, _THROTTLED_AFTER[failed])
    check = SecretCheck(changes, sign_in_throttle(settings), events, InvalidCredentials)
    return PasswordCheck(infra.hasher, check)


def _sign_ups(settings: Settings, changes: Changes) -> SecretCheck:
    # Sign-ups are only counted, never verified: USER_CREATED stands in for a failure.
    events = CheckEvents(AuditEvent.USER_CREATED, AuditEvent.SIGN_UP_THROTTLED)
    return SecretCheck(changes, sign_up_throttle(settings), events, TokenInvalid)


def _sign_in(
    settings: Settings,
    infra: Infrastructure,
    changes: Changes,
    codes: CodeCheck,
    tokens: AccessTokens,
) -> SignIn:
    policy = SignInPolicy(
        settings.challenge_ttl, settings.require_mfa, settings.require_verified_email
    )
    passwords = _password_check(settings, infra, changes, AuditEvent.SIGN_IN_FAILED)
    return SignIn(changes, infra.hasher, passwords, session_policy(settings), codes, policy, tokens)


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


def _second_factor_check(settings: Settings, changes: Changes) -> CodeCheck:
    events = CheckEvents(AuditEvent.TOTP_FAILED, AuditEvent.TOTP_THROTTLED)
    throttle = second_factor_throttle(settings)
    check = SecretCheck(changes, throttle, events, CodeInvalid)
    return CodeCheck(changes, check, settings.secret_key)


def _factors(
    settings: Settings, changes: Changes, infra: Infrastructure, codes: CodeCheck
) -> FactorEnrolment:
    policy = FactorPolicy(
        settings.reauth_max_age, settings.challenge_ttl, settings.webauthn_rp_name
    )
    return FactorEnrolment(changes, infra.validator, codes, settings.secret_key, policy)


def _passkeys(
    settings: Settings, changes: Changes, factors: FactorEnrolment, sign_in: SignIn
) -> Passkeys:
    rp = RelyingParty(settings.webauthn_rp_id, settings.webauthn_rp_name, settings.webauthn_origins)
    return Passkeys(changes, factors, rp, sign_in, settings.challenge_ttl, settings.secret_key)


@dataclass
class AuthServer:
    """A started gRPC server and what it owns; ``stop()`` drains and releases all of it."""

    grpc_server: grpc.Server
    flows: Flows
    infra: Infrastructure
    health: DatabaseHealth
    port: int
    metrics: MetricsServer | None = None  # None unless AUTHSVC_METRICS_ADDRESS is set
    purge_timer: Periodic | None = None  # runs the housekeeping every AUTHSVC_PURGE_INTERVAL
    summaries: AccessSummaries | None = None  # with AUTHSVC_ACCESS_LOG=summary
    webhook_worker: WebhookWorker | None = None
    mail_sender: MailSender | None = None  # with AUTHSVC_MAIL_DELIVERY=smtp

    def stop(self, grace: float | None) -> None:
        """Refuses new calls, lets calls in flight finish within ``grace``, then closes."""
        self.health.stop()
        if self.purge_timer:
            self.purge_timer.stop()
        self.infra.feed.stop()  # ends the WatchRevocations streams: they never finish
        if self.mail_sender:
            self.mail_sender.stop()
        self.grpc_server.stop(grace).wait()
        if self.webhook_worker:
            self.webhook_worker.stop()
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
    _add_services(server, servicer(flows), health)
    port = _bind(server, settings)  # before anything connects to the database
    metrics_server = _start_metrics(settings.metrics_address, metrics)
    _first_signing_key(flows)
    infra.start()
    health.start()
    server.start()
    workers = _start_workers(settings, flows, infra, access_log)
    log.info("serving %s on port %d", SERVICE_NAME, port)
    _log_caller_mode(settings)
    return AuthServer(server, flows, infra, health, port, metrics_server, *workers), port


class _Workers(NamedTuple):
    """What a started server runs beside the RPCs (in ``AuthServer``'s field order)."""

    purge_timer: Periodic | None
    summaries: AccessSummaries | None
    webhook_worker: WebhookWorker
    mail_sender: MailSender | None


def _start_workers(
    settings: Settings, flows: Flows, infra: Infrastructure, access_log: AccessLog
) -> _Workers:
    """Starts the purge timer, the access-log summaries, the webhook worker and the mail
    sender, each only when ``settings`` ask for it (the webhook worker always)."""
    timer = _start_purge_timer(settings, flows)
    summaries = _start_summaries(settings, access_log)
    poll = settings.webhook_poll_interval.total_seconds()
    webhook_worker = WebhookWorker(flows.webhooks, poll, infra.wakeups)
    webhook_worker.start()
    return _Workers(timer, summaries, webhook_worker, _start_mail_sender(settings, flows))


def _add_services(
    server: grpc.Server, auth: pb_grpc.AuthServiceServicer, health: DatabaseHealth
) -> None:
    """AuthService, gRPC health and reflection (of every service it serves)."""
    pb_grpc.add_AuthServiceServicer_to_server(auth, server)
    health_pb2_grpc.add_HealthServicer_to_server(health.servicer, server)
    reflection.enable_server_reflection([s.full_name for s in SERVICES], server)


def _bind(server: grpc.Server, settings: Settings) -> int:
    """Binds ``settings.address`` (TLS when configured); returns the port. Raises
    RuntimeError when the address cannot be bound."""
    port = tls.add_port(server, settings)
    if port == 0:
        raise RuntimeError(f"cannot bind {settings.address}")
    return port


def _first_signing_key(flows: Flows) -> None:
    """Makes the first signing key (or rotates a due one) before the first sign-in."""
    try:
        flows.access_tokens.housekeep()
    except Exception:  # the database is away: the purge timer tries again
        log.warning("cannot prepare the signing keys", exc_info=True)


def _grpc_server(
    settings: Settings, interceptors: list[grpc.ServerInterceptor], worker: bool
) -> grpc.Server:
    # Calls waiting in the replica's hash queue hold a handler thread each; threads for
    # as many as it admits keep ``rpc_threads`` free for the other calls, so a burst of
    # sign-ups on this worker never queues them behind it (ValidateToken has its own
    # pool, see ``OwnPools``).
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
            "set %s to allow other callers",
            AUTHSVC_CALLERS,
        )
    elif settings.callers is None:
        log.warning("%s: any peer may call the privileged RPCs", AUTHSVC_PRIVILEGED_FROM_ANYWHERE)
    if settings.callers is not None and not settings.tls_cert:
        log.warning(
            "caller policy over plaintext: API keys cross the network readable; "
            "use TLS (%s) unless the network between callers and authsvc is trusted",
            AUTHSVC_TLS_CERT,
        )


def _start_purge_timer(settings: Settings, flows: Flows) -> Periodic | None:
    if not settings.purge_interval:
        return None
    interval = settings.purge_interval.total_seconds()
    timer = Periodic(flows.housekeeping.purge, interval, "purge")
    timer.start()
    return timer


def _start_mail_sender(settings: Settings, flows: Flows) -> MailSender | None:
    if not settings.sends_mail:
        return None
    sender = MailSender(flows.mail, MAIL_POLL_INTERVAL)
    sender.start()
    log.info("mail delivery: smtp via %s", settings.smtp_url)
    return sender


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
    # A few threads beyond the streams admitted: the one too many is refused, not queued.
    streams = settings.event_streams + _STREAM_REFUSERS
    stream_pool = futures.ThreadPoolExecutor(streams, thread_name_prefix="stream")
    # Verifiers' revocation streams: as many threads as calls may be in progress.
    verifiers = futures.ThreadPoolExecutor(settings.max_concurrent_rpcs, thread_name_prefix="feed")
    pools = {
        **dict.fromkeys(HOT_METHODS, hot_pool),
        **dict.fromkeys(STREAM_METHODS, stream_pool),
        **dict.fromkeys(REVOCATION_STREAMS, verifiers),
    }
    interceptors.insert(0, OwnPools(pools))
    admission = Admission(
        settings.callers, settings.privileged_from_anywhere, tokens_mailed=settings.sends_mail
    )
    interceptors.append(
        CallerInterceptor(admission, flows.api_keys, flows.audit_trail.caller_denied)
    )
    return interceptors
