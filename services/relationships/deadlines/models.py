"""The deadlines published so far, as last published."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Date, DateTime, Integer, String, Text, Uuid
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from runtime.db import MONEY, make_metadata


class Base(DeclarativeBase):
    metadata = make_metadata("relationships")


class Deadline(Base):
    __tablename__ = "deadline"

    key: Mapped[str] = mapped_column(Text, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(Text)
    due_date: Mapped[date] = mapped_column(Date)
    time_zone: Mapped[str] = mapped_column(String(64))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    regarding: Mapped[str] = mapped_column(String(30))
    regarding_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    link: Mapped[str] = mapped_column(Text)
    owner: Mapped[str | None] = mapped_column(Text)
    amount_at_stake: Mapped[Decimal | None] = mapped_column(MONEY)
    currency: Mapped[str | None] = mapped_column(String(3))
    version: Mapped[int] = mapped_column(Integer)
