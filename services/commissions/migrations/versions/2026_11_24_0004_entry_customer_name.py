"""Ledger entries keep the customer's name as it was written, beside the key they are matched by.

Revision ID: commissions_0004
Revises: commissions_0003
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "commissions_0004"
down_revision = "commissions_0003"
branch_labels = None
depends_on = None

SCHEMA = "commissions"


COLUMNS = ("agreement_id", "partner_id", "direction", "currency", "entry_type", "amount", "basis_amount", "period",
           "line_key", "reverses_key", "revenue_key", "revenue_at", "customer", "version", "revision", "rule", "detail",
           "reverses_entry_id", "adjusts_entry_id", "created_at")


def _append_only(columns: tuple[str, ...]) -> str:
    new = ", ".join(f"NEW.{c}" for c in columns)
    old = ", ".join(f"OLD.{c}" for c in columns)
    return f"""
        CREATE OR REPLACE FUNCTION {SCHEMA}.ledger_entry_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' THEN
                RAISE EXCEPTION 'ledger entries are never deleted (entry %)', OLD.id;
            END IF;
            IF ({new}) IS DISTINCT FROM ({old}) THEN
                RAISE EXCEPTION 'ledger entry % is append-only: write an adjusting entry instead', OLD.id;
            END IF;
            IF NOT ((OLD.status = NEW.status AND OLD.payment_id IS NOT DISTINCT FROM NEW.payment_id)
                    OR (OLD.status = 'accrued' AND NEW.status = 'approved')
                    OR (OLD.status = 'approved' AND NEW.status = 'paid' AND NEW.payment_id IS NOT NULL)) THEN
                RAISE EXCEPTION 'ledger entry % cannot go from % to %', OLD.id, OLD.status, NEW.status;
            END IF;
            RETURN NEW;
        END $$;
    """


def upgrade() -> None:
    op.add_column("ledger_entry", sa.Column("customer_name", sa.Text), schema=SCHEMA)
    op.execute(_append_only((*COLUMNS, "customer_name")))


def downgrade() -> None:
    op.execute(_append_only(COLUMNS))
    op.drop_column("ledger_entry", "customer_name", schema=SCHEMA)
