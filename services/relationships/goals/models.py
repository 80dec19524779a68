"""Goal commitments. Their progress is not stored: it is counted from the pipeline copy when read, so it
always equals a recount."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean, DateTime, Index, Integer, String, Text, Uuid, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from runtime.db import MONEY, make_metadata


class Base(DeclarativeBase):
    metadata = make_metadata("relationships")


class GoalRow(Base):
    __tablename__ = "goal"
    __table_args__ = (
        # The goals page lists by hyperscaler and period.
        Index("goal_hyperscaler_period_idx", "hyperscaler", "period"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    hyperscaler: Mapped[str] = mapped_column(String(20))
    period: Mapped[str] = mapped_column(String(7))
    metric: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(Text)
    target: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str | None] = mapped_column(String(3))
    manual_progress: Mapped[Decimal | None] = mapped_column(MONEY)
    # The progress last published (GoalChangedV1); counted goals publish again when it changes.
    progress: Mapped[Decimal | None] = mapped_column(MONEY)
    owner: Mapped[str | None] = mapped_column(Text)
    archived: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
