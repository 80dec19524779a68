"""Commission figures per direction, currency and month (earned, approved, paid), from the commissions
service's events.

Revision ID: gateway_commissions_0001
Revises: gateway_0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "gateway_commissions_0001"
down_revision = "gateway_0001"
branch_labels = ("commissions",)
depends_on = None

SCHEMA = "gateway"


def _money(name: str) -> sa.Column:
    return sa.Column(name, sa.Numeric(20, 2), nullable=False, server_default="0")


def upgrade() -> None:
    op.create_table(
        "commission_month",
        sa.Column("direction", sa.String(20), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("period", sa.Date, nullable=False),
        _money("accrued"), _money("clawed_back"), _money("adjusted"), _money("approved"), _money("paid"),
        sa.PrimaryKeyConstraint("direction", "currency", "period", name="commission_month_pkey"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("commission_month", schema=SCHEMA)
