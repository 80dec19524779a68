"""The sync workers' health (contracts/sync.py SyncRunFinishedV1), the newest pass per source, for the
stale-sync scan.

Revision ID: notifications_0004
Revises: notifications_0003
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "notifications_0004"
down_revision = "notifications_0003"
branch_labels = None
depends_on = None

SCHEMA = "notifications"
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sync_health",
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("catalog", sa.Text, nullable=False),
        sa.Column("last_run_at", TS, nullable=False),
        sa.Column("last_ok", sa.Boolean, nullable=False),
        sa.Column("last_success_at", TS),
        sa.Column("last_error", sa.Text),
        sa.PrimaryKeyConstraint("source", "catalog", name="sync_health_pkey"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("sync_health", schema=SCHEMA)
