"""Money columns take the one precision every schema uses (runtime.db.MONEY, contracts/money.py):
numeric(20,2), from numeric(16,2) and numeric(22,2). Widening keeps every value and rewrites nothing.
The ARR total was numeric(22,2): it narrows to the one precision like every other sum; a value
that did not fit would fail the migration, never be rounded (it is a read model, rebuilt from the streams).

Revision ID: gateway_0004
Revises: gateway_0003
Create Date: 2026-12-01
"""

from runtime.migrations import set_numeric_precision

revision = "gateway_0004"
down_revision = "gateway_0003"
branch_labels = None
depends_on = None

SCHEMA = "gateway"
# The precision each column had, and the columns (table, column).
WAS = {
    16: [
        ("funding_request", "approved"),
        ("funding_request", "claimed"),
        ("funding_request", "deadline_at_stake"),
        ("funding_request", "received"),
        ("funding_request", "requested"),
        ("goal", "progress"),
        ("goal", "target"),
    ],
    22: [
        ("pipeline_partner_arr", "arr"),
    ],
}


def upgrade() -> None:
    set_numeric_precision(SCHEMA, WAS, 20)


def downgrade() -> None:
    set_numeric_precision(SCHEMA, WAS, None)
