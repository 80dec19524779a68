"""The AWS sync's schema: outbox and inbox, cursor, synced versions, requests, runs, problems.

Revision ID: aws_sync_0001
Revises:
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from runtime.migrations import create_outbox_and_inbox, drop_outbox_and_inbox

revision = "aws_sync_0001"
down_revision = None
branch_labels = None
depends_on = None

S = "aws_sync"
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    create_outbox_and_inbox(S)
    op.create_table(
        "cursor",
        sa.Column("catalog", sa.Text, primary_key=True),
        sa.Column("watermark", TS),
        sa.Column("reconcile_due_at", TS),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("catalog", name="cursor_pkey"),
        schema=S,
    )
    op.create_table(
        "synced_opportunity",
        sa.Column("catalog", sa.Text, nullable=False),
        sa.Column("opportunity_id", sa.Text, nullable=False),
        sa.Column("last_modified", TS, nullable=False),
        sa.Column("event_id", sa.Uuid, nullable=False),
        sa.Column("review_status", sa.Text),
        sa.Column("published_at", TS, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("catalog", "opportunity_id", name="synced_opportunity_pkey"),
        schema=S,
    )
    op.create_index("synced_opportunity_published_at_idx", "synced_opportunity", ["published_at"], schema=S)
    op.create_table(
        "sync_request",
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("requested_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("not_before", TS, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("kind", "key", name="sync_request_pkey"),
        schema=S,
    )
    op.create_table(
        "sync_run",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("catalog", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("started_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("finished_at", TS),
        sa.Column("ok", sa.Boolean),
        sa.Column("seen", sa.Integer, nullable=False, server_default="0"),
        sa.Column("published", sa.Integer, nullable=False, server_default="0"),
        sa.Column("unchanged", sa.Integer, nullable=False, server_default="0"),
        sa.Column("failed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("error", sa.Text),
        sa.PrimaryKeyConstraint("id", name="sync_run_pkey"),
        schema=S,
    )
    op.create_index("sync_run_started_at_idx", "sync_run", ["started_at"], schema=S)
    op.create_table(
        "sync_problem",
        sa.Column("catalog", sa.Text, nullable=False),
        sa.Column("opportunity_id", sa.Text, nullable=False),
        sa.Column("last_modified", TS),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("at", TS, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("catalog", "opportunity_id", name="sync_problem_pkey"),
        schema=S,
    )


def downgrade() -> None:
    for table in ("sync_problem", "sync_run", "sync_request", "synced_opportunity", "cursor"):
        op.drop_table(table, schema=S)
    drop_outbox_and_inbox(S)
