"""Competencies and their renewal checklists."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Date, DateTime, ForeignKey, Integer, String, Text, Uuid
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from runtime.db import make_metadata


class Base(DeclarativeBase):
    metadata = make_metadata("relationships")


class CompetencyRow(Base):
    __tablename__ = "competency"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    hyperscaler: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(30))
    achieved_on: Mapped[date | None] = mapped_column(Date)
    renewal_date: Mapped[date | None] = mapped_column(Date)
    time_zone: Mapped[str] = mapped_column(String(64))
    owner: Mapped[str | None] = mapped_column(Text)
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RequirementRow(Base):
    __tablename__ = "competency_requirement"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    competency_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(CompetencyRow.id, ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(30))
    title: Mapped[str] = mapped_column(Text)
    required: Mapped[int] = mapped_column(Integer)
    done: Mapped[int] = mapped_column(Integer)
    owner: Mapped[str | None] = mapped_column(Text)
    due_date: Mapped[date | None] = mapped_column(Date)
