"""Business reviews with a partner and the follow-up tasks made from them."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, DateTime, ForeignKey, Index, Integer, String, Text, Uuid, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from runtime.db import make_metadata


class Base(DeclarativeBase):
    metadata = make_metadata("relationships")


class ReviewRow(Base):
    __tablename__ = "business_review"
    __table_args__ = (Index("business_review_partner_id_idx", "partner_id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    partner_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    kind: Mapped[str] = mapped_column(String(20))
    period: Mapped[str] = mapped_column(String(7))
    scheduled_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20))
    owner: Mapped[str | None] = mapped_column(Text)
    attendees: Mapped[list[str]] = mapped_column(JSONB)
    # The snapshot of the partner's figures (contracts/reviews.Agenda) the gateway assembled.
    agenda: Mapped[dict[str, Any]] = mapped_column(JSONB)
    notes: Mapped[str | None] = mapped_column(Text)
    decisions: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    held_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    created_by: Mapped[str | None] = mapped_column(Text)


class ReviewTaskRow(Base):
    __tablename__ = "business_review_task"

    review_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(ReviewRow.id, ondelete="CASCADE"), primary_key=True)
    task_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
