"""A fresh database per run, migrated by ``authsvc migrate`` and filled by COPY.

Sessions get tokens derived from their index and a per-run key, so every client process
can make a valid token for any session without the server's help; the stored digests
come from ``authsvc.tokens.token_hash``, exactly what the server computes.
"""

from __future__ import annotations

import io
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg2
from psycopg2 import sql
from werkzeug.security import generate_password_hash

from authsvc.rules.tokens import TokenKind, token_hash

PASSWORD = "bench-password-8c1f"
_CHUNK = 50_000


@dataclass(frozen=True)
class Tokens:
    """Makes the token of session ``i``: a random per-run part, then ``i`` in 11 digits.

    The 43-character body has the shape of ``secrets.token_urlsafe(32)``, so the server
    takes it for a real token; making one costs a string format, so clients can pick
    any session at random and 10^6 rows are quick to generate.
    """

    session_part: str
    update_part: str

    @classmethod
    def random(cls) -> Tokens:
        """Fresh random parts for one run."""
        return cls(secrets.token_urlsafe(24), secrets.token_urlsafe(24))  # 32 characters each

    def session(self, i: int) -> str:
        """The session token of session ``i``."""
        return f"{TokenKind.SESSION.value}{self.session_part}{i:011d}"

    def update(self, i: int) -> str:
        """The update token of session ``i``."""
        return f"{TokenKind.UPDATE.value}{self.update_part}{i:011d}"


def email(i: int) -> str:
    """The email of bench user ``i``."""
    return f"user{i}@bench.example"


@dataclass
class BenchDatabase:
    """A database created for one run: its URL, key, and how many rows it holds."""

    server_dsn: str  # the maintenance database on the same server
    name: str
    tokens: Tokens
    users: int = 0
    sessions: int = 0

    @property
    def dsn(self) -> str:
        """libpq DSN of this database."""
        return self.server_dsn.rsplit("/", 1)[0] + "/" + self.name

    @property
    def url(self) -> str:
        """The AUTHSVC_DATABASE_URL of this database."""
        return self.dsn.replace("postgresql://", "postgresql+psycopg2://", 1)


@contextmanager
def fresh_database(server_dsn: str) -> Iterator[BenchDatabase]:
    """Creates and migrates a uniquely named database; drops it afterwards."""
    name = f"authsvc_bench_{os.getpid()}_{secrets.token_hex(3)}"
    _admin(server_dsn, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    db = BenchDatabase(server_dsn, name, Tokens.random())
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSVC_")}
        env["AUTHSVC_DATABASE_URL"] = db.url
        subprocess.run([sys.executable, "-m", "authsvc", "migrate"], env=env, check=True)
        yield db
    finally:
        _admin(
            server_dsn,
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)),
        )


def _admin(dsn: str, statement: sql.Composable) -> None:
    conn = psycopg2.connect(dsn)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(statement)
    finally:
        conn.close()


def password_hash(method: str) -> str:
    """The stored hash of PASSWORD with ``method``; shared by all users (one hash, not 10^5)."""
    return generate_password_hash(PASSWORD, method=method)


def add_users(db: BenchDatabase, count: int, stored_hash: str) -> None:
    """Adds users ``db.users`` .. ``count - 1`` (all with PASSWORD)."""
    now = datetime.now(UTC).isoformat()
    rows = (
        f"{_user_id(i)}\t{email(i)}\tBench\tUser {i}\t{stored_hash}\t{now}\t{now}\n"
        for i in range(db.users, count)
    )
    _copy(
        db, "users", "id, email, first_name, last_name, password_hash, created_at, updated_at", rows
    )
    db.users = max(db.users, count)


def add_sessions(db: BenchDatabase, count: int) -> None:
    """Adds live sessions ``db.sessions`` .. ``count - 1``, spread over the users."""
    now = datetime.now(UTC)
    times = "\t".join(
        t.isoformat()
        for t in (
            now + timedelta(days=1),
            now + timedelta(days=7),
            now + timedelta(days=30),
            now,
            now,
        )
    )
    owners = [_user_id(u) for u in range(db.users)]
    rows = (
        f"{i + 1:032x}\t{owners[i % db.users]}\t{_bytea(db.tokens.session(i))}"
        f"\t{_bytea(db.tokens.update(i))}\t{times}\tauthsvc-bench\t127.0.0.1\n"
        for i in range(db.sessions, count)
    )
    columns = (
        "id, user_id, token_hash, update_token_hash, expires_at, refresh_expires_at,"
        " absolute_expires_at, created_at, updated_at, user_agent, ip_address"
    )
    _copy(db, "sessions", columns, rows, rebuild=count - db.sessions > 100_000)
    db.sessions = max(db.sessions, count)


def _bytea(token: str) -> str:
    # COPY's text format reads a backslash escape, so bytea's \\x prefix doubles it.
    return "\\\\x" + token_hash(token).hex()


def _user_id(i: int) -> str:
    # PostgreSQL reads a uuid from 32 hex digits; ids are made from indexes, like tokens.
    return f"{(1 << 127) | i:032x}"


def _copy(
    db: BenchDatabase, table: str, columns: str, rows: Iterator[str], rebuild: bool = False
) -> None:
    conn = psycopg2.connect(db.dsn)
    try:
        with conn, conn.cursor() as cur:
            # Maintaining random-key indexes row by row is what makes a big load slow;
            # ``rebuild`` drops the secondary indexes and builds them again, sorted, after.
            restore = _drop_secondary_indexes(cur, table) if rebuild else []
            # The rows reference users known to exist: skip the per-row foreign-key
            # triggers, as pg_restore does (needs a superuser, as the bench's DSN is).
            cur.execute("SET LOCAL session_replication_role = replica")
            cur.execute("SET LOCAL synchronous_commit = off")
            while chunk := [row for _, row in zip(range(_CHUNK), rows, strict=False)]:
                cur.copy_expert(f"COPY {table} ({columns}) FROM STDIN", io.StringIO("".join(chunk)))
            for statement in restore:
                cur.execute(statement)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f"VACUUM ANALYZE {table}")  # settle hint bits and statistics now
    finally:
        conn.close()


def _drop_secondary_indexes(cur: Any, table: str) -> list[str]:
    """Drops every index of ``table`` but its primary key; returns how to recreate them."""
    cur.execute(
        """
        SELECT pg_get_indexdef(i.indexrelid), c.conname, pg_get_constraintdef(c.oid),
               i.indexrelid::regclass::text
        FROM pg_index i
        LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid
        WHERE i.indrelid = %s::regclass AND NOT i.indisprimary
        """,
        (table,),
    )
    restore = []
    for indexdef, constraint, constraintdef, index in cur.fetchall():
        if constraint:
            cur.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{constraint}"')
            restore.append(f'ALTER TABLE {table} ADD CONSTRAINT "{constraint}" {constraintdef}')
        else:
            cur.execute(f"DROP INDEX {index}")
            restore.append(indexdef)
    return restore
