"""The pipeline settings copy is one row (id 1): its id takes no numbers from a sequence. The first
migration made `id` a smallserial by accident (a lone integer primary key); the model says a plain
smallint, as `alembic check` found.

Revision ID: notifications_0005
Revises: notifications_0004
Create Date: 2026-12-01
"""

from alembic import op

revision = "notifications_0005"
down_revision = "notifications_0004"
branch_labels = None
depends_on = None

SCHEMA = "notifications"


def upgrade() -> None:
    op.execute(f"ALTER TABLE {SCHEMA}.pipeline_settings ALTER COLUMN id DROP DEFAULT")
    op.execute(f"DROP SEQUENCE {SCHEMA}.pipeline_settings_id_seq")


def downgrade() -> None:
    op.execute(f"CREATE SEQUENCE {SCHEMA}.pipeline_settings_id_seq AS smallint OWNED BY {SCHEMA}.pipeline_settings.id")
    op.execute(f"ALTER TABLE {SCHEMA}.pipeline_settings ALTER COLUMN id "
               f"SET DEFAULT nextval('{SCHEMA}.pipeline_settings_id_seq'::regclass)")
