"""Money columns take the one precision every schema uses (runtime.db.MONEY, contracts/money.py):
numeric(20,2), from numeric(18,2). Widening keeps every value and rewrites nothing.

Revision ID: notifications_0006
Revises: notifications_0005
Create Date: 2026-12-01
"""

from runtime.migrations import set_numeric_precision

revision = "notifications_0006"
down_revision = "notifications_0005"
branch_labels = None
depends_on = None

SCHEMA = "notifications"
# The precision each column had, and the columns (table, column).
WAS = {
    18: [
        ("deal", "amount"),
        ("deadline", "amount_at_stake"),
    ],
}


def upgrade() -> None:
    set_numeric_precision(SCHEMA, WAS, 20)


def downgrade() -> None:
    set_numeric_precision(SCHEMA, WAS, None)
