"""Agreements with versions and audit, revenue events, the append-only ledger, payments, and the
pipeline's partners and opportunities as the commissions service needs them.

Revision ID: commissions_0002
Revises: commissions_0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "commissions_0002"
down_revision = "commissions_0001"
branch_labels = None
depends_on = None

SCHEMA = "commissions"
MONEY = sa.Numeric(18, 2)


def _ts(name: str, nullable: bool = False, default: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable,
                     server_default=sa.func.now() if default else None)


def upgrade() -> None:
    op.create_table(
        "partner",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False, server_default="0"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name="partner_pkey"),
        schema=SCHEMA,
    )
    op.create_table(
        "partner_tier",
        sa.Column("partner_id", sa.Uuid, nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tier", sa.String(20), nullable=False),
        sa.PrimaryKeyConstraint("partner_id", "since", name="partner_tier_pkey"),
        schema=SCHEMA,
    )
    op.create_table(
        "agreement",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("partner_id", sa.Uuid, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("direction", sa.String(20), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("deal_models", ARRAY(sa.Text)),
        _ts("created_at"),
        sa.Column("created_by", sa.Text),
        _ts("updated_at"),
        sa.Column("updated_by", sa.Text),
        sa.PrimaryKeyConstraint("id", name="agreement_pkey"),
        sa.CheckConstraint("direction IN ('receivable', 'payable')", name="agreement_direction_check"),
        schema=SCHEMA,
    )
    op.create_index("agreement_partner_id_idx", "agreement", ["partner_id"], schema=SCHEMA)
    op.create_table(
        "agreement_version",
        sa.Column("agreement_id", sa.Uuid, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("effective_from", sa.Date, nullable=False),
        sa.Column("effective_to", sa.Date),
        sa.Column("retroactive", sa.Boolean, nullable=False),
        sa.Column("terms", JSONB, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False, server_default="1"),
        _ts("created_at"),
        sa.Column("created_by", sa.Text),
        _ts("updated_at"),
        sa.Column("updated_by", sa.Text),
        sa.PrimaryKeyConstraint("agreement_id", "version", name="agreement_version_pkey"),
        sa.ForeignKeyConstraint(["agreement_id"], [f"{SCHEMA}.agreement.id"],
                                name="agreement_version_agreement_id_fkey"),
        sa.CheckConstraint("effective_to IS NULL OR effective_to > effective_from",
                           name="agreement_version_range_check"),
        schema=SCHEMA,
    )
    op.create_table(
        "agreement_audit",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("agreement_id", sa.Uuid, nullable=False),
        sa.Column("version", sa.Integer),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("actor", sa.Text),
        _ts("at"),
        sa.Column("old", JSONB),
        sa.Column("new", JSONB),
        sa.PrimaryKeyConstraint("id", name="agreement_audit_pkey"),
        sa.ForeignKeyConstraint(["agreement_id"], [f"{SCHEMA}.agreement.id"], name="agreement_audit_agreement_id_fkey"),
        schema=SCHEMA,
    )
    op.create_index("agreement_audit_agreement_id_idx", "agreement_audit", ["agreement_id"], schema=SCHEMA)
    op.create_table(
        "agreement_state",
        sa.Column("agreement_id", sa.Uuid, nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True)),
        sa.Column("last_rank", sa.Integer),
        sa.Column("last_ref", sa.Text),
        sa.Column("period_key", sa.String(10)),
        sa.Column("period_basis", MONEY, nullable=False, server_default="0"),
        sa.Column("period_commission", MONEY, nullable=False, server_default="0"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("agreement_id", name="agreement_state_pkey"),
        sa.ForeignKeyConstraint(["agreement_id"], [f"{SCHEMA}.agreement.id"], name="agreement_state_agreement_id_fkey"),
        schema=SCHEMA,
    )
    op.create_table(
        "customer_state",
        sa.Column("agreement_id", sa.Uuid, nullable=False),
        sa.Column("customer", sa.Text, nullable=False),
        sa.Column("start", sa.Date, nullable=False),
        sa.Column("booked", sa.Date, nullable=False),
        sa.Column("invoices", sa.Integer, nullable=False, server_default="0"),
        sa.Column("churned_on", sa.Date),
        sa.Column("deal_commission", MONEY, nullable=False, server_default="0"),
        sa.Column("deal_model", sa.Text),
        sa.PrimaryKeyConstraint("agreement_id", "customer", name="customer_state_pkey"),
        sa.ForeignKeyConstraint(["agreement_id"], [f"{SCHEMA}.agreement.id"], name="customer_state_agreement_id_fkey"),
        schema=SCHEMA,
    )
    op.create_table(
        "revenue_event",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("event_id", sa.Uuid, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("ref", sa.Text, nullable=False),
        sa.Column("scope", sa.Text, nullable=False, server_default=""),
        sa.Column("partner_id", sa.Uuid),
        sa.Column("opportunity_id", sa.Uuid),
        sa.Column("customer", sa.Text, nullable=False, server_default=""),
        sa.Column("customer_name", sa.Text),
        sa.Column("amount", MONEY),
        sa.Column("currency", sa.String(3)),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("invoice_ref", sa.Text),
        sa.Column("deal_model", sa.Text),
        sa.Column("customer_started_on", sa.Date),
        sa.Column("void", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("actor", sa.Text),
        sa.Column("event_occurred_at", sa.DateTime(timezone=True), nullable=False),
        _ts("received_at"),
        sa.PrimaryKeyConstraint("id", name="revenue_event_pkey"),
        sa.UniqueConstraint("event_id", name="revenue_event_event_id_key"),
        sa.UniqueConstraint("kind", "ref", "scope", name="revenue_event_kind_key"),
        sa.CheckConstraint("kind IN ('deal_won', 'invoice_paid', 'refund', 'churn')", name="revenue_event_kind_check"),
        sa.CheckConstraint("amount IS NULL OR amount > 0", name="revenue_event_amount_check"),
        schema=SCHEMA,
    )
    op.create_index("revenue_event_partner_id_idx", "revenue_event", ["partner_id", "occurred_at"], schema=SCHEMA)
    op.create_index("revenue_event_pending_idx", "revenue_event", ["opportunity_id"], schema=SCHEMA,
                    postgresql_where=sa.text("partner_id IS NULL"))
    op.create_index("revenue_event_invoice_ref_idx", "revenue_event", ["invoice_ref"], schema=SCHEMA,
                    postgresql_where=sa.text("kind = 'refund'"))
    op.create_table(
        "revenue_note",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("agreement_id", sa.Uuid, nullable=False),
        sa.Column("revenue_key", sa.Text, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="revenue_note_pkey"),
        sa.ForeignKeyConstraint(["agreement_id"], [f"{SCHEMA}.agreement.id"], name="revenue_note_agreement_id_fkey"),
        schema=SCHEMA,
    )
    op.create_index("revenue_note_revenue_key_idx", "revenue_note", ["revenue_key"], schema=SCHEMA)
    op.create_index("revenue_note_agreement_id_idx", "revenue_note", ["agreement_id"], schema=SCHEMA)
    op.create_table(
        "payment",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("partner_id", sa.Uuid, nullable=False),
        sa.Column("direction", sa.String(20), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("paid_on", sa.Date, nullable=False),
        sa.Column("reference", sa.Text, nullable=False),
        _ts("created_at"),
        sa.Column("created_by", sa.Text),
        sa.PrimaryKeyConstraint("id", name="payment_pkey"),
        schema=SCHEMA,
    )
    op.create_index("payment_partner_id_idx", "payment", ["partner_id", "paid_on"], schema=SCHEMA)
    op.create_table(
        "ledger_entry",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("agreement_id", sa.Uuid, nullable=False),
        sa.Column("partner_id", sa.Uuid, nullable=False),
        sa.Column("direction", sa.String(20), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("entry_type", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="accrued"),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("basis_amount", MONEY, nullable=False),
        sa.Column("period", sa.Date, nullable=False),
        sa.Column("line_key", sa.Text, nullable=False),
        sa.Column("reverses_key", sa.Text),
        sa.Column("revenue_key", sa.Text, nullable=False),
        sa.Column("revenue_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("customer", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("rule", sa.String(40), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("reverses_entry_id", sa.BigInteger),
        sa.Column("adjusts_entry_id", sa.BigInteger),
        sa.Column("payment_id", sa.Uuid),
        _ts("created_at"),
        sa.Column("approved_at", sa.DateTime(timezone=True)),
        sa.Column("approved_by", sa.Text),
        sa.Column("paid_at", sa.DateTime(timezone=True)),
        sa.Column("paid_by", sa.Text),
        sa.PrimaryKeyConstraint("id", name="ledger_entry_pkey"),
        sa.ForeignKeyConstraint(["agreement_id"], [f"{SCHEMA}.agreement.id"], name="ledger_entry_agreement_id_fkey"),
        sa.ForeignKeyConstraint(["payment_id"], [f"{SCHEMA}.payment.id"], name="ledger_entry_payment_id_fkey"),
        sa.CheckConstraint("entry_type IN ('accrual', 'clawback', 'adjustment')", name="ledger_entry_type_check"),
        sa.CheckConstraint("status IN ('accrued', 'approved', 'paid')", name="ledger_entry_status_check"),
        sa.CheckConstraint("entry_type <> 'accrual' OR amount > 0", name="ledger_entry_accrual_check"),
        sa.CheckConstraint("entry_type <> 'clawback' OR (amount < 0 AND reverses_key IS NOT NULL)",
                           name="ledger_entry_clawback_check"),
        sa.CheckConstraint("entry_type <> 'adjustment' OR adjusts_entry_id IS NOT NULL",
                           name="ledger_entry_adjustment_check"),
        schema=SCHEMA,
    )
    # One original entry per line; further entries on a line are adjustments.
    op.create_index("ledger_entry_line_key", "ledger_entry", ["agreement_id", "line_key"], unique=True, schema=SCHEMA,
                    postgresql_where=sa.text("entry_type <> 'adjustment'"))
    op.create_index("ledger_entry_line_idx", "ledger_entry", ["agreement_id", "line_key"], schema=SCHEMA)
    op.create_index("ledger_entry_reverses_idx", "ledger_entry", ["agreement_id", "reverses_key"], schema=SCHEMA,
                    postgresql_where=sa.text("reverses_key IS NOT NULL"))
    op.create_index("ledger_entry_customer_idx", "ledger_entry", ["agreement_id", "customer"], schema=SCHEMA)
    op.create_index("ledger_entry_partner_idx", "ledger_entry", ["partner_id", "period"], schema=SCHEMA)
    op.create_index("ledger_entry_revenue_key_idx", "ledger_entry", ["revenue_key"], schema=SCHEMA)
    op.create_index("ledger_entry_open_idx", "ledger_entry", ["status"], schema=SCHEMA,
                    postgresql_where=sa.text("status <> 'paid'"))
    op.execute(f"""
        CREATE FUNCTION {SCHEMA}.ledger_entry_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' THEN
                RAISE EXCEPTION 'ledger entries are never deleted (entry %)', OLD.id;
            END IF;
            IF (NEW.agreement_id, NEW.partner_id, NEW.direction, NEW.currency, NEW.entry_type, NEW.amount,
                NEW.basis_amount, NEW.period, NEW.line_key, NEW.reverses_key, NEW.revenue_key, NEW.revenue_at,
                NEW.customer, NEW.version, NEW.revision, NEW.rule, NEW.detail, NEW.reverses_entry_id,
                NEW.adjusts_entry_id, NEW.created_at)
               IS DISTINCT FROM
               (OLD.agreement_id, OLD.partner_id, OLD.direction, OLD.currency, OLD.entry_type, OLD.amount,
                OLD.basis_amount, OLD.period, OLD.line_key, OLD.reverses_key, OLD.revenue_key, OLD.revenue_at,
                OLD.customer, OLD.version, OLD.revision, OLD.rule, OLD.detail, OLD.reverses_entry_id,
                OLD.adjusts_entry_id, OLD.created_at) THEN
                RAISE EXCEPTION 'ledger entry % is append-only: write an adjusting entry instead', OLD.id;
            END IF;
            IF NOT ((OLD.status = NEW.status AND OLD.payment_id IS NOT DISTINCT FROM NEW.payment_id)
                    OR (OLD.status = 'accrued' AND NEW.status = 'approved')
                    OR (OLD.status = 'approved' AND NEW.status = 'paid' AND NEW.payment_id IS NOT NULL)) THEN
                RAISE EXCEPTION 'ledger entry % cannot go from % to %', OLD.id, OLD.status, NEW.status;
            END IF;
            RETURN NEW;
        END $$;
    """)
    op.execute(f"""
        CREATE TRIGGER ledger_entry_append_only BEFORE UPDATE OR DELETE ON {SCHEMA}.ledger_entry
        FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.ledger_entry_append_only();
    """)
    op.create_table(
        "opportunity",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("partner_id", sa.Uuid),
        sa.Column("customer", sa.Text, nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("probability", sa.Integer, nullable=False),
        sa.Column("stage", sa.Text, nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("deal_model", sa.Text),
        sa.Column("expected_close_date", sa.Date),
        sa.Column("version", sa.Integer, nullable=False),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name="opportunity_pkey"),
        schema=SCHEMA,
    )
    op.create_index("opportunity_partner_id_idx", "opportunity", ["partner_id"], schema=SCHEMA,
                    postgresql_where=sa.text("outcome = 'open'"))


def downgrade() -> None:
    op.drop_table("opportunity", schema=SCHEMA)
    op.execute(f"DROP TRIGGER ledger_entry_append_only ON {SCHEMA}.ledger_entry")
    op.execute(f"DROP FUNCTION {SCHEMA}.ledger_entry_append_only()")
    for table in ("ledger_entry", "payment", "revenue_note", "revenue_event", "customer_state", "agreement_state",
                  "agreement_audit", "agreement_version", "agreement", "partner_tier", "partner"):
        op.drop_table(table, schema=SCHEMA)
