"""Migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError

from authsvc.storage import migrate
from authsvc.storage.engine import make_engine
from authsvc.storage.models import Base, User
from tests.conftest import create_pg_database, drop_pg_database


def _assert_matches_models(url: str) -> None:
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
            tables = set(inspect(conn).get_table_names())
        assert {"users", "sessions", "rotated_tokens"} <= tables
        with engine.connect() as conn:
            command.downgrade(migrate.alembic_config(conn), "base")
            conn.commit()
            assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
        migrate.upgrade(engine)  # and back up again
    finally:
        engine.dispose()


def test_sqlite_migrations_match_models(tmp_path):
    _assert_matches_models(f"sqlite:///{tmp_path / 'fresh.db'}")


def test_postgresql_migrations_match_models():
    url = create_pg_database("authsvc_schema")
    try:
        _assert_matches_models(url)
    finally:
        drop_pg_database(url)


def test_upgrade_twice_is_a_no_op(db_url):
    engine = make_engine(db_url)
    try:
        migrate.upgrade(engine)
        before = _schema(engine)
        migrate.upgrade(engine)
        assert _schema(engine) == before
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
            assert context.get_current_revision() == migrate.head_revision()
    finally:
        engine.dispose()


def _schema(engine):
    """Every table with its columns (name, type) and its indexes (name, columns)."""
    with engine.connect() as conn:
        inspector = inspect(conn)
        return {
            table: (
                [(c["name"], str(c["type"])) for c in inspector.get_columns(table)],
                sorted((i["name"], tuple(i["column_names"])) for i in inspector.get_indexes(table)),
            )
            for table in inspector.get_table_names()
        }


def test_times_are_the_writers_and_read_back_in_utc(database):
    written = datetime(2026, 3, 1, 12, 30, tzinfo=timezone(timedelta(hours=2)))
    with database.transaction() as db:
        user = User(email="t@example.com", first_name="T", last_name="U", password_hash="x")
        user.created_at = user.updated_at = written
        db.add(user)
    with database.transaction() as db:
        # No updated_at given: nothing sets one from the wall clock behind the writer.
        db.scalars(select(User)).one().first_name = "V"
    with database.transaction(writes=False) as db:
        user = db.scalars(select(User)).one()
    assert (user.first_name, user.created_at, user.updated_at) == ("V", written, written)
    assert user.created_at.utcoffset() == user.updated_at.utcoffset() == timedelta(0)


def test_a_row_without_its_times_is_refused(database):
    with pytest.raises(IntegrityError), database.transaction() as db:
        db.add(User(email="t@example.com", first_name="T", last_name="U", password_hash="x"))
