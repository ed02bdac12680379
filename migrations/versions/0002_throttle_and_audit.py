"""sign-in throttling state and the audit trail

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 06:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _base_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "throttle_counters",
        sa.Column("key", sa.LargeBinary(length=32), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("blocked_until", sa.DateTime(timezone=True), nullable=True),
        *_base_columns(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_throttle_counters")),
        sa.UniqueConstraint("key", name=op.f("uq_throttle_counters_key")),
    )
    with op.batch_alter_table("throttle_counters", schema=None) as batch_op:
        batch_op.create_index("ix_throttle_counters_updated_at", ["updated_at"], unique=False)

    op.create_table(
        "throttle_failures",
        sa.Column("key", sa.LargeBinary(length=32), nullable=False),
        *_base_columns(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_throttle_failures")),
    )
    with op.batch_alter_table("throttle_failures", schema=None) as batch_op:
        batch_op.create_index("ix_throttle_failures_created_at", ["created_at"], unique=False)
        batch_op.create_index(
            "ix_throttle_failures_key_created_at", ["key", "created_at"], unique=False
        )

    op.create_table(
        "audit_events",
        sa.Column("event", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("session_id", sa.Uuid(), nullable=True),
        sa.Column("ip_address", sa.String(length=45), nullable=False),
        sa.Column("user_agent", sa.String(length=512), nullable=False),
        sa.Column("detail", sa.String(length=256), nullable=False),
        *_base_columns(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index("ix_audit_events_created_at", ["created_at"], unique=False)
        batch_op.create_index(
            "ix_audit_events_user_id_created_at", ["user_id", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_user_id_created_at")
        batch_op.drop_index("ix_audit_events_created_at")
    op.drop_table("audit_events")

    with op.batch_alter_table("throttle_failures", schema=None) as batch_op:
        batch_op.drop_index("ix_throttle_failures_key_created_at")
        batch_op.drop_index("ix_throttle_failures_created_at")
    op.drop_table("throttle_failures")

    with op.batch_alter_table("throttle_counters", schema=None) as batch_op:
        batch_op.drop_index("ix_throttle_counters_updated_at")
    op.drop_table("throttle_counters")
