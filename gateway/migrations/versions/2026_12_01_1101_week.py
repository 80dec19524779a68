"""The team's week at the gateway: tasks and submitted updates as the relationships service's events
describe them (for the dashboard's overdue tasks and on-time updates), the meetings' weeks and zones, and
each member's secret calendar-feed token (its SHA-256 only).

Revision ID: gateway_week_0001
Revises: gateway_0001
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "gateway_week_0001"
down_revision = "gateway_0001"
branch_labels = ("week",)
depends_on = "gateway_auth_0001"

SCHEMA = "gateway"


def upgrade() -> None:
    op.create_table(
        "week_task",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("due_date", sa.Date, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("week", sa.Date, nullable=False),
        sa.Column("carried", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        schema=SCHEMA,
    )
    # The dashboard counts open tasks past due per owner.
    op.create_index("week_task_open_idx", "week_task", ["owner", "due_date"], schema=SCHEMA,
                    postgresql_where=sa.text("status = 'open'"))
    op.create_table(
        "week_update",
        sa.Column("week", sa.Date, primary_key=True),
        sa.Column("member", sa.Text, primary_key=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("on_time", sa.Boolean, nullable=False),
        sa.Column("amendments", sa.Integer, nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "week_meeting",
        sa.Column("week", sa.Date, primary_key=True),
        sa.Column("time_zone", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "calendar_feed",
        sa.Column("user_id", sa.Uuid, sa.ForeignKey(f"{SCHEMA}.app_user.id", ondelete="CASCADE",
                                                    name="calendar_feed_user_id_fkey"), primary_key=True),
        sa.Column("token_hash", sa.Text, nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )


def downgrade() -> None:
    for table in ("calendar_feed", "week_meeting", "week_update", "week_task"):
        op.drop_table(table, schema=SCHEMA)
