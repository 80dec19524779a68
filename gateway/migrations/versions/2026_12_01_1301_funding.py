"""Read models of fund requests and hyperscaler goals (from the relationships service's events), for the
dashboard's funding and goals cards.

Revision ID: gateway_funding_0001
Revises: gateway_0001
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "gateway_funding_0001"
down_revision = "gateway_0001"
branch_labels = None
depends_on = None

SCHEMA = "gateway"
MONEY = sa.Numeric(16, 2)


def upgrade() -> None:
    op.create_table(
        "funding_request",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("program_name", sa.Text, nullable=False),
        sa.Column("stage", sa.Text, nullable=False),
        sa.Column("currency", sa.Text, nullable=False),
        sa.Column("requested", MONEY, nullable=False),
        sa.Column("approved", MONEY),
        sa.Column("claimed", MONEY, nullable=False),
        sa.Column("received", MONEY, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline_title", sa.Text),
        sa.Column("deadline_date", sa.Date),
        sa.Column("deadline_zone", sa.Text),
        sa.Column("deadline_at_stake", MONEY),
        sa.PrimaryKeyConstraint("id", name="funding_request_pkey"),
        schema=SCHEMA,
    )
    # The dashboard lists the soonest open deadlines.
    op.create_index("funding_request_deadline_date_idx", "funding_request", ["deadline_date"], schema=SCHEMA,
                    postgresql_where=sa.text("deadline_date IS NOT NULL"))
    op.create_table(
        "goal",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("hyperscaler", sa.Text, nullable=False),
        sa.Column("period", sa.Text, nullable=False),
        sa.Column("metric", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("target", MONEY, nullable=False),
        sa.Column("currency", sa.Text),
        sa.Column("progress", MONEY, nullable=False),
        sa.Column("archived", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("id", name="goal_pkey"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("goal", schema=SCHEMA)
    op.drop_table("funding_request", schema=SCHEMA)
