"""ValidateToken's hot path: SHA-256 of the token, then one indexed query, no ORM.

Every service calls ValidateToken on every request it serves, so this path skips what
the other use cases pay for: no ORM unit of work, no transaction bracketing (the
connection is in autocommit mode: a lone SELECT needs no BEGIN/ROLLBACK round trips),
no pool checkout (each server thread keeps its own connection), and a statement
prepared once per connection. It never writes. A validation cache
(``authsvc.validation_cache``) answers repeated tokens without the query at all.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import psycopg2
import psycopg2.errors
import psycopg2.extensions
from sqlalchemy.engine import make_url

from authsvc.db import psycopg2_connect_args
from authsvc.errors import TokenExpired, TokenInvalid
from authsvc.tokens import TokenKind, is_well_formed, token_hash
from authsvc.validation_cache import ValidationCache

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

# Sessions joined to their users through the unique index on sessions.token_hash.
_SELECT = (
    "SELECT u.id, u.email, u.first_name, u.last_name, u.created_at, u.updated_at,"
    " s.id, s.created_at, s.expires_at, s.refresh_expires_at, s.user_agent, s.ip_address"
    " FROM sessions AS s JOIN users AS u ON u.id = s.user_id WHERE s.token_hash = "
)
_PREPARE = "PREPARE authsvc_validate (bytea) AS " + _SELECT + "$1"
_EXECUTE = "EXECUTE authsvc_validate (%s)"
_SQLITE_QUERY = _SELECT + "?"


@dataclass(frozen=True, slots=True)
class UserView:
    """The public fields of a user, as ValidateToken returns them."""

    id: str
    email: str
    first_name: str
    last_name: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class SessionView:
    """The public fields of a session, as ValidateToken returns them."""

    id: str
    user_id: str
    created_at: datetime
    expires_at: datetime
    refresh_expires_at: datetime
    user_agent: str
    ip_address: str


@dataclass(slots=True, eq=False)
class Validated:
    """A live token's user and session (what the cache holds)."""

    user: UserView
    session: SessionView
    #: The response ``convert`` rendered for it, reused on every cache hit.
    rendered: Any = None

    @property
    def session_id(self) -> str:
        """The session's id (canonical UUID text), for invalidation."""
        return self.session.id

    @property
    def user_id(self) -> str:
        """The user's id (canonical UUID text), for invalidation."""
        return self.user.id


class Lookup(Protocol):
    """Finds the user and session of a token digest in one round trip."""

    def find(self, digest: bytes) -> Validated | None: ...

    def close(self) -> None: ...


class TokenValidator:
    """Validates session tokens through the cache, then the lookup."""

    def __init__(self, lookup: Lookup, cache: ValidationCache[Validated], clock: Clock) -> None:
        self.lookup = lookup
        self.cache = cache
        self._clock = clock

    def validate(self, session_token: str) -> Validated:
        """The user and session of a live token. Raises TokenInvalid or TokenExpired.

        A lost database raises the driver's OperationalError (→ DatabaseUnavailable).
        """
        if not is_well_formed(session_token, TokenKind.SESSION):
            raise TokenInvalid()
        digest = token_hash(session_token)
        cached = self.cache.get(digest)
        if cached is not None:
            return self._live(cached)  # a cached session expires like any other
        epoch = self.cache.epoch
        found = self.lookup.find(digest)
        if found is None:
            raise TokenInvalid()
        self.cache.put(digest, self._live(found), epoch)
        return found

    def _live(self, found: Validated) -> Validated:
        if self._clock() >= found.session.expires_at:
            raise TokenExpired()
        return found

    def close(self) -> None:
        """Closes the lookup's connections."""
        self.lookup.close()


def make_lookup(database_url: str) -> Lookup:
    """The lookup for a (normalized) database URL."""
    if database_url.startswith("sqlite"):
        return SqliteLookup(database_url)
    return PostgresLookup(database_url)


class _PerThread:
    """One DB-API connection per thread, all closed by ``close``; broken ones replaced."""

    def __init__(self, connect: Callable[[], Any]) -> None:
        self._connect = connect
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[Any] = []

    def get(self) -> tuple[Any, bool]:
        """This thread's connection and whether it was just opened."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return conn, False
        conn = self._connect()
        with self._lock:
            self._all.append(conn)
        self._local.conn = conn
        return conn, True

    def discard(self, conn: Any) -> None:
        """Forgets this thread's (broken) connection so the next call opens a new one."""
        self._local.conn = None
        with self._lock:
            if conn in self._all:
                self._all.remove(conn)
        _close_quietly(conn)

    def close(self) -> None:
        """Closes every connection (at server stop; threads are done with them)."""
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            _close_quietly(conn)


def _close_quietly(conn: Any) -> None:
    try:
        conn.close()
    except Exception:  # already broken: nothing left to release
        log.debug("closing a broken connection failed", exc_info=True)


class PostgresLookup:
    """psycopg2 in autocommit mode on a per-thread connection, with a prepared statement."""

    # A lost link, or a prepared statement the server no longer has (a pooler's
    # DISCARD ALL) or can no longer use (a migration changed the columns): reconnect.
    _broken = (
        psycopg2.OperationalError,
        psycopg2.InterfaceError,
        psycopg2.errors.InvalidSqlStatementName,
        psycopg2.errors.FeatureNotSupported,
    )

    def __init__(self, database_url: str) -> None:
        self._args = psycopg2_connect_args(database_url)
        self._args.setdefault("application_name", "authsvc-validate")
        self._conns = _PerThread(self._connect)

    def _connect(self) -> psycopg2.extensions.connection:
        conn: psycopg2.extensions.connection = psycopg2.connect(**self._args)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SET TIME ZONE 'UTC'")
            cur.execute(_PREPARE)
        return conn

    def find(self, digest: bytes) -> Validated | None:
        """The row for ``digest``; a connection that broke since its last use is replaced once."""
        conn, fresh = self._conns.get()
        try:
            with conn.cursor() as cur:
                cur.execute(_EXECUTE, (digest,))
                row = cur.fetchone()
        except self._broken:
            self._conns.discard(conn)
            if fresh:
                raise
            return self.find(digest)  # e.g. the server restarted since: retry on a new one
        return None if row is None else _validated(row)

    def close(self) -> None:
        """Closes every thread's connection."""
        self._conns.close()


class SqliteLookup:
    """sqlite3 in autocommit mode on a per-thread connection to the database file."""

    def __init__(self, database_url: str) -> None:
        self._path = make_url(database_url).database or ":memory:"
        self._conns = _PerThread(self._connect)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self._path, timeout=30, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA query_only=ON")  # this path never writes
        return conn

    def find(self, digest: bytes) -> Validated | None:
        """The row for ``digest``, decoded from SQLAlchemy's SQLite storage formats."""
        conn, _ = self._conns.get()
        row = conn.execute(_SQLITE_QUERY, (digest,)).fetchone()
        if row is None:
            return None
        uid, email, first, last, u_created, u_updated, sid, *times, agent, ip = row
        user_times = (_utc(u_created), _utc(u_updated))
        session_times = tuple(_utc(t) for t in times)
        return _validated(
            (_uuid(uid), email, first, last, *user_times, _uuid(sid), *session_times, agent, ip)
        )

    def close(self) -> None:
        """Closes every thread's connection."""
        self._conns.close()


def _validated(row: tuple[Any, ...]) -> Validated:
    uid, email, first, last, u_created, u_updated, sid, created, expires, refresh, agent, ip = row
    return Validated(
        UserView(uid, email, first, last, u_created, u_updated),
        SessionView(sid, uid, created, expires, refresh, agent, ip),
    )


def _uuid(value: str) -> str:
    # SQLAlchemy stores UUIDs on SQLite as 32 hex digits; PostgreSQL prints them dashed.
    h = value.replace("-", "")
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _utc(value: str) -> datetime:
    # SQLite holds the UTC wall time as text (see models.UTCDateTime).
    return datetime.fromisoformat(value).replace(tzinfo=UTC)
