"""Settings: one typed object built once at start-up from flags and ``AUTHSVC_*``.

Nothing else in authsvc reads the environment; the settings are passed down.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from authsvc.callers import CallerPolicy, load_policy
from authsvc.passwords import dummy_hash

_DURATION = re.compile(r"^\s*(\d+)\s*(ms|s|m|h|d)\s*$")
_UNITS = {
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
}


DEFAULT_CACHE_SIZE = 10_000


class ConfigError(ValueError):
    """A setting has a value authsvc cannot use; the message names the setting."""


def parse_duration(text: str) -> timedelta:
    """Parses ``90s``, ``15m``, ``1h``, ``7d`` (or ``250ms``); raises ValueError."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration like 90s, 15m, 1h or 7d")
    return int(match.group(1)) * _UNITS[match.group(2)]


def normalize_database_url(url: str) -> str:
    """Selects psycopg2 for ``postgresql://``/``postgres://`` URLs; raises ValueError.

    SQLAlchemy 2.1 maps a bare ``postgresql://`` to psycopg 3, which authsvc does not use.
    """
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ValueError(f"{url!r} is not a database URL") from exc
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg2")
    if parsed.get_backend_name() not in ("postgresql", "sqlite"):
        raise ValueError("only postgresql:// and sqlite:// URLs are supported")
    if parsed.get_backend_name() == "postgresql" and parsed.drivername != "postgresql+psycopg2":
        raise ValueError("PostgreSQL URLs must use the psycopg2 driver")
    return parsed.render_as_string(hide_password=False)


def parse_duration_or_zero(text: str) -> timedelta:
    """Like ``parse_duration``, but a bare ``0`` (meaning "off") is accepted too."""
    return timedelta(0) if text.strip() == "0" else parse_duration(text)


@dataclass(frozen=True)
class Settings:
    """Every setting of authsvc, with its default. See the README's table."""

    address: str = "127.0.0.1:50051"
    database_url: str = "sqlite:///authsvc.db"
    password_hash: str = "scrypt:32768:8:3"  # noqa: S105 (a method, not a password)
    session_ttl: timedelta = timedelta(hours=1)
    refresh_ttl: timedelta = timedelta(days=7)
    session_max_age: timedelta = timedelta(days=30)
    max_sessions_per_user: int = 0
    hash_concurrency: int = 0  # 0: the CPU count; shared by all workers of a replica
    grace_period: timedelta = timedelta(seconds=10)
    health_interval: timedelta = timedelta(seconds=5)
    max_workers: int = 16
    log_level: str = "INFO"
    # Observability and the Python client (issue 3): Prometheus endpoint, log format.
    metrics_address: str = ""
    log_format: str = "text"
    # Who may call and overload (issue 5): TLS, mutual TLS, caller policy, load shedding.
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""
    tls_ca: str = ""
    tls_server_name: str = ""
    callers: CallerPolicy | None = None
    max_concurrent_rpcs: int = 100
    # Performance and scale-out (issue 4): see the README's "Performance and scale-out".
    workers: int = 0  # 0: the CPU count on PostgreSQL, 1 on SQLite
    validation_cache: int | None = None  # None: on where invalidation is guaranteed
    hash_queue_timeout: timedelta = timedelta(seconds=2)
    purge_interval: timedelta = timedelta(minutes=15)  # 0: no purging inside serve
    purge_batch_size: int = 1000
    # Throttling and audit (issue 5): see the README's "Security: throttling and audit".
    throttle_account_threshold: int = 5
    throttle_base_delay: timedelta = timedelta(seconds=1)
    throttle_max_delay: timedelta = timedelta(minutes=15)
    throttle_account_limit: int = 100
    throttle_account_window: timedelta = timedelta(hours=1)
    throttle_ip_limit: int = 50
    throttle_ip_window: timedelta = timedelta(minutes=15)
    throttle_forget_after: timedelta = timedelta(days=1)
    audit_retention: timedelta = timedelta(days=90)

    def __post_init__(self) -> None:
        _check(self)

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
        """Concurrent password hashes in one server process.

        ``hash_concurrency`` bounds a whole replica, so its workers share it: N workers
        each hashing ``cores`` at once would oversubscribe the CPU N times and starve
        ValidateToken during a sign-in storm.
        """
        total = self.hash_concurrency or os.cpu_count() or 1
        return max(1, total // self.worker_count)

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


# Environment variable → (field, parser). Flags use the same parsers.
_ENV: dict[str, tuple[str, Any]] = {
    "AUTHSVC_ADDRESS": ("address", str),
    "AUTHSVC_DATABASE_URL": ("database_url", normalize_database_url),
    "AUTHSVC_PASSWORD_HASH": ("password_hash", str),
    "AUTHSVC_SESSION_TTL": ("session_ttl", parse_duration),
    "AUTHSVC_REFRESH_TTL": ("refresh_ttl", parse_duration),
    "AUTHSVC_SESSION_MAX_AGE": ("session_max_age", parse_duration),
    "AUTHSVC_MAX_SESSIONS_PER_USER": ("max_sessions_per_user", int),
    "AUTHSVC_HASH_CONCURRENCY": ("hash_concurrency", int),
    "AUTHSVC_GRACE_PERIOD": ("grace_period", parse_duration),
    "AUTHSVC_HEALTH_INTERVAL": ("health_interval", parse_duration),
    "AUTHSVC_MAX_WORKERS": ("max_workers", int),
    "AUTHSVC_LOG_LEVEL": ("log_level", str.upper),
    # Observability and the Python client (issue 3).
    "AUTHSVC_METRICS_ADDRESS": ("metrics_address", str.strip),
    "AUTHSVC_LOG_FORMAT": ("log_format", str.lower),
    # Who may call and overload (issue 5).
    "AUTHSVC_TLS_CERT": ("tls_cert", str),
    "AUTHSVC_TLS_KEY": ("tls_key", str),
    "AUTHSVC_TLS_CLIENT_CA": ("tls_client_ca", str),
    "AUTHSVC_TLS_CA": ("tls_ca", str),
    "AUTHSVC_TLS_SERVER_NAME": ("tls_server_name", str),
    "AUTHSVC_CALLERS": ("callers", load_policy),
    "AUTHSVC_MAX_CONCURRENT_RPCS": ("max_concurrent_rpcs", int),
    # Performance and scale-out (issue 4)
    "AUTHSVC_WORKERS": ("workers", int),
    "AUTHSVC_VALIDATION_CACHE": ("validation_cache", int),
    "AUTHSVC_HASH_QUEUE_TIMEOUT": ("hash_queue_timeout", parse_duration),
    "AUTHSVC_PURGE_INTERVAL": ("purge_interval", parse_duration_or_zero),
    "AUTHSVC_PURGE_BATCH_SIZE": ("purge_batch_size", int),
    # Throttling and audit (issue 5).
    "AUTHSVC_THROTTLE_ACCOUNT_THRESHOLD": ("throttle_account_threshold", int),
    "AUTHSVC_THROTTLE_BASE_DELAY": ("throttle_base_delay", parse_duration),
    "AUTHSVC_THROTTLE_MAX_DELAY": ("throttle_max_delay", parse_duration),
    "AUTHSVC_THROTTLE_ACCOUNT_LIMIT": ("throttle_account_limit", int),
    "AUTHSVC_THROTTLE_ACCOUNT_WINDOW": ("throttle_account_window", parse_duration),
    "AUTHSVC_THROTTLE_IP_LIMIT": ("throttle_ip_limit", int),
    "AUTHSVC_THROTTLE_IP_WINDOW": ("throttle_ip_window", parse_duration),
    "AUTHSVC_THROTTLE_FORGET_AFTER": ("throttle_forget_after", parse_duration),
    "AUTHSVC_AUDIT_RETENTION": ("audit_retention", parse_duration),
}


def env_names() -> dict[str, str]:
    """Maps each settings field to its environment variable."""
    return {field: name for name, (field, _) in _ENV.items()}


def load_settings(
    environ: Mapping[str, str] | None = None, overrides: Mapping[str, str | None] | None = None
) -> Settings:
    """Builds Settings from the environment, then flag ``overrides`` (field → raw text).

    Raises ConfigError naming the first bad setting.
    """
    environ = os.environ if environ is None else environ
    raw: dict[str, str] = {f: environ[n] for n, (f, _) in _ENV.items() if environ.get(n)}
    raw.update({k: v for k, v in (overrides or {}).items() if v is not None})
    parsers = {f: (n, p) for n, (f, p) in _ENV.items()}
    values: dict[str, Any] = {}
    for field, text in raw.items():
        name, parse = parsers[field]
        try:
            values[field] = parse(text)
        except ValueError as exc:
            raise ConfigError(f"{name}: {exc}") from None
    values.setdefault("database_url", normalize_database_url(Settings.database_url))
    return Settings(**values)


def _check(s: Settings) -> None:
    for name in ("session_ttl", "refresh_ttl", "session_max_age", "grace_period"):
        if getattr(s, name) <= timedelta(0):
            raise ConfigError(f"{env_names()[name]}: must be longer than 0")
    if s.max_sessions_per_user < 0:
        raise ConfigError("AUTHSVC_MAX_SESSIONS_PER_USER: must be 0 (unlimited) or more")
    if s.hash_concurrency < 0:
        raise ConfigError("AUTHSVC_HASH_CONCURRENCY: must be 0 (the CPU count) or more")
    if s.max_workers < 1:
        raise ConfigError("AUTHSVC_MAX_WORKERS: must be 1 or more")
    if ":" not in s.address:
        raise ConfigError(f"AUTHSVC_ADDRESS: {s.address!r} is not HOST:PORT")
    _check_throttle(s)
    try:
        dummy_hash(s.password_hash)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"AUTHSVC_PASSWORD_HASH: {s.password_hash!r}: {exc}") from None
    _check_observability(s)
    _check_security(s)
    _check_scale(s)


LOG_FORMATS = ("text", "json")


def _check_observability(s: Settings) -> None:
    if s.metrics_address and ":" not in s.metrics_address:
        raise ConfigError(f"AUTHSVC_METRICS_ADDRESS: {s.metrics_address!r} is not HOST:PORT")
    if s.log_format not in LOG_FORMATS:
        raise ConfigError(f"AUTHSVC_LOG_FORMAT: {s.log_format!r} is not one of text, json")


# Who may call and overload (issue 5).

_PEM_FILES = ("tls_cert", "tls_key", "tls_client_ca", "tls_ca")


def _check_security(s: Settings) -> None:
    if bool(s.tls_cert) != bool(s.tls_key):
        raise ConfigError("AUTHSVC_TLS_CERT and AUTHSVC_TLS_KEY: set both or neither")
    for field in _PEM_FILES:
        if getattr(s, field):
            _check_pem(env_names()[field], getattr(s, field))
    if s.tls_client_ca and not s.tls_cert:
        raise ConfigError("AUTHSVC_TLS_CLIENT_CA: mutual TLS needs AUTHSVC_TLS_CERT and _KEY")
    if s.callers is not None and not s.tls_client_ca:
        raise ConfigError("AUTHSVC_CALLERS: a caller policy needs AUTHSVC_TLS_CLIENT_CA (mTLS)")
    if s.max_concurrent_rpcs < 1:
        raise ConfigError("AUTHSVC_MAX_CONCURRENT_RPCS: must be 1 or more")


def _check_pem(name: str, path: str) -> None:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read {path}: {exc.strerror}") from None
    if b"-----BEGIN " not in data:
        raise ConfigError(f"{name}: {path} is not a PEM file")


def _check_scale(s: Settings) -> None:
    # Performance and scale-out (issue 4)
    if s.workers < 0:
        raise ConfigError("AUTHSVC_WORKERS: must be 0 (one per CPU) or more")
    if s.validation_cache is not None and s.validation_cache < 0:
        raise ConfigError("AUTHSVC_VALIDATION_CACHE: must be 0 (off) or more")
    if s.is_sqlite and s.worker_count > 1 and s.cache_size > 0:
        raise ConfigError(
            "AUTHSVC_VALIDATION_CACHE: SQLite cannot tell other worker processes about "
            "revocations; use 0 with AUTHSVC_WORKERS above 1"
        )
    if s.hash_queue_timeout < timedelta(0) or s.purge_interval < timedelta(0):
        raise ConfigError(
            "AUTHSVC_HASH_QUEUE_TIMEOUT and AUTHSVC_PURGE_INTERVAL: must not be negative"
        )
    if s.purge_batch_size < 1:
        raise ConfigError("AUTHSVC_PURGE_BATCH_SIZE: must be 1 or more")


def _check_throttle(s: Settings) -> None:
    names = env_names()
    for name in (
        "throttle_base_delay",
        "throttle_max_delay",
        "throttle_account_window",
        "throttle_ip_window",
        "throttle_forget_after",
        "audit_retention",
    ):
        if getattr(s, name) <= timedelta(0):
            raise ConfigError(f"{names[name]}: must be longer than 0")
    for name in ("throttle_account_threshold", "throttle_account_limit", "throttle_ip_limit"):
        if getattr(s, name) < 1:
            raise ConfigError(f"{names[name]}: must be 1 or more")
    if s.throttle_base_delay > s.throttle_max_delay:
        raise ConfigError("AUTHSVC_THROTTLE_BASE_DELAY: must not exceed AUTHSVC_THROTTLE_MAX_DELAY")
