"""The team's week in the relationships schema (created by migration relationships_0002)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from runtime.db import make_metadata

SCHEMA = "relationships"


class Base(DeclarativeBase):
    metadata = make_metadata(SCHEMA)


class WeekSettingsRow(Base):
    __tablename__ = "week_settings"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, default=1)
    time_zone: Mapped[str] = mapped_column(Text)
    updates_due_weekday: Mapped[int] = mapped_column(SmallInteger, default=0, server_default=text("0"))
    updates_due_hour: Mapped[int] = mapped_column(SmallInteger, default=12, server_default=text("12"))
    version: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))


class MeetingRow(Base):
    __tablename__ = "meeting"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    week: Mapped[date] = mapped_column(Date, unique=True)
    time_zone: Mapped[str] = mapped_column(Text)
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updates_due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(Text, default="open", server_default="open")
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_by: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class AttendeeRow(Base):
    __tablename__ = "meeting_attendee"

    meeting_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(MeetingRow.id, ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text)


class DecisionRow(Base):
    __tablename__ = "meeting_decision"
    __table_args__ = (
        Index("meeting_decision_meeting_idx", "meeting_id", "recorded_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    meeting_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(MeetingRow.id, ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(Text)
    recorded_by: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class UpdateRow(Base):
    __tablename__ = "weekly_update"
    __table_args__ = (
        UniqueConstraint("meeting_id", "member", name="weekly_update_meeting_member_key"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    meeting_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(MeetingRow.id, ondelete="CASCADE"))
    member: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, default="draft", server_default="draft")
    anything_else: Mapped[str] = mapped_column(Text, default="", server_default="")
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    on_time: Mapped[bool | None] = mapped_column(Boolean)
    amendments: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    version: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class LineRow(Base):
    __tablename__ = "update_line"

    update_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(UpdateRow.id, ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(Text)
    ref_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    label: Mapped[str] = mapped_column(Text, default="", server_default="")
    status: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str] = mapped_column(Text, default="", server_default="")
    next_step: Mapped[str] = mapped_column(Text, default="", server_default="")
    next_step_due: Mapped[date | None] = mapped_column(Date)
    task_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    reasons: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list, server_default=text("'{}'"))


class RevisionRow(Base):
    __tablename__ = "update_revision"

    update_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(UpdateRow.id, ondelete="CASCADE"), primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, primary_key=True)
    action: Mapped[str] = mapped_column(Text)
    by: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    body: Mapped[dict[str, Any]] = mapped_column(JSONB)


class TaskRow(Base):
    __tablename__ = "task"
    __table_args__ = (
        UniqueConstraint("from_update_id", "from_line_key", name="task_from_line_key"),
        # Rollover looks for open tasks of earlier weeks; lists filter by owner and by week.
        Index("task_open_week_idx", "week", postgresql_where=text("status = 'open'")),
        Index("task_owner_idx", "owner", "due_date"),
        Index("task_week_idx", "week"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    owner: Mapped[str] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    due_date: Mapped[date] = mapped_column(Date)
    link_kind: Mapped[str | None] = mapped_column(Text)
    link_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    link_label: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, default="open", server_default="open")
    reason: Mapped[str | None] = mapped_column(Text)
    week: Mapped[date] = mapped_column(Date)
    first_week: Mapped[date] = mapped_column(Date)
    carried: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    from_update_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    from_line_key: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))


class CarryRow(Base):
    __tablename__ = "task_carry"

    task_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(TaskRow.id, ondelete="CASCADE"), primary_key=True)
    to_week: Mapped[date] = mapped_column(Date, primary_key=True)
    from_week: Mapped[date] = mapped_column(Date)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
