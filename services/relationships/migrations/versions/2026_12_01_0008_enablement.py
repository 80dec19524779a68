"""Partner enablement: training modules, each partner person's certifications, each partner's last
published enablement score.

Revision ID: relationships_0008
Revises: relationships_0007
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "relationships_0008"
down_revision = "relationships_0007"
branch_labels = None
depends_on = None

SCHEMA = "relationships"


def upgrade() -> None:
    op.create_table(
        "enablement_module",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("duration_minutes", sa.Integer, nullable=False),
        sa.Column("pass_mark", sa.SmallInteger, nullable=False),
        sa.Column("valid_months", sa.SmallInteger),
        sa.Column("required", sa.Boolean, nullable=False),
        sa.Column("archived", sa.Boolean, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("id", name="enablement_module_pkey"),
        sa.UniqueConstraint("name", name="enablement_module_name_key"),
        schema=SCHEMA,
    )
    op.create_table(
        "certification",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("contact_id", sa.Uuid, nullable=False),
        sa.Column("partner_id", sa.Uuid, nullable=False),
        sa.Column("module_id", sa.Uuid, nullable=False),
        sa.Column("due_on", sa.Date),
        sa.Column("taken_on", sa.Date),
        sa.Column("score", sa.SmallInteger),
        sa.Column("passed_on", sa.Date),
        sa.Column("expires_on", sa.Date),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("id", name="certification_pkey"),
        schema=SCHEMA,
    )
    op.create_index("certification_contact_module_key", "certification", ["contact_id", "module_id"], unique=True,
                    schema=SCHEMA)
    op.create_index("certification_partner_idx", "certification", ["partner_id"], schema=SCHEMA)
    op.create_table(
        "enablement_score",
        sa.Column("partner_id", sa.Uuid, nullable=False),
        sa.Column("score", sa.Numeric(5, 2)),
        sa.Column("required_modules", sa.Integer, nullable=False),
        sa.Column("covered_modules", sa.Integer, nullable=False),
        sa.Column("valid_certifications", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("partner_id", name="enablement_score_pkey"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("enablement_score", schema=SCHEMA)
    op.drop_table("certification", schema=SCHEMA)
    op.drop_table("enablement_module", schema=SCHEMA)
