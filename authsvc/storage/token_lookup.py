"""ValidateToken's fast lookup: one indexed query on a raw DB-API connection, no ORM.

Every service calls ValidateToken on every request it serves, so this path skips what
the other flows pay for: no ORM unit of work, no transaction bracketing (the connection
is in autocommit mode: a lone SELECT needs no BEGIN/ROLLBACK round trips), no pool
machinery (a stack of idle connections under a lock: as many are open as validations
ran at once, not one per server thread, since threads waiting for a password hash
never validate), and on PostgreSQL a statement prepared once per connection. It never
writes. The query and the row mapping are the read model's (``storage.read_model``):
the statement is compiled for each database once, and the raw values go through the
columns' own result processors, so both paths see the same typed values.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, Protocol

import psycopg2
import psycopg2.errors
import psycopg2.extensions
import psycopg2.extras
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Dialect, make_url

from authsvc.storage import read_model
from authsvc.storage.engine import psycopg2_connect_args
from authsvc.storage.errors import StorageUnavailable
from authsvc.storage.read_model import Validated

log = logging.getLogger(__name__)

_Processor = Callable[[Any], Any] | None


class _Compiled:
    """The read model's statement as SQL text for one dialect, and its row converters."""

    def __init__(self, dialect: Dialect) -> None:
        self.sql = str(read_model.STATEMENT.compile(dialect=dialect))
        self._processors: list[_Processor] = [
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in read_model.STATEMENT.selected_columns
        ]

    def validated(self, row: tuple[Any, ...]) -> Validated:
        values = [
            v if p is None or v is None else p(v)
            for p, v in zip(self._processors, row, strict=True)
        ]
        return read_model.from_row(values)


class Lookup(Protocol):
    """Finds the user and session of a token digest in one round trip."""

    def find(self, digest: bytes) -> Validated | None: ...

    def close(self) -> None: ...


def make_lookup(database_url: str, keep_idle: int = 16) -> Lookup:
    """The lookup for a (normalized) database URL, keeping up to ``keep_idle`` idle connections."""
    if database_url.startswith("sqlite"):
        return SqliteLookup(database_url, keep_idle)
    return PostgresLookup(database_url, keep_idle)


class _Idle:
    """Idle DB-API connections, the last one put back first; broken ones replaced.

    A call takes one (``get``) and puts it back (``put``). Beyond ``keep`` idle ones,
    a connection put back is closed, so a burst of validations leaves no more open
    than usual.
    """

    def __init__(self, connect: Callable[[], Any], keep: int) -> None:
        self._connect = connect
        self._keep = keep
        self._lock = threading.Lock()
        self._idle: list[Any] = []
        self._closed = False

    def get(self) -> tuple[Any, bool]:
        """An idle connection, or a new one; and whether it was just opened."""
        with self._lock:
            if self._idle:
                return self._idle.pop(), False
        return self._connect(), True

    def put(self, conn: Any) -> None:
        """Gives ``conn`` back for the next call (or closes it when enough are idle)."""
        with self._lock:
            if not self._closed and len(self._idle) < self._keep:
                self._idle.append(conn)
                return
        _close_quietly(conn)

    def discard(self, conn: Any) -> None:
        """Closes a (broken) connection instead of putting it back."""
        _close_quietly(conn)

    def close(self) -> None:
        """Closes the idle connections, and any put back later (at server stop)."""
        with self._lock:
            conns, self._idle, self._closed = self._idle, [], True
        for conn in conns:
            _close_quietly(conn)


def _close_quietly(conn: Any) -> None:
    try:
        conn.close()
    except Exception:  # already broken: nothing left to release
        log.debug("closing a broken connection failed", exc_info=True)


class PostgresLookup:
    """psycopg2 in autocommit mode on an idle connection, with a prepared statement."""

    # A lost link, or a prepared statement the server no longer has (a pooler's
    # DISCARD ALL) or can no longer use (a migration changed the columns): reconnect.
    _broken = (
        psycopg2.OperationalError,
        psycopg2.InterfaceError,
        psycopg2.errors.InvalidSqlStatementName,
        psycopg2.errors.FeatureNotSupported,
    )
    _compiled = _Compiled(postgresql.psycopg2.dialect())  # type: ignore[no-untyped-call]
    _PREPARE = "PREPARE authsvc_validate (bytea) AS " + _compiled.sql.replace("%(digest)s", "$1")
    _EXECUTE = "EXECUTE authsvc_validate (%s)"

    def __init__(self, database_url: str, keep_idle: int = 16) -> None:
        self._args = psycopg2_connect_args(database_url)
        self._args.setdefault("application_name", "authsvc-validate")
        self._conns = _Idle(self._connect, keep_idle)

    def _connect(self) -> psycopg2.extensions.connection:
        try:
            conn: psycopg2.extensions.connection = psycopg2.connect(**self._args)
        except psycopg2.OperationalError as exc:
            raise StorageUnavailable(type(exc).__name__) from exc
        conn.autocommit = True
        # UUID columns as UUIDs, as the engine (SQLAlchemy registers it there) gives them.
        psycopg2.extras.register_uuid(conn_or_curs=conn)  # type: ignore[no-untyped-call]
        with conn.cursor() as cur:
            cur.execute("SET TIME ZONE 'UTC'")
            cur.execute(self._PREPARE)
        return conn

    def find(self, digest: bytes) -> Validated | None:
        """The row for ``digest``; a connection that broke since its last use is replaced once.

        Raises StorageUnavailable when the database cannot be reached.
        """
        conn, fresh = self._conns.get()
        try:
            with conn.cursor() as cur:
                cur.execute(self._EXECUTE, (digest,))
                row = cur.fetchone()
        except self._broken as exc:
            self._conns.discard(conn)
            if fresh:
                raise StorageUnavailable(type(exc).__name__) from exc
            return self.find(digest)  # e.g. the server restarted since: retry on a new one
        finally:
            if not conn.closed:
                self._conns.put(conn)
        return None if row is None else self._compiled.validated(row)

    def close(self) -> None:
        """Closes the idle connections (and those in use once put back)."""
        self._conns.close()


class SqliteLookup:
    """sqlite3 in autocommit mode on an idle connection to the database file."""

    _compiled = _Compiled(sqlite_dialect.pysqlite.dialect())

    def __init__(self, database_url: str, keep_idle: int = 16) -> None:
        self._path = make_url(database_url).database or ":memory:"
        self._conns = _Idle(self._connect, keep_idle)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self._path, timeout=30, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA query_only=ON")  # this path never writes
        return conn

    def find(self, digest: bytes) -> Validated | None:
        """The row for ``digest``. Raises StorageUnavailable when the file cannot be read."""
        conn, _ = self._conns.get()
        try:
            row = conn.execute(self._compiled.sql, (digest,)).fetchone()
        except sqlite3.OperationalError as exc:
            raise StorageUnavailable(type(exc).__name__) from exc
        finally:
            self._conns.put(conn)
        return None if row is None else self._compiled.validated(row)

    def close(self) -> None:
        """Closes the idle connections (and those in use once put back)."""
        self._conns.close()
