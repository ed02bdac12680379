"""Schema upgrades with Alembic, serialized across replicas.

On PostgreSQL the upgrade runs under an advisory lock, so replicas starting together
take turns and all but the first find nothing to do.
"""

from __future__ import annotations

import logging
from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

log = logging.getLogger(__name__)

# Arbitrary but fixed: "authsvc" as a 64-bit number, the key of the migration lock.
ADVISORY_LOCK_KEY = int.from_bytes(b"authsvc\x00", "big") >> 1


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic Config pointing at the migrations shipped in ``authsvc.migrations``."""
    config = Config()
    config.set_main_option("script_location", str(resources.files("authsvc.migrations")))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    """The newest revision the shipped migrations know."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Upgrades the schema to ``revision``, holding the advisory lock on PostgreSQL."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": ADVISORY_LOCK_KEY})
            conn.commit()
        try:
            command.upgrade(alembic_config(conn), revision)
            conn.commit()
        finally:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_LOCK_KEY})
                conn.commit()
    log.info("database schema is at %s", revision)
