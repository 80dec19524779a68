"""The pipeline service's tables (schema `pipeline`)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from runtime.db import MONEY, make_metadata

SCHEMA = "pipeline"


class Base(DeclarativeBase):
    metadata = make_metadata(SCHEMA)


class Partner(Base):
    __tablename__ = "partner"
    __table_args__ = (
        Index("partner_type_idx", "type"),
        Index("partner_owner_idx", "owner"),
        Index("partner_score_idx", "score", postgresql_where=text("archived_at IS NULL")),
        # Partner names are unique whatever their case.
        Index("partner_lower_name_key", func.lower(text("name")), unique=True),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(20))
    tier: Mapped[str] = mapped_column(String(20))
    tier_auto: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    status: Mapped[str] = mapped_column(String(20))
    owner: Mapped[str | None] = mapped_column(Text)
    strategic_fit: Mapped[Decimal | None] = mapped_column(Numeric(4, 2))
    revenue_potential: Mapped[Decimal | None] = mapped_column(Numeric(4, 2))
    feasibility: Mapped[Decimal | None] = mapped_column(Numeric(4, 2))
    risk: Mapped[Decimal | None] = mapped_column(Numeric(4, 2))
    score: Mapped[Decimal | None] = mapped_column(Numeric(5, 2))
    trailing_revenue: Mapped[Decimal | None] = mapped_column(MONEY)
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Soft delete (pipeline_0005): hidden everywhere, restorable for contracts' RESTORE_DAYS.
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Opportunity(Base):
    __tablename__ = "opportunity"
    __table_args__ = (
        # Idempotent ingestion: one opportunity per (source, external id).
        Index("opportunity_source_external_id_key", "source", "external_id", unique=True,
              postgresql_where=text("external_id IS NOT NULL")),
        Index("opportunity_created_at_idx", "created_at", "id"),
        Index("opportunity_owner_idx", "owner"),
        Index("opportunity_partner_id_idx", "partner_id"),
        Index("opportunity_pipeline_stage_idx", "pipeline", "stage"),
        Index("opportunity_expected_close_date_idx", "expected_close_date"),
        # Trailing won revenue per partner, for tiers.
        Index("opportunity_partner_won_idx", "partner_id", "closed_at", postgresql_where=text("outcome = 'won'")),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    version: Mapped[int] = mapped_column(Integer, default=1)
    name: Mapped[str] = mapped_column(String(200))
    pipeline: Mapped[str] = mapped_column(String(40))
    stage: Mapped[str] = mapped_column(String(40))
    outcome: Mapped[str] = mapped_column(String(8))
    partner_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("partner.id"))
    customer: Mapped[str] = mapped_column(String(200))
    amount: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3))
    expected_close_date: Mapped[date | None] = mapped_column(Date)
    owner: Mapped[str | None] = mapped_column(Text)
    deal_model: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str | None] = mapped_column(String(200))
    source_modified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    hyperscaler: Mapped[str | None] = mapped_column(String(10))
    ace: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    gcp: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    stage_entered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    launched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Soft delete (pipeline_0005): hidden everywhere, restorable for contracts' RESTORE_DAYS.
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LedgerPartner(Base):
    """Partners with money on the commission ledger, from the commissions service's posted-entries events
    (pipeline_0005): a partner listed here is never deleted. Entries are never removed from the
    append-only ledger, so a partner once listed stays listed."""

    __tablename__ = "ledger_partner"

    partner_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    first_posted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class StageChange(Base):
    __tablename__ = "opportunity_stage_change"
    __table_args__ = (Index("opportunity_stage_change_opportunity_id_idx", "opportunity_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    opportunity_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("opportunity.id", ondelete="CASCADE"))
    from_stage: Mapped[str | None] = mapped_column(String(40))
    to_stage: Mapped[str] = mapped_column(String(40))
    changed_by: Mapped[str | None] = mapped_column(Text)
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class NextStep(Base):
    __tablename__ = "opportunity_next_step"
    __table_args__ = (Index("opportunity_next_step_opportunity_id_idx", "opportunity_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    opportunity_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("opportunity.id", ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(Text)
    recorded_by: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class StageSetRow(Base):
    """A pipeline's stage set as configured; built-in ones live in contracts until redefined."""

    __tablename__ = "stage_set"

    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    definition: Mapped[dict[str, Any]] = mapped_column(JSONB)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class SettingsRow(Base):
    __tablename__ = "settings"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    definition: Mapped[dict[str, Any]] = mapped_column(JSONB)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ImportBatchRow(Base):
    __tablename__ = "import_batch"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(String(20))
    columns: Mapped[list[str]] = mapped_column(JSONB)
    actor: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ImportRowRow(Base):
    """A checked row of an import waiting for its commit."""

    __tablename__ = "import_row"

    batch_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("import_batch.id", ondelete="CASCADE"),
                                                primary_key=True)
    row: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    errors: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)


class DealRegistration(Base):
    """A deal a partner registered, waiting for (or after) its owner's decision."""

    __tablename__ = "deal_registration"
    __table_args__ = (Index("deal_registration_partner_id_idx", "partner_id"),
                      # The conflict check looks registrations up by customer.
                      Index("deal_registration_customer_key_idx", "customer_key"))

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    version: Mapped[int] = mapped_column(Integer, default=1)
    partner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("partner.id"))
    name: Mapped[str] = mapped_column(String(200))
    customer: Mapped[str] = mapped_column(String(200))
    # contracts.registrations.customer_key(customer): what the conflict check compares.
    customer_key: Mapped[str] = mapped_column(String(200))
    amount: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3))
    expected_close_date: Mapped[date | None] = mapped_column(Date)
    deal_model: Mapped[str] = mapped_column(String(20))
    notes: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10))
    conflicts: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    submitted_by: Mapped[str] = mapped_column(Text)
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_by: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str | None] = mapped_column(Text)
    opportunity_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("opportunity.id"))


class PartnerEnablement(Base):
    """The pipeline's copy of each partner's enablement score (relationships.enablement.score_changed.v1):
    the latest version wins, so a late older event changes nothing. Feeds the feasibility criterion when
    the setting `feasibility_from_enablement` is on."""

    __tablename__ = "partner_enablement"

    partner_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    score: Mapped[Decimal | None] = mapped_column(Numeric(5, 2))
    version: Mapped[int] = mapped_column(Integer)
    as_of: Mapped[datetime] = mapped_column(DateTime(timezone=True))
