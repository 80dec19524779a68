"""Money columns take the one precision every schema uses (runtime.db.MONEY, contracts/money.py):
numeric(20,2), from numeric(16,2). Widening keeps every value and rewrites nothing.

Revision ID: pipeline_0006
Revises: pipeline_0005
Create Date: 2026-12-01
"""

from runtime.migrations import set_numeric_precision

revision = "pipeline_0006"
down_revision = "pipeline_0005"
branch_labels = None
depends_on = None

SCHEMA = "pipeline"
# The precision each column had, and the columns (table, column).
WAS = {
    16: [
        ("opportunity", "amount"),
        ("deal_registration", "amount"),
        ("partner", "trailing_revenue"),
    ],
}


def upgrade() -> None:
    set_numeric_precision(SCHEMA, WAS, 20)


def downgrade() -> None:
    set_numeric_precision(SCHEMA, WAS, None)
