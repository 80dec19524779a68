"""The onboarding template and each partner's plan with its steps."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, DateTime, ForeignKey, Index, Integer, SmallInteger, String, Text, Uuid, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from runtime.db import make_metadata


class Base(DeclarativeBase):
    metadata = make_metadata("relationships")


class TemplateRow(Base):
    """The one template (id 1); absent until someone edits it, the playbook's four weeks till then."""

    __tablename__ = "onboarding_template"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class PlanRow(Base):
    __tablename__ = "onboarding_plan"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    # One plan per partner: a redelivered "partner created" makes none twice.
    partner_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    partner_name: Mapped[str] = mapped_column(Text)
    partner_type: Mapped[str] = mapped_column(String(20))
    started_on: Mapped[date] = mapped_column(Date)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer)


class StepRow(Base):
    __tablename__ = "onboarding_step"
    __table_args__ = (Index("onboarding_step_owner_idx", "owner"),)

    plan_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(PlanRow.id, ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(Text)
    week: Mapped[int] = mapped_column(SmallInteger)
    owner: Mapped[str | None] = mapped_column(Text)
    due_date: Mapped[date] = mapped_column(Date)
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    done_by: Mapped[str | None] = mapped_column(Text)
