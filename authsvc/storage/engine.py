"""Engines and transactions. The flow that calls a rule owns its transaction."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg2
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session as DbSession
from sqlalchemy.orm import sessionmaker

from authsvc.storage.errors import StorageUnavailable
from authsvc.storage.pool import DeadlineQueuePool

log = logging.getLogger(__name__)

# Execution option marking a transaction that will write (SQLite takes the lock up front).
_WRITE_OPTION = "authsvc_writes"


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    """Creates the engine for ``url`` (already normalized by ``config``).

    PostgreSQL: pre-pinged pooled connections that fail fast when the server is gone.
    SQLite: WAL, foreign keys on, and ``BEGIN IMMEDIATE`` so writers queue on the
    database lock instead of failing to upgrade a read transaction.
    Both: waiting for a pooled connection ends at the calling RPC's deadline, and
    statement parameters (password and token hashes) are kept out of SQL logging and
    out of the text of database exceptions, which end up in tracebacks in the log.
    """
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"timeout": 30, "check_same_thread": False},
            poolclass=DeadlineQueuePool,
            hide_parameters=True,
        )
        _configure_sqlite(engine)
        return engine
    return create_engine(
        url,
        hide_parameters=True,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_timeout=5,
        poolclass=DeadlineQueuePool,
        connect_args={"connect_timeout": 3},
    )


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, issue BEGIN (pysqlite's own handling is off).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: an acknowledged commit survives a power loss, not only a crash.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        writes = conn.get_execution_options().get(_WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")


def psycopg2_connect_args(url: str) -> dict[str, Any]:
    """``psycopg2.connect`` keyword arguments for a PostgreSQL URL, failing fast like the pool."""
    parsed = make_url(url)
    args: dict[str, Any] = {
        "host": parsed.host,
        "port": parsed.port,
        "user": parsed.username,
        "password": parsed.password,
        "dbname": parsed.database,
    }
    args.update({k: v for k, v in parsed.query.items() if isinstance(v, str)})
    args.setdefault("connect_timeout", 3)
    return {k: v for k, v in args.items() if v is not None}


def is_connection_error(exc: BaseException) -> bool:
    """True when ``exc`` means the database could not be reached or the link broke."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, OperationalError):
        return True
    # Raw driver errors from the paths that bypass SQLAlchemy (storage.token_lookup).
    if isinstance(
        exc, psycopg2.OperationalError | psycopg2.InterfaceError | sqlite3.OperationalError
    ):
        return True
    # SQLAlchemy's pool timeout is not the builtin TimeoutError: no connection came free.
    return isinstance(exc, TimeoutError | PoolTimeout)


class Database:
    """The engine plus a session factory; ``transaction()`` is the unit of work."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions = sessionmaker(engine, expire_on_commit=False)

    @contextmanager
    def transaction(self, *, writes: bool = True) -> Iterator[DbSession]:
        """Yields a session in a transaction: commits when the block ends, rolls back when
        it raises.

        A lost database raises StorageUnavailable (from the driver's error).
        ``writes=False`` marks a read-only transaction.
        """
        session = self.sessions()
        try:
            if writes:
                session.connection(execution_options={_WRITE_OPTION: True})
            yield session
            session.commit()
        except BaseException as exc:
            _rollback_quietly(session)
            if is_connection_error(exc):
                raise StorageUnavailable(type(exc).__name__) from exc
            raise
        finally:
            session.close()

    def ping(self) -> bool:
        """True when the database answers ``SELECT 1``."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception as exc:  # any failure means "not answering"
            # Only the type: health polls this every few seconds through an outage, and
            # the driver's message adds nothing an operator needs that often.
            log.debug("database ping failed: %s", type(exc).__name__)
            return False

    def dispose(self) -> None:
        """Closes every pooled connection."""
        self.engine.dispose()


def _rollback_quietly(session: DbSession) -> None:
    try:
        session.rollback()
    except Exception:  # the link is gone: the server rolls back on its own
        log.debug("rollback failed", exc_info=True)


def connection_failure(url: str, error: BaseException) -> str | None:
    """One line saying where a connection to ``url`` failed and the driver's reason, when
    ``error`` is a failure to connect (None for any other error).

    The driver's text spans lines (hints, SQLAlchemy's link to its error page); only its
    reason stays, e.g. ``cannot connect to PostgreSQL at db:5432, database authsvc (user
    authsvc): Connection refused``.
    """
    if not isinstance(error, OperationalError):
        return None
    reason = " ".join(str(error.orig).split("\n")[0].split())
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return f"cannot open SQLite database {parsed.database or ':memory:'}: {reason}"
    # psycopg2: 'connection to server at "db" (10.0.0.7), port 5432 failed: <reason>'
    reason = reason.split(" failed: ", 1)[-1]
    where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    user = f" (user {parsed.username})" if parsed.username else ""
    return f"cannot connect to PostgreSQL at {where}, database {parsed.database}{user}: {reason}"


_ADVISORY_LOCK = text("SELECT pg_advisory_xact_lock(:key)")


def advisory_xact_lock(db: DbSession, key: int) -> None:
    """Serializes the transactions that take ``key`` until they end (PostgreSQL's
    transaction-scoped advisory lock). On SQLite it does nothing: the write transaction
    (BEGIN IMMEDIATE) already serializes every writer."""
    if db.get_bind().dialect.name == "postgresql":
        db.execute(_ADVISORY_LOCK, {"key": key})
