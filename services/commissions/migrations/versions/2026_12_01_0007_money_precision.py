"""Money columns take the one precision every schema uses (runtime.db.MONEY, contracts/money.py):
numeric(20,2), from numeric(18,2). Widening keeps every value and rewrites nothing.

Revision ID: commissions_0007
Revises: commissions_0006
Create Date: 2026-12-01
"""

from runtime.migrations import set_numeric_precision

revision = "commissions_0007"
down_revision = "commissions_0006"
branch_labels = None
depends_on = None

SCHEMA = "commissions"
# The precision each column had, and the columns (table, column).
WAS = {
    18: [
        ("agreement_state", "period_basis"),
        ("agreement_state", "period_commission"),
        ("customer_state", "deal_commission"),
        ("ledger_entry", "amount"),
        ("ledger_entry", "basis_amount"),
        ("opportunity", "amount"),
        ("payment", "amount"),
        ("revenue_event", "amount"),
    ],
}


def upgrade() -> None:
    set_numeric_precision(SCHEMA, WAS, 20)


def downgrade() -> None:
    set_numeric_precision(SCHEMA, WAS, None)
