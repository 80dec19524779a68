"""Users, sessions, API tokens, sign-in attempts and the audit log.

Revision ID: gateway_auth_0001
Revises: gateway_0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "gateway_auth_0001"
down_revision = "gateway_0001"
branch_labels = ("auth",)
depends_on = None

SCHEMA = "gateway"


def upgrade() -> None:
    op.create_table(
        "app_user",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("email", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("time_zone", sa.Text, nullable=False, server_default="UTC"),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("role IN ('admin', 'manager', 'member', 'viewer')", name="app_user_role_check"),
        schema=SCHEMA,
    )
    op.create_index("app_user_lower_email_key", "app_user", [sa.text("lower(email)")], unique=True, schema=SCHEMA)
    op.create_table(
        "user_session",
        sa.Column("token_hash", sa.Text, primary_key=True),
        sa.Column("user_id", sa.Uuid, sa.ForeignKey(f"{SCHEMA}.app_user.id", ondelete="CASCADE"), nullable=False),
        sa.Column("csrf_token", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "api_token",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("token_hash", sa.Text, nullable=False, unique=True),
        sa.Column("scopes", ARRAY(sa.Text), nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("last_used_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        schema=SCHEMA,
    )
    op.create_table(
        "signin_attempt",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("email", sa.Text, nullable=False),
        sa.Column("client", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
    op.create_index("signin_attempt_email_at_idx", "signin_attempt", ["email", "at"], schema=SCHEMA)
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("entity", sa.Text, nullable=False),
        sa.Column("entity_id", sa.Text),
        sa.Column("before", JSONB),
        sa.Column("after", JSONB),
        sa.Column("trace_id", sa.Text),
        schema=SCHEMA,
    )
    op.create_index("audit_log_at_idx", "audit_log", ["at"], schema=SCHEMA)


def downgrade() -> None:
    for table in ("audit_log", "signin_attempt", "api_token", "user_session", "app_user"):
        op.drop_table(table, schema=SCHEMA)
