"""Funding tables in the relationships schema: programs as configured, fund requests, their stage moves
and milestones."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from runtime.db import MONEY, make_metadata

SCHEMA = "relationships"


class Base(DeclarativeBase):
    metadata = make_metadata(SCHEMA)


class FundingProgram(Base):
    """A program as an admin configured it (a built-in one without a row is as shipped)."""

    __tablename__ = "funding_program"

    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    definition: Mapped[dict[str, Any]] = mapped_column(JSONB)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class FundRequest(Base):
    __tablename__ = "fund_request"
    __table_args__ = (
        # The list filters by stage and program, and pages by creation.
        Index("fund_request_stage_idx", "stage", "created_at"),
        Index("fund_request_partner_idx", "partner_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    program: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(Text)
    phase: Mapped[str | None] = mapped_column(Text)
    stage: Mapped[str] = mapped_column(String(30))
    partner_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    owner: Mapped[str | None] = mapped_column(Text)
    aws_fund_request_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    currency: Mapped[str] = mapped_column(String(3))
    requested: Mapped[Decimal] = mapped_column(MONEY)
    approved: Mapped[Decimal | None] = mapped_column(MONEY)
    activity_start: Mapped[date] = mapped_column(Date)
    activity_end: Mapped[date] = mapped_column(Date)
    opportunities: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    stage_entered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class FundRequestMove(Base):
    __tablename__ = "fund_request_move"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(FundRequest.id, ondelete="CASCADE"), index=True)
    from_stage: Mapped[str | None] = mapped_column(String(30))
    to_stage: Mapped[str] = mapped_column(String(30))
    moved_by: Mapped[str | None] = mapped_column(Text)
    moved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    note: Mapped[str | None] = mapped_column(Text)


class FundMilestone(Base):
    __tablename__ = "fund_milestone"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(FundRequest.id, ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(Text)
    end_date: Mapped[date] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    claim_due_date: Mapped[date] = mapped_column(Date)
    claim_status: Mapped[str] = mapped_column(String(20))
    received: Mapped[Decimal] = mapped_column(MONEY)
    claim_reference: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
