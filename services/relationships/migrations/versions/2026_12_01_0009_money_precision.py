"""Money columns take the one precision every schema uses (runtime.db.MONEY, contracts/money.py):
numeric(20,2), from numeric(16,2). Widening keeps every value and rewrites nothing.

Revision ID: relationships_0009
Revises: relationships_0008
Create Date: 2026-12-01
"""

from runtime.migrations import set_numeric_precision

revision = "relationships_0009"
down_revision = "relationships_0008"
branch_labels = None
depends_on = None

SCHEMA = "relationships"
# The precision each column had, and the columns (table, column).
WAS = {
    16: [
        ("deadline", "amount_at_stake"),
        ("fund_milestone", "amount"),
        ("fund_milestone", "received"),
        ("fund_request", "approved"),
        ("fund_request", "requested"),
        ("goal", "manual_progress"),
        ("goal", "progress"),
        ("goal", "target"),
    ],
}


def upgrade() -> None:
    set_numeric_precision(SCHEMA, WAS, 20)


def downgrade() -> None:
    set_numeric_precision(SCHEMA, WAS, None)
