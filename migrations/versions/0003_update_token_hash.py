"""call the update token's digest column what the API calls the token

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 21:40:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _rename(old: str, new: str) -> None:
    # Two steps: SQLite's batch mode recreates the table, and a constraint on the new
    # name can only be declared once the column has it.
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_constraint(f"uq_sessions_{old}", type_="unique")
        batch_op.alter_column(old, new_column_name=new)
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.create_unique_constraint(f"uq_sessions_{new}", [new])


def upgrade() -> None:
    _rename("refresh_token_hash", "update_token_hash")


def downgrade() -> None:
    _rename("update_token_hash", "refresh_token_hash")
