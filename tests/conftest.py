"""Real databases (SQLite and PostgreSQL), a real in-process gRPC server, a real stub.

Every test that uses ``db_url`` (directly or through ``server``/``stub``) runs on both
databases. PostgreSQL is never skipped: if it cannot be reached the tests fail.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from authsvc.runtime.assembly import AuthServer, create_server
from authsvc.runtime.settings import Settings, normalize_database_url
from authsvc.storage import migrate
from authsvc.storage.engine import Database, make_engine
from authsvc_client.v1 import auth_service_pb2_grpc as pb_grpc
from tests import leak_watch


def pytest_configure(config: pytest.Config) -> None:
    leak_watch.install(leak_watch.WATCH)


@pytest.fixture(autouse=True)
def no_secret_reaches_the_logs() -> Iterator[None]:
    """Fails a test during which a password, token, token hash or password hash was logged."""
    leak_watch.attach(leak_watch.WATCH)
    root = logging.getLogger()
    handlers = list(root.handlers)
    since = leak_watch.WATCH.mark()
    yield
    # A test that configured logging (``configure_logging``, the CLI) left a handler on
    # its captured stderr, closed now: later tests' background threads would log into it.
    root.handlers[:] = handlers
    leaks = leak_watch.WATCH.leaks(since)
    assert not leaks, f"secrets in the logs: {leaks}"


PG_ADMIN_URL = normalize_database_url(
    os.environ.get("AUTHSVC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
)
CHEAP_HASH = "pbkdf2:sha256:1000"  # tests of hashing itself use the real default
TABLES = (
    "challenges",
    "recovery_codes",
    "totp_factors",
    "passkeys",
    "rotated_tokens",
    "sessions",
    "user_tokens",
    "users",
    "throttle_failures",
    "throttle_counters",
    "audit_events",
    "api_keys",
    "events",
    "webhook_deliveries",
    "webhooks",
    "signing_keys",
    "revocations",
    "mail_outbox",
)


class FakeClock:
    """An injectable clock that only moves when told to."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def create_pg_database(prefix: str = "authsvc_test") -> str:
    """Creates a fresh PostgreSQL database and returns its URL (fails loudly if down)."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def drop_pg_database(url: str) -> None:
    """Drops a database made by ``create_pg_database``, ending its connections."""
    name = make_url(url).database
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def migrated_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A database upgraded to head, one per backend for the whole run."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'authsvc.db'}"
    else:
        url = create_pg_database()
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    yield url
    if request.param == "postgresql":
        drop_pg_database(url)


@pytest.fixture
def db_url(migrated_url: str) -> Iterator[str]:
    """The migrated database of this backend, emptied before each test."""
    engine = make_engine(migrated_url)
    with engine.begin() as conn:
        for table in TABLES:
            conn.execute(text(f"DELETE FROM {table}"))
    engine.dispose()
    yield migrated_url


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_settings(db_url: str) -> Callable[..., Settings]:
    """Settings for a test server: port 0, the test database, a cheap hash."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "address": "127.0.0.1:0",
            "database_url": db_url,
            "password_hash": CHEAP_HASH,
            "rpc_threads": 8,
            "hash_concurrency": 4,
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def start_server(
    make_settings: Callable[..., Settings], clock: FakeClock
) -> Iterator[Callable[..., tuple[AuthServer, pb_grpc.AuthServiceStub]]]:
    """Starts servers with setting overrides; stops them after the test."""
    started: list[tuple[AuthServer, grpc.Channel]] = []

    def start(**overrides: Any) -> tuple[AuthServer, pb_grpc.AuthServiceStub]:
        server, port = create_server(make_settings(**overrides), clock=clock)
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        started.append((server, channel))
        return server, pb_grpc.AuthServiceStub(channel)

    yield start
    for server, channel in started:
        channel.close()
        server.stop(0)


@pytest.fixture
def server_and_stub(
    start_server: Callable[..., tuple[AuthServer, pb_grpc.AuthServiceStub]],
) -> tuple[AuthServer, pb_grpc.AuthServiceStub]:
    return start_server()


@pytest.fixture
def stub(server_and_stub: tuple[AuthServer, pb_grpc.AuthServiceStub]) -> pb_grpc.AuthServiceStub:
    """A real stub on a real server with default settings (cheap hash)."""
    return server_and_stub[1]


@pytest.fixture
def channel(server_and_stub: tuple[AuthServer, pb_grpc.AuthServiceStub]) -> Iterator[grpc.Channel]:
    """Another channel to the default test server (for health, reflection, raw calls)."""
    with grpc.insecure_channel(f"127.0.0.1:{server_and_stub[0].port}") as channel:
        yield channel


@pytest.fixture
def database(db_url: str) -> Iterator[Database]:
    """Direct access to the test database, to assert on what it holds."""
    db = Database(make_engine(db_url))
    yield db
    db.dispose()


# --- Live address for out-of-process callers (buf curl, the TypeScript client) ---


@pytest.fixture
def server_address(server_and_stub: tuple[AuthServer, pb_grpc.AuthServiceStub]) -> str:
    """``host:port`` of the default test server, for callers in other processes."""
    return f"127.0.0.1:{server_and_stub[0].port}"
