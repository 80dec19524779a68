"""People and preferences, the pipeline's deals and settings as the rules need them, alerts (the
in-app feed) and email deliveries.

Revision ID: notifications_0002
Revises: notifications_0001
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "notifications_0002"
down_revision = "notifications_0001"
branch_labels = None
depends_on = None

SCHEMA = "notifications"


def _ts(name: str, nullable: bool = False, default: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable,
                     server_default=sa.func.now() if default else None)


def upgrade() -> None:
    op.create_table(
        "person",
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("email", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("time_zone", sa.Text, nullable=False, server_default="UTC"),
        _ts("synced_at"),
        sa.PrimaryKeyConstraint("user_id", name="person_pkey"),
        schema=SCHEMA,
    )
    op.create_table(
        "preference",
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("email", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("digest", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("quiet_from", sa.SmallInteger),
        sa.Column("quiet_until", sa.SmallInteger),
        sa.Column("muted_rules", ARRAY(sa.Text), nullable=False, server_default="{}"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("user_id", name="preference_pkey"),
        schema=SCHEMA,
    )
    op.create_table(
        "deal",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("pipeline", sa.Text, nullable=False),
        sa.Column("stage", sa.Text, nullable=False),
        sa.Column("stage_name", sa.Text, nullable=False),
        sa.Column("outcome", sa.String(10), nullable=False),
        sa.Column("amount", sa.Numeric(18, 2), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("owner", sa.Text),
        sa.Column("customer", sa.Text, nullable=False),
        sa.Column("stage_entered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ace_status", sa.Text),
        sa.Column("ace_due", sa.Date),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="deal_pkey"),
        schema=SCHEMA,
    )
    # The hourly scans read open deals only.
    op.create_index("deal_open_idx", "deal", ["stage_entered_at"], schema=SCHEMA,
                    postgresql_where=sa.text("outcome = 'open'"))
    op.create_table(
        "pipeline_settings",
        sa.Column("id", sa.SmallInteger, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("settings", JSONB, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pipeline_settings_pkey"),
        schema=SCHEMA,
    )
    op.create_table(
        "alert",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("rule", sa.String(40), nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("why", sa.Text, nullable=False),
        sa.Column("link", sa.Text, nullable=False),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=False),
        _ts("created_at"),
        sa.Column("read_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name="alert_pkey"),
        schema=SCHEMA,
    )
    # De-duplication looks up (rule, key, user) around a time; the feed reads a user's newest.
    op.create_index("alert_dedupe_idx", "alert", ["rule", "key", "user_id", "fired_at"], schema=SCHEMA)
    op.create_index("alert_feed_idx", "alert", ["user_id", "created_at"], schema=SCHEMA)
    op.create_table(
        "delivery",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("rule", sa.String(40)),
        sa.Column("alert_id", sa.Uuid),
        sa.Column("dedupe_key", sa.Text),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("to_address", sa.Text, nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("body_text", sa.Text, nullable=False),
        sa.Column("body_html", sa.Text, nullable=False),
        sa.Column("images", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("status", sa.String(10), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name="delivery_pkey"),
        sa.UniqueConstraint("dedupe_key", name="delivery_dedupe_key_key"),
        sa.CheckConstraint("status IN ('pending', 'sent', 'failed')", name="delivery_status_check"),
        schema=SCHEMA,
    )
    # The sender claims due pending emails.
    op.create_index("delivery_due_idx", "delivery", ["next_attempt_at"], schema=SCHEMA,
                    postgresql_where=sa.text("status = 'pending'"))
    op.create_index("delivery_created_idx", "delivery", ["created_at"], schema=SCHEMA)


def downgrade() -> None:
    for table in ("delivery", "alert", "pipeline_settings", "deal", "preference", "person"):
        op.drop_table(table, schema=SCHEMA)
