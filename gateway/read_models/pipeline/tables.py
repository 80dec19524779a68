"""The pipeline read model's tables (opportunities as last described, stage sets, settings, the aggregates the
KPIs read, the trailing-twelve-month ARR per partner) and the stage sets and settings as they hold them."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Date,
    DateTime,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Text,
    Uuid,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from contracts import pipeline as pc
from gateway.read_models import kpi_snapshots
from gateway.read_models.base import Base
from runtime.db import MONEY


class OpportunityView(Base):
    __tablename__ = "pipeline_opportunity"
    __table_args__ = (
        # The oldest open deals in their stage (stuck deals), overall and per owner.
        Index("pipeline_opportunity_open_since_idx", "stage_entered_at", postgresql_where=text("outcome = 'open'")),
        Index("pipeline_opportunity_owner_open_since_idx", "owner", "stage_entered_at",
              postgresql_where=text("outcome = 'open'")),
        # Covering: a week of moves is read from the index alone, then sorted by amount or counted per owner.
        Index("pipeline_opportunity_stage_entered_idx", "stage_entered_at",
              postgresql_include=["created_at", "amount", "owner", "id"]),
        # Search (/search, /api/search): Postgres full text over name, customer and external id (gateway_web_0003).
        Index("pipeline_opportunity_search_idx",
              func.to_tsvector(text("'simple'::regconfig"), text("search_text")), postgresql_using="gin"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    pipeline: Mapped[str] = mapped_column(String(40))
    stage: Mapped[str] = mapped_column(String(40))
    # The stage before the last move (gateway_pipeline_0004), so a page shows "from → to" without asking.
    previous_stage: Mapped[str | None] = mapped_column(String(40))
    outcome: Mapped[str] = mapped_column(String(8))
    partner_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    owner: Mapped[str | None] = mapped_column(Text)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3))
    expected_close_date: Mapped[date | None] = mapped_column(Date)
    hyperscaler: Mapped[str | None] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    stage_entered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    launched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # What search finds a deal by besides its name (gateway_web_0003).
    customer: Mapped[str | None] = mapped_column(String(200))
    external_id: Mapped[str | None] = mapped_column(String(200))
    # Name, customer and external id in one text: what the full-text index covers (`search_text_of`).
    search_text: Mapped[str | None] = mapped_column(Text)


def search_text_of(name: str, customer: str | None, external_id: str | None) -> str:
    return " ".join(x for x in (name, customer, external_id) if x)


class StageView(Base):
    __tablename__ = "pipeline_stage"

    pipeline: Mapped[str] = mapped_column(String(40), primary_key=True)
    stage: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer)
    probability: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(8))
    set_version: Mapped[int] = mapped_column(Integer)


class SettingsView(Base):
    __tablename__ = "pipeline_settings"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    definition: Mapped[dict[str, Any]] = mapped_column(JSONB)
    version: Mapped[int] = mapped_column(Integer)


class OpenAgg(Base):
    __tablename__ = "pipeline_open_agg"

    pipeline: Mapped[str] = mapped_column(String(40), primary_key=True)
    stage: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner: Mapped[str] = mapped_column(Text, primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    close_month: Mapped[date] = mapped_column(Date, primary_key=True)
    deals: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    amount: Mapped[Decimal] = mapped_column(MONEY, default=0, server_default=text("0"))


class ClosedAgg(Base):
    __tablename__ = "pipeline_closed_agg"

    month: Mapped[date] = mapped_column(Date, primary_key=True)
    pipeline: Mapped[str] = mapped_column(String(40), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(8), primary_key=True)
    owner: Mapped[str] = mapped_column(Text, primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    deals: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    amount: Mapped[Decimal] = mapped_column(MONEY, default=0, server_default=text("0"))
    cycle_seconds: Mapped[Decimal] = mapped_column(Numeric(24, 0), default=0, server_default=text("0"))


class PartnerWonAgg(Base):
    __tablename__ = "pipeline_partner_won_agg"
    __table_args__ = (
        Index("pipeline_partner_won_agg_month_idx", "month", postgresql_include=["partner_id", "currency", "amount"]),
    )

    partner_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    deals: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    amount: Mapped[Decimal] = mapped_column(MONEY, default=0, server_default=text("0"))


class LaunchAgg(Base):
    __tablename__ = "pipeline_launch_agg"

    month: Mapped[date] = mapped_column(Date, primary_key=True)
    hyperscaler: Mapped[str] = mapped_column(String(10), primary_key=True)
    owner: Mapped[str] = mapped_column(Text, primary_key=True)
    launches: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))


class StuckAgg(Base):
    __tablename__ = "pipeline_stuck_agg"

    entered_day: Mapped[date] = mapped_column(Date, primary_key=True)
    pipeline: Mapped[str] = mapped_column(String(40), primary_key=True)
    stage: Mapped[str] = mapped_column(String(40), primary_key=True)
    deals: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))


class ArrWindow(Base):
    """The months and exchange rates the per-partner ARR below is kept for."""

    __tablename__ = "pipeline_arr_window"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    first_month: Mapped[date] = mapped_column(Date)
    last_month: Mapped[date] = mapped_column(Date)
    reporting_currency: Mapped[str] = mapped_column(String(3))
    rates: Mapped[dict[str, str]] = mapped_column(JSONB)


class PartnerArrCurrency(Base):
    __tablename__ = "pipeline_partner_arr_currency"

    partner_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    amount: Mapped[Decimal] = mapped_column(MONEY)


class PartnerArrTotal(Base):
    __tablename__ = "pipeline_partner_arr"
    __table_args__ = (
        Index("pipeline_partner_arr_arr_idx", text("arr DESC")),
    )

    partner_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    arr: Mapped[Decimal] = mapped_column(MONEY)


# aggregate name -> (model, key columns, value columns)
AGGREGATES: dict[str, tuple[type[Base], tuple[str, ...], tuple[str, ...]]] = {
    "open": (OpenAgg, ("pipeline", "stage", "owner", "currency", "close_month"), ("deals", "amount")),
    "closed": (ClosedAgg, ("month", "pipeline", "outcome", "owner", "currency"), ("deals", "amount", "cycle_seconds")),
    "partner_won": (PartnerWonAgg, ("partner_id", "month", "currency"), ("deals", "amount")),
    "launch": (LaunchAgg, ("month", "hyperscaler", "owner"), ("launches",)),
    "stuck": (StuckAgg, ("entered_day", "pipeline", "stage"), ("deals",)),
}


READ_MODEL_TABLES = tuple(m.__table__ for m in (OpportunityView, StageView, SettingsView, OpenAgg, ClosedAgg,
                                                PartnerWonAgg, LaunchAgg, StuckAgg, ArrWindow, PartnerArrCurrency,
                                                PartnerArrTotal)) + kpi_snapshots.TABLES


async def settings_of(session: AsyncSession) -> pc.PipelineSettings:
    stored = await session.scalar(select(SettingsView.definition).where(SettingsView.id == 1))
    return pc.PipelineSettings.model_validate(stored) if stored else pc.PipelineSettings()


async def stage_sets(session: AsyncSession) -> dict[str, list[StageView]]:
    """The stages per pipeline: as defined by events, else the built-in definitions."""
    found: dict[str, list[StageView]] = {}
    for key, s in pc.BUILTIN_STAGE_SETS.items():
        found[key] = [StageView(pipeline=key, stage=st.key, name=st.name, position=i, probability=st.probability,
                                outcome=st.outcome.value, set_version=0) for i, st in enumerate(s.stages)]
    defined: dict[str, list[StageView]] = {}
    for row in await session.scalars(select(StageView).order_by(StageView.pipeline, StageView.position)):
        defined.setdefault(row.pipeline, []).append(row)
    found.update(defined)
    return found
