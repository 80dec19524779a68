"""Training modules, each partner person's certification on a module, and each partner's last
published enablement score."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Boolean, Date, DateTime, Index, Integer, Numeric, SmallInteger, String, Text, Uuid, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from runtime.db import make_metadata


class Base(DeclarativeBase):
    metadata = make_metadata("relationships")


class ModuleRow(Base):
    __tablename__ = "enablement_module"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    duration_minutes: Mapped[int] = mapped_column(Integer)
    pass_mark: Mapped[int] = mapped_column(SmallInteger)
    valid_months: Mapped[int | None] = mapped_column(SmallInteger)
    required: Mapped[bool] = mapped_column(Boolean, default=False)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class CertificationRow(Base):
    """One per person and module: the last attempt and the last pass (a failed retake after a pass
    keeps the pass until it lapses)."""

    __tablename__ = "certification"
    __table_args__ = (Index("certification_contact_module_key", "contact_id", "module_id", unique=True),
                      Index("certification_partner_idx", "partner_id"))

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    contact_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    partner_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    module_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    due_on: Mapped[date | None] = mapped_column(Date)
    taken_on: Mapped[date | None] = mapped_column(Date)
    score: Mapped[int | None] = mapped_column(SmallInteger)
    passed_on: Mapped[date | None] = mapped_column(Date)
    expires_on: Mapped[date | None] = mapped_column(Date)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ScoreRow(Base):
    """What was last published for a partner, so only a change is published again."""

    __tablename__ = "enablement_score"

    partner_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    score: Mapped[Decimal | None] = mapped_column(Numeric(5, 2))
    required_modules: Mapped[int] = mapped_column(Integer)
    covered_modules: Mapped[int] = mapped_column(Integer)
    valid_certifications: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
