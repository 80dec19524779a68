"""The team's week (settings, meetings with attendees and decisions, weekly updates with their lines and
history, tasks and their carries) and the relationships service's copy of the pipeline (deals, partners,
deal changes, pipeline settings) that pre-fills updates and tells the meeting what changed.

Revision ID: relationships_0002
Revises: relationships_0001
Create Date: 2026-12-01
"""

from alembic import op

revision = "relationships_0002"
down_revision = "relationships_0001"
branch_labels = None
depends_on = None

S = "relationships"

# Rollover looks for open tasks of earlier weeks (task_open_week_idx); lists filter by owner and by week.
UPGRADE = f"""
CREATE TABLE {S}.week_settings (
    id smallint PRIMARY KEY CONSTRAINT week_settings_single_check CHECK (id = 1),
    time_zone text NOT NULL,
    updates_due_weekday smallint NOT NULL DEFAULT 0 CONSTRAINT week_settings_weekday_check
        CHECK (updates_due_weekday BETWEEN 0 AND 6),
    updates_due_hour smallint NOT NULL DEFAULT 12 CONSTRAINT week_settings_hour_check
        CHECK (updates_due_hour BETWEEN 0 AND 23),
    version integer NOT NULL DEFAULT 1
);
CREATE TABLE {S}.meeting (
    id uuid PRIMARY KEY,
    week date NOT NULL CONSTRAINT meeting_week_key UNIQUE CONSTRAINT meeting_monday_check
        CHECK (extract(isodow FROM week) = 1),
    time_zone text NOT NULL,
    starts_at timestamptz NOT NULL,
    ends_at timestamptz NOT NULL,
    updates_due_at timestamptz NOT NULL,
    status text NOT NULL DEFAULT 'open' CONSTRAINT meeting_status_check CHECK (status IN ('open', 'closed')),
    closed_at timestamptz,
    closed_by text,
    version integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE {S}.meeting_attendee (
    meeting_id uuid NOT NULL REFERENCES {S}.meeting (id) ON DELETE CASCADE,
    user_id text NOT NULL,
    name text NOT NULL,
    CONSTRAINT meeting_attendee_pkey PRIMARY KEY (meeting_id, user_id)
);
CREATE TABLE {S}.meeting_decision (
    id uuid PRIMARY KEY,
    meeting_id uuid NOT NULL REFERENCES {S}.meeting (id) ON DELETE CASCADE,
    text text NOT NULL,
    recorded_by text,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX meeting_decision_meeting_idx ON {S}.meeting_decision (meeting_id, recorded_at);
CREATE TABLE {S}.weekly_update (
    id uuid PRIMARY KEY,
    meeting_id uuid NOT NULL REFERENCES {S}.meeting (id) ON DELETE CASCADE,
    member text NOT NULL,
    status text NOT NULL DEFAULT 'draft' CONSTRAINT weekly_update_status_check
        CHECK (status IN ('draft', 'submitted')),
    anything_else text NOT NULL DEFAULT '',
    submitted_at timestamptz,
    on_time boolean,
    amendments integer NOT NULL DEFAULT 0,
    version integer NOT NULL DEFAULT 1,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT weekly_update_meeting_member_key UNIQUE (meeting_id, member)
);
CREATE TABLE {S}.update_line (
    update_id uuid NOT NULL REFERENCES {S}.weekly_update (id) ON DELETE CASCADE,
    key text NOT NULL,
    position integer NOT NULL,
    kind text NOT NULL,
    ref_id uuid,
    label text NOT NULL DEFAULT '',
    status text CONSTRAINT update_line_status_check
        CHECK (status IS NULL OR status IN ('on_track', 'at_risk', 'blocked', 'done')),
    note text NOT NULL DEFAULT '',
    next_step text NOT NULL DEFAULT '',
    next_step_due date,
    task_id uuid,
    reasons text[] NOT NULL DEFAULT '{{}}',
    CONSTRAINT update_line_pkey PRIMARY KEY (update_id, key)
);
CREATE TABLE {S}.update_revision (
    update_id uuid NOT NULL REFERENCES {S}.weekly_update (id) ON DELETE CASCADE,
    revision integer NOT NULL,
    action text NOT NULL,
    by text,
    at timestamptz NOT NULL DEFAULT now(),
    body jsonb NOT NULL,
    CONSTRAINT update_revision_pkey PRIMARY KEY (update_id, revision)
);
CREATE TABLE {S}.task (
    id uuid PRIMARY KEY,
    owner text NOT NULL,
    title text NOT NULL,
    due_date date NOT NULL,
    link_kind text,
    link_id uuid,
    link_label text,
    status text NOT NULL DEFAULT 'open' CONSTRAINT task_status_check CHECK (status IN ('open', 'done', 'dropped')),
    reason text,
    week date NOT NULL,
    first_week date NOT NULL,
    carried integer NOT NULL DEFAULT 0,
    from_update_id uuid,
    from_line_key text,
    created_by text,
    created_at timestamptz NOT NULL DEFAULT now(),
    closed_at timestamptz,
    version integer NOT NULL DEFAULT 1,
    CONSTRAINT task_from_line_key UNIQUE (from_update_id, from_line_key)
);
CREATE INDEX task_open_week_idx ON {S}.task (week) WHERE status = 'open';
CREATE INDEX task_owner_idx ON {S}.task (owner, due_date);
CREATE INDEX task_week_idx ON {S}.task (week);
CREATE TABLE {S}.task_carry (
    task_id uuid NOT NULL REFERENCES {S}.task (id) ON DELETE CASCADE,
    to_week date NOT NULL,
    from_week date NOT NULL,
    at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT task_carry_pkey PRIMARY KEY (task_id, to_week)
);

CREATE TABLE {S}.pipeline_deal (
    id uuid PRIMARY KEY,
    version integer NOT NULL,
    name text NOT NULL,
    owner text,
    partner_id uuid,
    amount numeric(20, 2) NOT NULL,
    currency text NOT NULL,
    stage_name text NOT NULL,
    outcome text NOT NULL,
    expected_close_date date,
    created_at timestamptz NOT NULL,
    stage_entered_at timestamptz NOT NULL,
    closed_at timestamptz,
    ace_review_status text,
    ace_action_due_date date
);
CREATE INDEX pipeline_deal_owner_idx ON {S}.pipeline_deal (owner);
CREATE INDEX pipeline_deal_partner_idx ON {S}.pipeline_deal (partner_id);
CREATE TABLE {S}.pipeline_partner (
    id uuid PRIMARY KEY,
    name text NOT NULL,
    owner text,
    archived boolean NOT NULL DEFAULT false,
    version integer NOT NULL
);
CREATE TABLE {S}.pipeline_deal_change (
    event_id uuid PRIMARY KEY,
    opportunity_id uuid NOT NULL,
    kind text NOT NULL CONSTRAINT pipeline_deal_change_kind_check CHECK (kind IN ('created', 'moved', 'won', 'lost')),
    at timestamptz NOT NULL,
    from_stage text,
    to_stage text,
    amount numeric(20, 2) NOT NULL,
    currency text NOT NULL
);
CREATE INDEX pipeline_deal_change_at_idx ON {S}.pipeline_deal_change (at);
CREATE INDEX pipeline_deal_change_opportunity_idx ON {S}.pipeline_deal_change (opportunity_id);
CREATE TABLE {S}.pipeline_settings (
    id smallint PRIMARY KEY CONSTRAINT pipeline_settings_single_check CHECK (id = 1),
    fiscal_year_start_month smallint NOT NULL,
    stuck_after_days integer NOT NULL,
    version integer NOT NULL
);
"""

TABLES = ("pipeline_settings", "pipeline_deal_change", "pipeline_partner", "pipeline_deal", "task_carry", "task",
          "update_revision", "update_line", "weekly_update", "meeting_decision", "meeting_attendee", "meeting",
          "week_settings")


def upgrade() -> None:
    # One statement per execute: asyncpg prepares each, and a prepared statement holds one command.
    for statement in UPGRADE.split(";"):
        if statement.strip():
            op.execute(statement)


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP TABLE {S}.{table}")
