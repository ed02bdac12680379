"""Settings: one typed object built once at start-up from flags and ``AUTHSVC_*``.

Each setting is declared once, below, as a field of ``Settings``: its environment
variable (named by a constant of ``authsvc.setting_names``, which every layer may import
to name a setting), its ``authsvc`` flag (if any), its parser, its default, its check and a
one-line doc, in a group. Loading, the command line's flags and the README's settings
table (``python -m authsvc.runtime.settings``) all come from that declaration.
Nothing else in authsvc reads the environment; the settings are passed down.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from authsvc import setting_names as names
from authsvc.edge.access_log import AccessLogMode
from authsvc.edge.caller_policy import CallerPolicy, load_policy
from authsvc.rules.mail import NOTICES
from authsvc.rules.mail_templates import MailTemplates, TemplateProblem
from authsvc.rules.passwords import dummy_hash
from authsvc.rules.secrets_at_rest import SecretKeys
from authsvc.rules.users import IMPORT_BATCH_MAX
from authsvc.rules.values import Rejected, email
from authsvc.runtime.smtp import SmtpUrl
from authsvc.setting_names import NOT_SETTINGS, NOT_SETTINGS_PREFIX, PREFIX

DEFAULT_CACHE_SIZE = 10_000
#: Standard Webhooks' suggested schedule: retries for about 27 hours after the first try.
DEFAULT_WEBHOOK_RETRIES = tuple(
    timedelta(seconds=s) for s in (5, 300, 1800, 7200, 18000, 36000, 36000)
)
LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class ConfigError(ValueError):
    """A setting has a value authsvc cannot use; the message names the setting."""


class Group(enum.Enum):
    """The sections of the settings table."""

    SERVER = "Server"
    DATABASE = "Database"
    SESSIONS = "Sessions"
    PASSWORDS = "Passwords"
    THROTTLING = "Throttling and audit"
    SECURITY = "Who may call"
    PERFORMANCE = "Performance"
    OBSERVABILITY = "Observability"
    LIFECYCLE = "Account lifecycle"
    MFA = "Multi-factor"
    WEBHOOKS = "Webhooks"
    TOKENS = "Access tokens"
    MAIL = "Mail"


# Parsers: text → value, raising ValueError with a message that names no setting.

_DURATION = re.compile(r"^\s*(\d+)\s*(ms|s|m|h|d)\s*$")
_UNITS = {
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
}


def parse_duration(text: str) -> timedelta:
    """Parses ``90s``, ``15m``, ``1h``, ``7d`` (or ``250ms``); raises ValueError."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration like 90s, 15m, 1h or 7d")
    return int(match.group(1)) * _UNITS[match.group(2)]


def parse_int(text: str) -> int:
    """Parses a whole number (``42``, ``-1``); raises ValueError naming the text."""
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number") from None


def parse_log_level(text: str) -> str:
    """A Python log level name, any case; raises ValueError listing the allowed ones."""
    level = text.strip().upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"{text!r} is not one of {', '.join(LOG_LEVELS)}")
    return level


def parse_duration_or_zero(text: str) -> timedelta:
    """Like ``parse_duration``, but a bare ``0`` (meaning "off") is accepted too."""
    return timedelta(0) if text.strip() == "0" else parse_duration(text)


_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


def parse_bool(text: str) -> bool:
    """Parses ``true``/``false`` (also ``1``/``0``, ``yes``/``no``, ``on``/``off``)."""
    value = text.strip().lower()
    if value not in _TRUE + _FALSE:
        raise ValueError(f"{text!r} is not true or false")
    return value in _TRUE


def parse_list(text: str) -> tuple[str, ...]:
    """A comma-separated list, each item trimmed, empty items dropped."""
    return tuple(item.strip() for item in text.split(",") if item.strip())


def normalize_database_url(url: str) -> str:
    """Selects psycopg2 for ``postgresql://``/``postgres://`` URLs; raises ValueError.

    SQLAlchemy 2.1 maps a bare ``postgresql://`` to psycopg 3, which authsvc does not use.
    """
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ValueError(
            f"{url!r} is not a database URL (postgresql://user:pass@host/db or sqlite:///path)"
        ) from exc
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg2")
    shown = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() not in ("postgresql", "sqlite"):
        raise ValueError(f"{shown!r}: only postgresql:// and sqlite:// URLs are supported")
    if parsed.get_backend_name() == "postgresql" and parsed.drivername != "postgresql+psycopg2":
        raise ValueError(f"{shown!r}: PostgreSQL URLs must use the psycopg2 driver")
    return parsed.render_as_string(hide_password=False)


def parse_durations(text: str) -> tuple[timedelta, ...]:
    """A comma-separated list of durations (``5s,5m,30m``); raises ValueError."""
    return tuple(parse_duration(item) for item in parse_list(text))


def parse_access_log(text: str) -> AccessLogMode:
    """``summary``, ``full`` or ``failures`` (any case); raises ValueError."""
    try:
        return AccessLogMode(text.strip().lower())
    except ValueError:
        names = ", ".join(mode.value for mode in AccessLogMode)
        raise ValueError(f"{text!r} is not one of {names}") from None


MAIL_DELIVERIES = ("caller", "smtp")
NOTICE_NAMES = tuple(kind.value for kind in NOTICES)


def parse_notices(text: str) -> tuple[str, ...]:
    """Notice names, comma-separated; ``none`` turns every notice off."""
    return () if text.strip().lower() == "none" else parse_list(text.lower())


def mail_address(text: str) -> str:
    """``addr@example.com`` or ``Name <addr@example.com>``; raises ValueError."""
    _name, address = parseaddr(text)
    try:
        email(address)
    except Rejected:
        raise ValueError(
            f"{text!r} is not an address like Example <no-reply@example.com>"
        ) from None
    return text.strip()


# Checks of one parsed value: None when fine, else what is wrong.


def _link(value: str) -> str | None:
    if not value:
        return None
    if not value.startswith(("https://", "http://")):
        return f"{value!r} must start with https:// (or http://)"
    return None if "{token}" in value else f"{value!r} must contain {{token}}"


def _directory(value: str) -> str | None:
    return None if not value or Path(value).is_dir() else f"{value} is not a directory"


def _notices(value: tuple[str, ...]) -> str | None:
    unknown = [v for v in value if v not in NOTICE_NAMES]
    return f"{unknown[0]!r} is not one of {', '.join(NOTICE_NAMES)}, none" if unknown else None


def _positive(value: timedelta) -> str | None:
    return None if value > timedelta(0) else "must be longer than 0 (e.g. 90s, 15m, 1h)"


def _heartbeat_interval(value: timedelta) -> str | None:
    # The contract promises a heartbeat at least every 10 s.
    ok = timedelta(0) < value <= timedelta(seconds=10)
    return None if ok else "must be longer than 0 and at most 10s"


def _not_negative_duration(value: timedelta) -> str | None:
    return None if value >= timedelta(0) else "must not be negative"


def _at_least(low: int, meaning: str = "") -> Callable[[int], str | None]:
    def check(value: int) -> str | None:
        return None if value >= low else f"must be {low}{meaning} or more"

    return check


def _host_port(value: str) -> str | None:
    if not value:
        return None
    _host, colon, port = value.rpartition(":")
    if colon and port.isdigit() and int(port) <= 65535:  # an empty host: every interface
        return None
    return "is not HOST:PORT (a port from 0 to 65535, e.g. 127.0.0.1:50051 or [::]:50051)"


def _pem(path: str) -> str | None:
    if not path:
        return None
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return f"cannot be read ({exc.strerror}): a readable PEM file is needed"
    return None if b"-----BEGIN " in data else "is not a PEM file"


def _hash_method(method: str) -> str | None:
    try:
        dummy_hash(method)
    except (ValueError, TypeError) as exc:
        return f"is not a Werkzeug hash method such as scrypt:32768:8:3 ({exc})"
    return None


@dataclass(frozen=True)
class Spec:
    """How one setting is given and documented."""

    env: str
    parse: Callable[[str], Any]
    doc: str
    group: Group
    #: The flag, and the ``authsvc`` commands that take it.
    flag: str = ""
    commands: tuple[str, ...] = ()
    check: Callable[[Any], str | None] | None = None
    #: How the default reads in the README, when not its plain text.
    shown_default: str = ""
    #: Older names still accepted (documented as deprecated).
    aliases: tuple[str, ...] = ()


def setting(
    default: Any, env: str, parse: Callable[[str], Any], doc: str, group: Group, **more: Any
) -> Any:
    """Declares a field of Settings together with its Spec."""
    return field(default=default, metadata={"spec": Spec(env, parse, doc, group, **more)})


_S, _D, _SE, _P, _T, _SEC, _PERF, _O, _L, _MFA, _WH, _AT, _M = (
    Group.SERVER,
    Group.DATABASE,
    Group.SESSIONS,
    Group.PASSWORDS,
    Group.THROTTLING,
    Group.SECURITY,
    Group.PERFORMANCE,
    Group.OBSERVABILITY,
    Group.LIFECYCLE,
    Group.MFA,
    Group.WEBHOOKS,
    Group.TOKENS,
    Group.MAIL,
)
_SERVE = ("serve",)
_TLS_FILE = ("serve", "health")


@dataclass(frozen=True)
class Settings:
    """Every setting of authsvc, with its default. See the README's settings table."""

    # Server
    address: str = setting(
        "127.0.0.1:50051",
        names.AUTHSVC_ADDRESS,
        str,
        "where to listen (`HOST:PORT`; port 0 picks one)",
        _S,
        flag="--address",
        commands=("serve", "health"),
        check=_host_port,
    )
    grace_period: timedelta = setting(
        timedelta(seconds=10),
        names.AUTHSVC_GRACE_PERIOD,
        parse_duration,
        "how long SIGTERM waits for calls in flight",
        _S,
        check=_positive,
        shown_default="10s",
    )
    health_interval: timedelta = setting(
        timedelta(seconds=5),
        names.AUTHSVC_HEALTH_INTERVAL,
        parse_duration,
        "how often health pings the database",
        _S,
        check=_positive,
        shown_default="5s",
    )
    # Database
    database_url: str = setting(
        "sqlite:///authsvc.db",
        names.AUTHSVC_DATABASE_URL,
        normalize_database_url,
        "`postgresql://user:pass@host/db` or `sqlite:///path`",
        _D,
        flag="--database-url",
        commands=(
            "serve",
            "migrate",
            "purge",
            "api-key",
            "import",
            "mail",
            "reencrypt-secrets",
            "webhook",
            "keys",
        ),
    )
    purge_interval: timedelta = setting(
        timedelta(minutes=15),
        names.AUTHSVC_PURGE_INTERVAL,
        parse_duration_or_zero,
        "purge timer inside `serve` (expired sessions, old audit events); `0` = off",
        _D,
        check=_not_negative_duration,
        shown_default="15m",
    )
    purge_batch_size: int = setting(
        1000,
        names.AUTHSVC_PURGE_BATCH_SIZE,
        parse_int,
        "rows deleted per purge transaction",
        _D,
        flag="--batch-size",
        commands=("purge",),
        check=_at_least(1),
    )
    # Sessions
    session_ttl: timedelta = setting(
        timedelta(hours=1),
        names.AUTHSVC_SESSION_TTL,
        parse_duration,
        "session token lifetime",
        _SE,
        check=_positive,
        shown_default="1h",
    )
    refresh_ttl: timedelta = setting(
        timedelta(days=7),
        names.AUTHSVC_REFRESH_TTL,
        parse_duration,
        "update token lifetime, renewed by each refresh",
        _SE,
        check=_positive,
        shown_default="7d",
    )
    session_max_age: timedelta = setting(
        timedelta(days=30),
        names.AUTHSVC_SESSION_MAX_AGE,
        parse_duration,
        "absolute session lifetime from sign-in",
        _SE,
        check=_positive,
        shown_default="30d",
    )
    max_sessions_per_user: int = setting(
        0,
        names.AUTHSVC_MAX_SESSIONS_PER_USER,
        parse_int,
        "live sessions per user, oldest ended first (0 = unlimited)",
        _SE,
        check=_at_least(0, " (unlimited)"),
    )
    # Passwords
    password_hash: str = setting(
        "scrypt:32768:8:3",
        names.AUTHSVC_PASSWORD_HASH,
        str,
        "Werkzeug hash method for new hashes",
        _P,
        check=_hash_method,
    )
    hash_concurrency: int = setting(
        0,
        names.AUTHSVC_HASH_CONCURRENCY,
        parse_int,
        "password hashes a replica computes at once, shared by its workers",
        _P,
        check=_at_least(0, " (the CPU count)"),
        shown_default="0: the CPU count",
    )
    hash_queue_timeout: timedelta = setting(
        timedelta(seconds=10),
        names.AUTHSVC_HASH_QUEUE_TIMEOUT,
        parse_duration,
        "wait for a hash slot before `OVERLOADED`, for calls without a deadline"
        " (others wait until their deadline)",
        _P,
        check=_not_negative_duration,
        shown_default="10s",
    )
    # Throttling and audit
    throttle_account_threshold: int = setting(
        5,
        names.AUTHSVC_THROTTLE_ACCOUNT_THRESHOLD,
        parse_int,
        "consecutive failures before an account's delay starts",
        _T,
        check=_at_least(1),
    )
    throttle_base_delay: timedelta = setting(
        timedelta(seconds=1),
        names.AUTHSVC_THROTTLE_BASE_DELAY,
        parse_duration,
        "the first delay; each further failure doubles it",
        _T,
        check=_positive,
        shown_default="1s",
    )
    throttle_max_delay: timedelta = setting(
        timedelta(minutes=15),
        names.AUTHSVC_THROTTLE_MAX_DELAY,
        parse_duration,
        "the longest delay",
        _T,
        check=_positive,
        shown_default="15m",
    )
    throttle_account_limit: int = setting(
        100,
        names.AUTHSVC_THROTTLE_ACCOUNT_LIMIT,
        parse_int,
        "most failures per account in any sliding window of …",
        _T,
        check=_at_least(1),
    )
    throttle_account_window: timedelta = setting(
        timedelta(hours=1),
        names.AUTHSVC_THROTTLE_ACCOUNT_WINDOW,
        parse_duration,
        "… this length",
        _T,
        check=_positive,
        shown_default="1h",
    )
    throttle_ip_limit: int = setting(
        50,
        names.AUTHSVC_THROTTLE_IP_LIMIT,
        parse_int,
        "most failures per end-user IP, across accounts, in any sliding window of …",
        _T,
        check=_at_least(1),
    )
    throttle_ip_window: timedelta = setting(
        timedelta(minutes=15),
        names.AUTHSVC_THROTTLE_IP_WINDOW,
        parse_duration,
        "… this length",
        _T,
        check=_positive,
        shown_default="15m",
    )
    throttle_forget_after: timedelta = setting(
        timedelta(days=1),
        names.AUTHSVC_THROTTLE_FORGET_AFTER,
        parse_duration,
        "quiet time after which an account's consecutive failures are forgotten",
        _T,
        check=_positive,
        shown_default="1d",
    )
    sign_up_limit: int = setting(
        20,
        names.AUTHSVC_SIGN_UP_LIMIT,
        int,
        "sign-ups (CreateUser) per end-user IP in any sliding hour, each one hashes",
        _T,
        check=_at_least(1),
    )
    audit_retention: timedelta = setting(
        timedelta(days=90),
        names.AUTHSVC_AUDIT_RETENTION,
        parse_duration,
        "age at which audit events are purged",
        _T,
        check=_positive,
        shown_default="90d",
    )
    event_retention: timedelta = setting(
        timedelta(days=7),
        names.AUTHSVC_EVENT_RETENTION,
        parse_duration,
        "age at which account events are purged (an older cursor gets CURSOR_EXPIRED)",
        _T,
        check=_positive,
        shown_default="7d",
    )
    # Who may call
    tls_cert: str = setting(
        "",
        names.AUTHSVC_TLS_CERT,
        str,
        "PEM file of the server certificate (chain); empty: plaintext",
        _SEC,
        flag="--tls-cert",
        commands=_TLS_FILE,
        check=_pem,
    )
    tls_key: str = setting(
        "",
        names.AUTHSVC_TLS_KEY,
        str,
        "PEM file of its private key (set both or neither)",
        _SEC,
        flag="--tls-key",
        commands=_TLS_FILE,
        check=_pem,
    )
    tls_client_ca: str = setting(
        "",
        names.AUTHSVC_TLS_CLIENT_CA,
        str,
        "CA that client certificates must chain to: mutual TLS",
        _SEC,
        flag="--tls-client-ca",
        commands=_SERVE,
        check=_pem,
    )
    tls_ca: str = setting(
        "",
        names.AUTHSVC_TLS_CA,
        str,
        "for `authsvc health`: the CA of the server certificate",
        _SEC,
        flag="--tls-ca",
        commands=("health",),
        check=_pem,
        shown_default="empty: system roots",
    )
    tls_server_name: str = setting(
        "",
        names.AUTHSVC_TLS_SERVER_NAME,
        str,
        "for `authsvc health`: the name to verify",
        _SEC,
        flag="--tls-server-name",
        commands=("health",),
        shown_default="empty: the address's host",
    )
    callers: CallerPolicy | None = setting(
        None,
        names.AUTHSVC_CALLERS,
        load_policy,
        "caller policy file (TOML or JSON): which caller (certificate identity or API key "
        "name) may call which RPC",
        _SEC,
        flag="--callers",
        commands=_SERVE,
        shown_default="empty: protected mode",
    )
    max_concurrent_rpcs: int = setting(
        100,
        names.AUTHSVC_MAX_CONCURRENT_RPCS,
        parse_int,
        "calls in progress before gRPC sheds more",
        _SEC,
        check=_at_least(1),
    )
    # Performance
    workers: int = setting(
        0,
        names.AUTHSVC_WORKERS,
        parse_int,
        "pre-forked server processes sharing the port",
        _PERF,
        flag="--workers",
        commands=_SERVE,
        check=_at_least(0, " (one per CPU)"),
        shown_default="0: the CPU count on PostgreSQL, 1 on SQLite",
    )
    rpc_threads: int = setting(
        16,
        names.AUTHSVC_RPC_THREADS,
        parse_int,
        "gRPC handler threads per process (and its database pool size)",
        _PERF,
        check=_at_least(1),
        aliases=(names.AUTHSVC_MAX_WORKERS,),
    )
    validate_threads: int = setting(
        4,
        names.AUTHSVC_VALIDATE_THREADS,
        parse_int,
        "handler threads per process for ValidateToken, apart from the other calls"
        " (and its idle database connections)",
        _PERF,
        check=_at_least(1),
    )
    event_streams: int = setting(
        32,
        names.AUTHSVC_EVENT_STREAMS,
        int,
        "concurrent WatchEvents streams per process, each holding a thread of its own"
        " (one more gets RESOURCE_EXHAUSTED)",
        _PERF,
        check=_at_least(1),
    )
    event_heartbeat_interval: timedelta = setting(
        timedelta(seconds=5),
        names.AUTHSVC_EVENT_HEARTBEAT_INTERVAL,
        parse_duration,
        "quiet time after which a WatchEvents stream sends a heartbeat (at most 10s)",
        _PERF,
        check=_heartbeat_interval,
        shown_default="5s",
    )
    validation_cache: int | None = setting(
        None,
        names.AUTHSVC_VALIDATION_CACHE,
        parse_int,
        "validation cache entries, 0 = off",
        _PERF,
        check=lambda v: None if v is None or v >= 0 else "must be 0 (off) or more",
        shown_default=f"{DEFAULT_CACHE_SIZE} where invalidation is guaranteed, else 0",
    )
    # Observability
    log_level: str = setting(
        "INFO",
        names.AUTHSVC_LOG_LEVEL,
        parse_log_level,
        "Python log level (`DEBUG`, `INFO`, `WARNING`, `ERROR`, `CRITICAL`)",
        _O,
    )
    log_format: str = setting(
        "text",
        names.AUTHSVC_LOG_FORMAT,
        str.lower,
        "`text` or `json` lines",
        _O,
        check=lambda v: None if v in LOG_FORMATS else "is not one of text, json",
    )
    metrics_address: str = setting(
        "",
        names.AUTHSVC_METRICS_ADDRESS,
        str.strip,
        "`HOST:PORT` of the Prometheus endpoint (`GET /metrics`)",
        _O,
        check=_host_port,
        shown_default="empty: off",
    )
    # Account lifecycle (issue 9): password reset, email verification
    reset_ttl: timedelta = setting(
        timedelta(hours=1),
        names.AUTHSVC_RESET_TTL,
        parse_duration,
        "lifetime of a password reset token",
        _L,
        check=_positive,
        shown_default="1h",
    )
    verification_ttl: timedelta = setting(
        timedelta(hours=24),
        names.AUTHSVC_VERIFICATION_TTL,
        parse_duration,
        "lifetime of an email verification token",
        _L,
        check=_positive,
        shown_default="24h",
    )
    require_verified_email: bool = setting(
        False,
        names.AUTHSVC_REQUIRE_VERIFIED_EMAIL,
        parse_bool,
        "refuse sign-in (`EMAIL_NOT_VERIFIED`) until the user verified the email",
        _L,
        shown_default="`false`",
    )
    reset_start_limit: int = setting(
        5,
        names.AUTHSVC_RESET_START_LIMIT,
        parse_int,
        "password resets started per email per hour (and 4 times that per end-user IP)",
        _L,
        check=_at_least(1),
    )

    # Who may call: protected mode and API keys (issue 9, callers)
    privileged_from_anywhere: bool = setting(
        False,
        names.AUTHSVC_PRIVILEGED_FROM_ANYWHERE,
        parse_bool,
        "without a caller policy, let any peer call the privileged RPCs (not only loopback); "
        "only behind your own network policy",
        _SEC,
        shown_default="`false`",
    )
    api_key_cache_ttl: timedelta = setting(
        timedelta(seconds=5),
        names.AUTHSVC_API_KEY_CACHE_TTL,
        parse_duration_or_zero,
        "how long a replica trusts a looked-up API key: the bound on how late a revocation "
        "reaches it; `0` = look up every call",
        _SEC,
        check=_not_negative_duration,
        shown_default="5s",
    )

    # Observability: fast default logging (issue 11, part 4)
    access_log: AccessLogMode = setting(
        AccessLogMode.SUMMARY,
        names.AUTHSVC_ACCESS_LOG,
        parse_access_log,
        "`summary`: a line per failed call, successes summed up per method every "
        "interval; `full`: a line per call; `failures`: failed calls only",
        _O,
        shown_default="`summary`",
    )
    access_log_interval: timedelta = setting(
        timedelta(minutes=1),
        names.AUTHSVC_ACCESS_LOG_INTERVAL,
        parse_duration,
        "how often `summary` writes its lines",
        _O,
        check=_positive,
        shown_default="1m",
    )
    # Importing users (issue 9)
    import_batch_size: int = setting(
        IMPORT_BATCH_MAX,
        names.AUTHSVC_IMPORT_BATCH_SIZE,
        parse_int,
        f"users per transaction of `authsvc import` (1 to {IMPORT_BATCH_MAX})",
        _D,
        flag="--batch-size",
        commands=("import",),
        check=lambda v: None if 1 <= v <= IMPORT_BATCH_MAX else f"must be 1 to {IMPORT_BATCH_MAX}",
    )
    # Multi-factor sign-in (issue 10)
    secret_key: SecretKeys = setting(
        SecretKeys(()),
        names.AUTHSVC_SECRET_KEY,
        SecretKeys.parse,
        "Fernet keys (comma-separated; the first encrypts, all decrypt) for TOTP secrets,"
        " passkey sign-in challenges, webhook secrets and access-token signing keys",
        _MFA,
        shown_default="empty: TOTP enrolment and passkey sign-in refused (`MFA_NOT_CONFIGURED`),"
        " webhooks too (`WEBHOOKS_NOT_CONFIGURED`)",
    )
    reauth_max_age: timedelta = setting(
        timedelta(minutes=15),
        names.AUTHSVC_REAUTH_MAX_AGE,
        parse_duration,
        "how recent a session's last authentication must be for sensitive calls",
        _MFA,
        check=_positive,
        shown_default="15m",
    )
    require_mfa: bool = setting(
        False,
        names.AUTHSVC_REQUIRE_MFA,
        parse_bool,
        "flag sign-ins of users without a second factor (`second_factor_enrollment_required`)",
        _MFA,
        shown_default="`false`",
    )
    challenge_ttl: timedelta = setting(
        timedelta(minutes=5),
        names.AUTHSVC_CHALLENGE_TTL,
        parse_duration,
        "lifetime of sign-in challenges, passkey ceremonies and TOTP enrolments",
        _MFA,
        check=_positive,
        shown_default="5m",
    )
    webauthn_rp_id: str = setting(
        "",
        names.AUTHSVC_WEBAUTHN_RP_ID,
        str.strip,
        "passkeys' relying party id (your site's domain)",
        _MFA,
        shown_default="empty: passkeys refused (`MFA_NOT_CONFIGURED`)",
    )
    webauthn_rp_name: str = setting(
        "authsvc",
        names.AUTHSVC_WEBAUTHN_RP_NAME,
        str.strip,
        "the service name shown by passkey prompts and authenticator apps",
        _MFA,
    )
    webauthn_origins: tuple[str, ...] = setting(
        (),
        names.AUTHSVC_WEBAUTHN_ORIGINS,
        parse_list,
        "origins passkey responses may come from (comma-separated)",
        _MFA,
        shown_default="empty: `https://` + the relying party id",
    )
    # Hash capacity per replica (issue 12)
    hash_queue_length: int = setting(
        64,
        names.AUTHSVC_HASH_QUEUE_LENGTH,
        parse_int,
        "calls a replica lets wait for a hash slot, across its workers; more get `OVERLOADED`"
        " at once",
        _P,
        check=_at_least(0),
    )
    # Start-up (issue 18)
    allow_unknown_settings: bool = setting(
        False,
        names.AUTHSVC_ALLOW_UNKNOWN_SETTINGS,
        parse_bool,
        f"start even when an `{PREFIX}*` variable is no setting (a typo, or a setting of "
        f"another version), with a warning; variables starting `{NOT_SETTINGS_PREFIX}` are "
        "never settings",
        _S,
        shown_default="`false`",
    )
    # Webhooks (issue 19)
    webhook_retry_schedule: tuple[timedelta, ...] = setting(
        DEFAULT_WEBHOOK_RETRIES,
        names.AUTHSVC_WEBHOOK_RETRY_SCHEDULE,
        parse_durations,
        "the waits before each retry of a failed webhook delivery (each plus 0-20% jitter); after "
        "the last, the delivery is kept as failed and its endpoint marked failing",
        _WH,
        check=lambda v: (
            None if v and all(d > timedelta(0) for d in v) else "must list durations longer than 0"
        ),
        shown_default="`5s,5m,30m,2h,5h,10h,10h` (27.6 h)",
    )
    webhook_timeout: timedelta = setting(
        timedelta(seconds=10),
        names.AUTHSVC_WEBHOOK_TIMEOUT,
        parse_duration,
        "how long one webhook attempt may take (connect, send, answer) before it is a failure",
        _WH,
        check=_positive,
        shown_default="10s",
    )
    webhook_allow_private: bool = setting(
        False,
        names.AUTHSVC_WEBHOOK_ALLOW_PRIVATE,
        parse_bool,
        "let webhooks reach private, loopback and link-local addresses (refused by default: SSRF)",
        _WH,
        shown_default="`false`",
    )
    webhook_poll_interval: timedelta = setting(
        timedelta(seconds=1),
        names.AUTHSVC_WEBHOOK_POLL_INTERVAL,
        parse_duration,
        "how often each replica looks for new events (PostgreSQL: also as they commit) and due "
        "webhook deliveries",
        _WH,
        check=_positive,
        shown_default="1s",
    )
    # Local verification of access tokens (issue 21)
    issuer: str = setting(
        "authsvc",
        names.AUTHSVC_ISSUER,
        str.strip,
        "the `iss` claim of access tokens (verifiers check it)",
        _AT,
        check=lambda v: None if v else "must not be empty",
    )
    access_token_ttl: timedelta = setting(
        timedelta(minutes=5),
        names.AUTHSVC_ACCESS_TOKEN_TTL,
        parse_duration,
        "access token lifetime (never beyond the session's expiry); access tokens need "
        f"`{names.AUTHSVC_SECRET_KEY}` (without it none are issued and the JWKS is empty)",
        _AT,
        check=_positive,
        shown_default="5m",
    )
    access_token_email: bool = setting(
        False,
        names.AUTHSVC_ACCESS_TOKEN_EMAIL,
        parse_bool,
        "add the user's `email` claim to access tokens",
        _AT,
        shown_default="`false`",
    )
    signing_key_rotation: timedelta = setting(
        timedelta(days=30),
        names.AUTHSVC_SIGNING_KEY_ROTATION,
        parse_duration_or_zero,
        "how long a signing key signs before the purge timer rotates it; `0` = only "
        "`authsvc keys rotate`",
        _AT,
        check=_not_negative_duration,
        shown_default="30d",
    )
    jwks_refresh: timedelta = setting(
        timedelta(minutes=5),
        names.AUTHSVC_JWKS_REFRESH,
        parse_duration,
        "how often verifiers refetch the JWKS: a new key is published this plus one "
        "access-token TTL before it signs",
        _AT,
        check=_positive,
        shown_default="5m",
    )
    revocation_heartbeat: timedelta = setting(
        timedelta(seconds=1),
        names.AUTHSVC_REVOCATION_HEARTBEAT,
        parse_duration,
        "how often WatchRevocations sends a heartbeat (at most 5s)",
        _AT,
        check=lambda v: None if timedelta(0) < v <= timedelta(seconds=5) else "must be 1ms to 5s",
        shown_default="1s",
    )
    # Mail authsvc sends itself (issue 20)
    mail_delivery: str = setting(
        "caller",
        names.AUTHSVC_MAIL_DELIVERY,
        str.lower,
        "`caller`: StartPasswordReset and StartEmailVerification return their tokens for "
        "the caller to mail, and authsvc sends nothing; `smtp`: authsvc mails the links and "
        "security notices itself, the tokens never leave it, and both RPCs are open to "
        "unprivileged callers",
        _M,
        check=lambda v: None if v in MAIL_DELIVERIES else f"{v!r} is not one of caller, smtp",
    )
    smtp_url: SmtpUrl | None = setting(
        None,
        names.AUTHSVC_SMTP_URL,
        SmtpUrl.parse,
        "`smtp://user:pass@host:587` (STARTTLS required unless `?starttls=false`) or "
        "`smtps://user:pass@host:465` (TLS throughout); required with `smtp`",
        _M,
    )
    smtp_ca_file: str = setting(
        "",
        names.AUTHSVC_SMTP_CA_FILE,
        str,
        "PEM file of the CA the SMTP server's certificate chains to (a private CA)",
        _M,
        check=_pem,
        shown_default="empty: system roots",
    )
    smtp_timeout: timedelta = setting(
        timedelta(seconds=30),
        names.AUTHSVC_SMTP_TIMEOUT,
        parse_duration,
        "timeout of each SMTP connection step; a claimed mail is retried after 4 times it",
        _M,
        check=_positive,
        shown_default="30s",
    )
    mail_from: str = setting(
        "",
        names.AUTHSVC_MAIL_FROM,
        mail_address,
        "the sender, `no-reply@example.com` or `Example <no-reply@example.com>`; required "
        "with `smtp`",
        _M,
    )
    reset_url: str = setting(
        "",
        names.AUTHSVC_RESET_URL,
        str.strip,
        "the password reset link, `{token}` where the token goes "
        "(`https://app.example.com/reset?token={token}`); required with `smtp`",
        _M,
        check=_link,
    )
    verify_url: str = setting(
        "",
        names.AUTHSVC_VERIFY_URL,
        str.strip,
        "the email verification link, with `{token}`; required with `smtp`",
        _M,
        check=_link,
    )
    mail_templates: str = setting(
        "",
        names.AUTHSVC_MAIL_TEMPLATES,
        str.strip,
        "directory of templates overriding the defaults, per locale (`de-CH/`, `de/`); "
        "checked at start-up",
        _M,
        check=_directory,
        shown_default="empty: the defaults",
    )
    mail_notices: tuple[str, ...] = setting(
        NOTICE_NAMES,
        names.AUTHSVC_MAIL_NOTICES,
        parse_notices,
        "the security notices sent (comma-separated), or `none`",
        _M,
        check=_notices,
        shown_default="all: " + ", ".join(f"`{n}`" for n in NOTICE_NAMES),
    )
    mail_no_account: bool = setting(
        False,
        names.AUTHSVC_MAIL_NO_ACCOUNT,
        parse_bool,
        'StartPasswordReset for an address with no account mails it "someone asked to '
        'reset a password for this address, but there is no account"',
        _M,
        shown_default="`false`",
    )
    verify_email_on_sign_up: bool = setting(
        False,
        names.AUTHSVC_VERIFY_EMAIL_ON_SIGN_UP,
        parse_bool,
        "CreateUser mails a verification link (needs `smtp`)",
        _M,
        shown_default="`false`",
    )
    sign_up_enumeration_safe: bool = setting(
        False,
        names.AUTHSVC_SIGN_UP_ENUMERATION_SAFE,
        parse_bool,
        "CreateUser for a taken email answers as for a new one (after the same work) and "
        'mails the owner "someone tried to sign up with your address" (needs `smtp`)',
        _M,
        shown_default="`false`",
    )
    mail_recipient_limit: int = setting(
        10,
        names.AUTHSVC_MAIL_RECIPIENT_LIMIT,
        int,
        "mails queued per recipient address per hour; more are dropped (and logged)",
        _M,
        check=_at_least(1),
    )
    mail_retry_for: timedelta = setting(
        timedelta(hours=48),
        names.AUTHSVC_MAIL_RETRY_FOR,
        parse_duration,
        "how long a mail is retried after SMTP 4xx replies or connection errors (with "
        "backoff from 5s to 1h); an SMTP 5xx fails it at once",
        _M,
        check=_positive,
        shown_default="48h",
    )

    def __post_init__(self) -> None:
        for name, spec in specs().items():
            value = getattr(self, name)
            problem = spec.check(value) if spec.check else None
            if problem:
                raise ConfigError(f"{spec.env}: {_shown_value(value)} {problem}")
        for check in _CROSS_CHECKS:
            check(self)

    @property
    def sends_mail(self) -> bool:
        """True when authsvc mails links and notices itself (``AUTHSVC_MAIL_DELIVERY=smtp``)."""
        return self.mail_delivery == "smtp"

    @property
    def is_sqlite(self) -> bool:
        """True when the database is SQLite (the embedded default)."""
        return self.database_url.startswith("sqlite")

    @property
    def worker_count(self) -> int:
        """Server processes for ``serve``: ``workers``, or its default for the database."""
        if self.workers:
            return self.workers
        return 1 if self.is_sqlite else os.cpu_count() or 1

    @property
    def hash_slots(self) -> int:
        """Concurrent password hashes in the whole replica, shared by all its workers.

        Slots belong to the replica, not to a worker: a caller's channel lands on one
        worker, which may then hash on every core (``rules.hash_capacity``).
        """
        return self.hash_concurrency or os.cpu_count() or 1

    @property
    def cache_size(self) -> int:
        """Entries of the validation cache (0: off).

        By default on only where every revocation reaches it: PostgreSQL (whose
        LISTEN listener feeds it) or SQLite served by a single process.
        """
        if self.validation_cache is not None:
            return self.validation_cache
        if self.is_sqlite and self.worker_count > 1:
            return 0
        return DEFAULT_CACHE_SIZE


def specs() -> dict[str, Spec]:
    """Every setting's Spec, by field name, in declaration order."""
    return {f.name: f.metadata["spec"] for f in dataclasses.fields(Settings)}


def env_names() -> dict[str, str]:
    """Maps each settings field to its environment variable."""
    return {name: spec.env for name, spec in specs().items()}


def _check_tls(s: Settings) -> None:
    if bool(s.tls_cert) != bool(s.tls_key):
        raise ConfigError(
            f"{names.AUTHSVC_TLS_CERT} and {names.AUTHSVC_TLS_KEY}: set both or neither"
        )
    if s.tls_client_ca and not s.tls_cert:
        raise ConfigError(
            f"{names.AUTHSVC_TLS_CLIENT_CA}: mutual TLS needs {names.AUTHSVC_TLS_CERT} and _KEY"
        )


def _check_protected_mode(s: Settings) -> None:
    if s.callers is not None and s.privileged_from_anywhere:
        raise ConfigError(
            f"{names.AUTHSVC_PRIVILEGED_FROM_ANYWHERE}: has no effect with a caller policy "
            f"({names.AUTHSVC_CALLERS} decides every call); unset one of them"
        )


def _check_cache(s: Settings) -> None:
    if s.is_sqlite and s.worker_count > 1 and s.cache_size > 0:
        raise ConfigError(
            f"{names.AUTHSVC_VALIDATION_CACHE}: SQLite cannot tell other worker processes about "
            f"revocations; use 0 with {names.AUTHSVC_WORKERS} above 1"
        )


def _check_rotation(s: Settings) -> None:
    lead = s.access_token_ttl + s.jwks_refresh
    if s.signing_key_rotation and s.signing_key_rotation <= lead:
        raise ConfigError(
            f"{names.AUTHSVC_SIGNING_KEY_ROTATION}: must exceed {names.AUTHSVC_ACCESS_TOKEN_TTL} "
            f"plus {names.AUTHSVC_JWKS_REFRESH} (a new key is published that long before it signs)"
        )


def _check_delays(s: Settings) -> None:
    if s.throttle_base_delay > s.throttle_max_delay:
        raise ConfigError(
            f"{names.AUTHSVC_THROTTLE_BASE_DELAY}: must not exceed "
            f"{names.AUTHSVC_THROTTLE_MAX_DELAY}"
        )


_SMTP_NEEDS = (
    ("smtp_url", names.AUTHSVC_SMTP_URL),
    ("mail_from", names.AUTHSVC_MAIL_FROM),
    ("reset_url", names.AUTHSVC_RESET_URL),
    ("verify_url", names.AUTHSVC_VERIFY_URL),
)


def _check_mail(s: Settings) -> None:
    if not s.sends_mail:
        for name, env in (
            ("verify_email_on_sign_up", names.AUTHSVC_VERIFY_EMAIL_ON_SIGN_UP),
            ("sign_up_enumeration_safe", names.AUTHSVC_SIGN_UP_ENUMERATION_SAFE),
            ("mail_no_account", names.AUTHSVC_MAIL_NO_ACCOUNT),
        ):
            if getattr(s, name):
                raise ConfigError(f"{env}: needs {names.AUTHSVC_MAIL_DELIVERY}=smtp")
        return
    for name, env in _SMTP_NEEDS:
        if not getattr(s, name):
            raise ConfigError(f"{env}: required with {names.AUTHSVC_MAIL_DELIVERY}=smtp")
    if not s.secret_key.configured:
        raise ConfigError(
            f"{names.AUTHSVC_SECRET_KEY}: required with {names.AUTHSVC_MAIL_DELIVERY}=smtp "
            "(queued mail keeps its link's token sealed with it)"
        )
    try:
        MailTemplates(s.mail_templates).check()
    except TemplateProblem as exc:
        raise ConfigError(f"{names.AUTHSVC_MAIL_TEMPLATES}: {exc}") from None


_CROSS_CHECKS: tuple[Callable[[Settings], None], ...] = (
    _check_tls,
    _check_protected_mode,
    _check_cache,
    _check_delays,
    _check_rotation,
    _check_mail,
)


def load_settings(
    environ: Mapping[str, str] | None = None, overrides: Mapping[str, str | None] | None = None
) -> Settings:
    """Builds Settings from the environment, then flag ``overrides`` (field → raw text).

    Raises ConfigError naming the first bad setting.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for name, spec in specs().items():
        flag_text = (overrides or {}).get(name)
        where, text = (
            (f"{spec.flag} ({spec.env})", flag_text) if flag_text else _from_env(environ, spec)
        )
        if not text:
            continue
        try:
            values[name] = spec.parse(text)
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        problem = spec.check(values[name]) if spec.check else None
        if problem:
            raise ConfigError(f"{where}: {_shown_value(text)} {problem}")
    values.setdefault("database_url", normalize_database_url(Settings.database_url))
    unknown = unknown_variables(environ)
    if unknown and not values.get("allow_unknown_settings", False):
        raise ConfigError(
            f"{unknown[0]}; set {names.AUTHSVC_ALLOW_UNKNOWN_SETTINGS}=true to start anyway"
        )
    return Settings(**values)


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """One message per ``AUTHSVC_*`` variable that is no setting (nor an alias, nor one of
    ``NOT_SETTINGS``), naming the closest known setting."""
    environ = os.environ if environ is None else environ
    known = [name for spec in specs().values() for name in (spec.env, *spec.aliases)]
    messages = []
    for name in sorted(environ):
        if not name.startswith(PREFIX) or name in known or name in NOT_SETTINGS:
            continue
        if name.startswith(NOT_SETTINGS_PREFIX):
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}?" if close else "see the settings table in README.md"
        messages.append(f"{name} is not an authsvc setting ({hint})")
    return messages


def _from_env(environ: Mapping[str, str], spec: Spec) -> tuple[str, str]:
    """(the variable it came from, its text), or ("", "") when unset."""
    for name in (spec.env, *spec.aliases):
        if environ.get(name):
            return name, environ[name]
    return "", ""


def _shown_value(value: object) -> str:
    """A bad value as an error message shows it (quoted text)."""
    if isinstance(value, timedelta):
        return repr(str(value))
    return repr(value) if isinstance(value, str) else repr(str(value))


def flags(command: str) -> Iterator[tuple[str, str, Spec]]:
    """(field, flag, spec) of every setting that ``authsvc COMMAND`` takes as a flag."""
    for name, spec in specs().items():
        if command in spec.commands:
            yield name, spec.flag, spec


def markdown_table() -> str:
    """The README's settings table, one section per group."""
    lines: list[str] = []
    for group in Group:
        lines += [
            f"**{group.value}**",
            "",
            "| variable | flag | default | meaning |",
            "|---|---|---|---|",
        ]
        for name, spec in specs().items():
            if spec.group is group:
                lines.append(_row(name, spec))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _row(name: str, spec: Spec) -> str:
    shown = spec.shown_default
    if shown and " " not in shown:
        shown = f"`{shown}`"  # a plain value, as written in the environment
    default = shown or _shown(Settings.__dataclass_fields__[name].default)
    flag = f"`{spec.flag}` ({', '.join(spec.commands)})" if spec.flag else ""
    doc = spec.doc + (
        f"; also read from `{'`, `'.join(spec.aliases)}` (deprecated)" if spec.aliases else ""
    )
    return f"| `{spec.env}` | {flag} | {default} | {doc} |"


def _shown(value: Any) -> str:
    if isinstance(value, timedelta):
        raise ValueError("durations need a shown_default")  # e.g. "15m", as users write it
    return f"`{value}`" if value not in ("", None) else "empty"


if __name__ == "__main__":
    sys.stdout.write(markdown_table())
