"""Alembic environment: the models' metadata, and a connection from authsvc.migrate.

Run by ``authsvc migrate`` (which passes an open connection holding the migration
lock) or by the ``alembic`` command, which reads ``AUTHSVC_DATABASE_URL``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from authsvc.runtime.settings import load_settings
from authsvc.storage.engine import make_engine
from authsvc.storage.models import Base

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    """Migrates over the given connection, or one from the settings."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(load_settings().database_url)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


main()
