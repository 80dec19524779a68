"""The deadlines other services publish (contracts/deadlines.py), their latest state, for the scans.

Revision ID: notifications_0003
Revises: notifications_0002
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "notifications_0003"
down_revision = "notifications_0002"
branch_labels = None
depends_on = None

SCHEMA = "notifications"


def upgrade() -> None:
    op.create_table(
        "deadline",
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("due_date", sa.Date, nullable=False),
        sa.Column("time_zone", sa.Text, nullable=False),
        sa.Column("link", sa.Text, nullable=False),
        sa.Column("owner", sa.Text),
        sa.Column("amount_at_stake", sa.Numeric(18, 2)),
        sa.Column("currency", sa.String(3)),
        sa.PrimaryKeyConstraint("key", name="deadline_pkey"),
        schema=SCHEMA,
    )
    # The hourly scan reads open deadlines only.
    op.create_index("deadline_due_date_idx", "deadline", ["due_date"], schema=SCHEMA,
                    postgresql_where=sa.text("status = 'open'"))


def downgrade() -> None:
    op.drop_table("deadline", schema=SCHEMA)
