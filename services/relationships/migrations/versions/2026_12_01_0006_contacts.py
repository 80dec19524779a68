"""Contacts, interactions, their links to deals, settings and capacities; the shared pipeline copy
learns the reporting currency and exchange rates (value at stake is counted in them).

Revision ID: relationships_0006
Revises: relationships_0005
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "relationships_0006"
down_revision = "relationships_0005"
branch_labels = None
depends_on = None

SCHEMA = "relationships"
TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "contact",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("partner_id", sa.Uuid, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(254)),
        sa.Column("phone", sa.String(40)),
        sa.Column("role", sa.String(100)),
        sa.Column("title", sa.String(200)),
        sa.Column("territory", sa.String(100)),
        sa.Column("segment", sa.String(100)),
        sa.Column("seniority", sa.String(20), nullable=False),
        sa.Column("reports_to", sa.Uuid),
        sa.Column("owner", sa.Text),
        sa.Column("crucial", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("archived_at", TZ),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("energy", sa.Float, nullable=False, server_default="0"),
        sa.Column("last_touch_at", TZ),
        sa.Column("touches", sa.Integer, nullable=False, server_default="0"),
        sa.Column("cold_at", TZ),
        sa.Column("cooling_notified_for", TZ),
        sa.CheckConstraint("energy >= 0", name="energy_not_negative"),
        schema=SCHEMA,
    )
    # One contact per email within an organisation: imports and co-sell deals match on it.
    op.execute(f"CREATE UNIQUE INDEX contact_partner_email_key ON {SCHEMA}.contact (partner_id, lower(email)) "
               "WHERE email IS NOT NULL")
    op.create_index("contact_partner_id_idx", "contact", ["partner_id"], schema=SCHEMA)
    op.create_index("contact_owner_idx", "contact", ["owner"], schema=SCHEMA)
    op.execute(f"CREATE INDEX contact_lower_name_idx ON {SCHEMA}.contact (lower(name) text_pattern_ops)")
    # The cooling scan and the attention list read only contacts whose cold date is near.
    op.execute(f"CREATE INDEX contact_cold_at_idx ON {SCHEMA}.contact (cold_at) WHERE archived_at IS NULL")

    op.create_table(
        "interaction",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("occurred_at", TZ, nullable=False),
        sa.Column("initiated_by", sa.String(10), nullable=False),
        sa.Column("partner_id", sa.Uuid),
        sa.Column("opportunity_id", sa.Uuid),
        sa.Column("note", sa.Text),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("uid", sa.Text),
        sa.Column("logged_by", sa.Text),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
    op.create_index("interaction_uid_key", "interaction", ["uid"], unique=True, schema=SCHEMA,
                    postgresql_where=sa.text("uid IS NOT NULL"))
    op.create_table(
        "interaction_contact",
        sa.Column("interaction_id", sa.Uuid, sa.ForeignKey(f"{SCHEMA}.interaction.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("contact_id", sa.Uuid, sa.ForeignKey(f"{SCHEMA}.contact.id"), primary_key=True),
        schema=SCHEMA,
    )
    op.create_index("interaction_contact_contact_id_idx", "interaction_contact", ["contact_id"], schema=SCHEMA)
    op.create_table(
        "contact_deal",
        sa.Column("contact_id", sa.Uuid, sa.ForeignKey(f"{SCHEMA}.contact.id"), primary_key=True),
        sa.Column("opportunity_id", sa.Uuid, primary_key=True),
        sa.Column("via", sa.String(20), nullable=False),
        schema=SCHEMA,
    )
    op.create_index("contact_deal_opportunity_id_idx", "contact_deal", ["opportunity_id"], schema=SCHEMA)
    op.create_table(
        "contact_settings",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("settings", JSONB, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "member_capacity",
        sa.Column("owner", sa.Text, primary_key=True),
        sa.Column("hours_per_week", sa.Numeric(5, 2), nullable=False),
        schema=SCHEMA,
    )
    op.add_column("pipeline_settings", sa.Column("reporting_currency", sa.Text, nullable=False,
                                                 server_default="USD"), schema=SCHEMA)
    op.add_column("pipeline_settings", sa.Column("fx_rates", JSONB, nullable=False,
                                                 server_default=sa.text("'{}'::jsonb")), schema=SCHEMA)
    # Value at stake sums the open deals of each organisation.
    op.execute(f"CREATE INDEX pipeline_deal_open_partner_idx ON {SCHEMA}.pipeline_deal (partner_id) "
               "WHERE outcome = 'open'")
    op.execute(f"CREATE INDEX pipeline_deal_action_due_idx ON {SCHEMA}.pipeline_deal (ace_action_due_date) "
               "WHERE outcome = 'open' AND ace_action_due_date IS NOT NULL")


def downgrade() -> None:
    op.execute(f"DROP INDEX {SCHEMA}.pipeline_deal_action_due_idx")
    op.execute(f"DROP INDEX {SCHEMA}.pipeline_deal_open_partner_idx")
    op.drop_column("pipeline_settings", "fx_rates", schema=SCHEMA)
    op.drop_column("pipeline_settings", "reporting_currency", schema=SCHEMA)
    for table in ("member_capacity", "contact_settings", "contact_deal", "interaction_contact", "interaction",
                  "contact"):
        op.drop_table(table, schema=SCHEMA)
