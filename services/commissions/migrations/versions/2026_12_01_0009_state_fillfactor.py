"""Room on the pages of the fold-state tables: every consumer batch rewrites the state of the agreements and
customers it touched (about one customer row per revenue event), so with free space on each page the new row
version goes on the same page and no index entry is added (a heap-only update) and pages are pruned in place.

Revision ID: commissions_0009
Revises: commissions_0008
Create Date: 2026-12-01
"""

from alembic import op

revision = "commissions_0009"
down_revision = "commissions_0008"
branch_labels = None
depends_on = None

SCHEMA = "commissions"
TABLES = ("agreement_state", "customer_state")


def upgrade() -> None:
    for table in TABLES:
        op.execute(f"ALTER TABLE {SCHEMA}.{table} SET (fillfactor = 70)")


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"ALTER TABLE {SCHEMA}.{table} RESET (fillfactor)")
