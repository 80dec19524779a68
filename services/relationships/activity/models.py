"""Quality figures entered per partner and month (activity itself is counted from other tables)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Date, DateTime, Integer, Numeric, Text, Uuid, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from runtime.db import make_metadata


class Base(DeclarativeBase):
    metadata = make_metadata("relationships")


class QualityRow(Base):
    __tablename__ = "partner_quality"

    partner_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    lead_quality: Mapped[Decimal | None] = mapped_column(Numeric(4, 2))
    customer_satisfaction: Mapped[Decimal | None] = mapped_column(Numeric(5, 2))
    implementation_success: Mapped[Decimal | None] = mapped_column(Numeric(5, 2))
    version: Mapped[int] = mapped_column(Integer)
    updated_by: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
