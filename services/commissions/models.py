"""The commissions schema. Ledger entries are append-only: a trigger refuses deletes and any update
other than moving an entry's status forward (accrued → approved → paid)."""

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
    String,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from runtime.db import MONEY, make_metadata

SCHEMA = "commissions"


class Base(DeclarativeBase):
    metadata = make_metadata(SCHEMA)


class Partner(Base):
    """The partners the pipeline told us about: names for statements, tiers for tier-based rates."""

    __tablename__ = "partner"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class PartnerTierSince(Base):
    __tablename__ = "partner_tier"

    partner_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    tier: Mapped[str] = mapped_column(String(20))


class Agreement(Base):
    __tablename__ = "agreement"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    partner_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    name: Mapped[str] = mapped_column(String(200))
    direction: Mapped[str] = mapped_column(String(20))
    currency: Mapped[str] = mapped_column(String(3))
    deal_models: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    created_by: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_by: Mapped[str | None] = mapped_column(Text)


class AgreementVersion(Base):
    __tablename__ = "agreement_version"

    agreement_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(Agreement.id), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    effective_from: Mapped[date] = mapped_column(Date)
    effective_to: Mapped[date | None] = mapped_column(Date)
    retroactive: Mapped[bool] = mapped_column(Boolean)
    terms: Mapped[dict[str, Any]] = mapped_column(JSONB)
    revision: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    created_by: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_by: Mapped[str | None] = mapped_column(Text)


class AgreementAudit(Base):
    __tablename__ = "agreement_audit"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    agreement_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(Agreement.id), index=True)
    version: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    old: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    new: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class AgreementState(Base):
    """Where an agreement's fold stands: the last event folded and the open period's running totals.
    Its row is also the agreement's lock: every ledger write for the agreement holds it."""

    __tablename__ = "agreement_state"

    agreement_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(Agreement.id), primary_key=True)
    last_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_rank: Mapped[int | None] = mapped_column(Integer)
    last_ref: Mapped[str | None] = mapped_column(Text)
    period_key: Mapped[str | None] = mapped_column(String(10))
    period_basis: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0), server_default=text("0"))
    period_commission: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0), server_default=text("0"))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # Set anew by every write of the fast path (engine.CustomerCache), cleared by any other write of this row
    # or of the agreement's customer_state: whoever holds the customers' state written under this token can
    # use it without reading it again.
    state_token: Mapped[uuid.UUID | None] = mapped_column(Uuid)


class CustomerState(Base):
    __tablename__ = "customer_state"

    agreement_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(Agreement.id), primary_key=True)
    customer: Mapped[str] = mapped_column(Text, primary_key=True)
    start: Mapped[date] = mapped_column(Date)
    booked: Mapped[date] = mapped_column(Date)
    invoices: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    churned_on: Mapped[date | None] = mapped_column(Date)
    deal_commission: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0), server_default=text("0"))
    deal_model: Mapped[str | None] = mapped_column(Text)


class RevenueEvent(Base):
    """Every revenue fact received, keyed by its natural key (kind, ref, scope). `partner_id` is empty
    while the fact cannot be attributed yet (an invoice naming an opportunity not won yet)."""

    __tablename__ = "revenue_event"
    __table_args__ = (
        UniqueConstraint("ref", "kind", "scope", name="revenue_event_ref_key"),
        Index("revenue_event_partner_id_idx", "partner_id", "occurred_at"),
        # Facts waiting for their opportunity to be won (attributed when it is).
        Index("revenue_event_pending_idx", "opportunity_id", postgresql_where=text("partner_id IS NULL")),
        Index("revenue_event_invoice_ref_idx", "invoice_ref", postgresql_where=text("kind = 'refund'")),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    ref: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(Text, default="", server_default="")
    partner_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    opportunity_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    customer: Mapped[str] = mapped_column(Text, default="", server_default="")
    customer_name: Mapped[str | None] = mapped_column(Text)
    amount: Mapped[Decimal | None] = mapped_column(MONEY)
    currency: Mapped[str | None] = mapped_column(String(3))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    invoice_ref: Mapped[str | None] = mapped_column(Text)
    deal_model: Mapped[str | None] = mapped_column(Text)
    customer_started_on: Mapped[date | None] = mapped_column(Date)
    pipeline: Mapped[str | None] = mapped_column(String(40))  # a won deal's pipeline (SPIFs by pipeline)
    void: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    source: Mapped[str] = mapped_column(Text)
    actor: Mapped[str | None] = mapped_column(Text)
    event_occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class RevenueNote(Base):
    """Why an agreement earned nothing (or less) on a revenue event."""

    __tablename__ = "revenue_note"
    __table_args__ = (
        Index("revenue_note_agreement_id_idx", "agreement_id"),
        Index("revenue_note_revenue_key_idx", "revenue_key"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    agreement_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(Agreement.id))
    revenue_key: Mapped[str] = mapped_column(Text)
    note: Mapped[str] = mapped_column(Text)


class Payment(Base):
    __tablename__ = "payment"
    __table_args__ = (Index("payment_partner_id_idx", "partner_id", "paid_on"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    partner_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    direction: Mapped[str] = mapped_column(String(20))
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[Decimal] = mapped_column(MONEY)
    paid_on: Mapped[date] = mapped_column(Date)
    reference: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    created_by: Mapped[str | None] = mapped_column(Text)


class LedgerEntry(Base):
    __tablename__ = "ledger_entry"
    __table_args__ = (
        # One original entry per line; further entries on a line are adjustments.
        Index("ledger_entry_line_key", "agreement_id", "line_key", unique=True,
              postgresql_where=text("entry_type <> 'adjustment'")),
        Index("ledger_entry_partner_idx", "partner_id", "period"),
        Index("ledger_entry_customer_idx", "agreement_id", "customer"),
        Index("ledger_entry_revenue_key_idx", "revenue_key"),
        Index("ledger_entry_reverses_idx", "agreement_id", "reverses_key",
              postgresql_where=text("reverses_key IS NOT NULL")),
        Index("ledger_entry_adjusts_idx", "adjusts_entry_id", postgresql_where=text("adjusts_entry_id IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    agreement_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(Agreement.id))
    partner_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    direction: Mapped[str] = mapped_column(String(20))
    currency: Mapped[str] = mapped_column(String(3))
    entry_type: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), server_default=text("'accrued'"))
    amount: Mapped[Decimal] = mapped_column(MONEY)
    basis_amount: Mapped[Decimal] = mapped_column(MONEY)
    period: Mapped[date] = mapped_column(Date)
    line_key: Mapped[str] = mapped_column(Text)
    reverses_key: Mapped[str | None] = mapped_column(Text)
    revenue_key: Mapped[str] = mapped_column(Text)
    revenue_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    customer: Mapped[str] = mapped_column(Text)
    customer_name: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer)
    revision: Mapped[int] = mapped_column(Integer)
    rule: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(Text)
    reverses_entry_id: Mapped[int | None] = mapped_column(BigInteger)
    adjusts_entry_id: Mapped[int | None] = mapped_column(BigInteger)
    payment_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey(Payment.id))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    approved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    approved_by: Mapped[str | None] = mapped_column(Text)
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    paid_by: Mapped[str | None] = mapped_column(Text)


class Opportunity(Base):
    """The pipeline's opportunities as its events describe them: the open ones feed the forecast."""

    __tablename__ = "opportunity"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    partner_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    customer: Mapped[str] = mapped_column(Text)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3))
    probability: Mapped[int] = mapped_column(Integer)  # as carried; weighed only without a stage key
    stage: Mapped[str] = mapped_column(Text)  # the stage's name, for people
    pipeline: Mapped[str | None] = mapped_column(String(40))
    stage_key: Mapped[str | None] = mapped_column(String(40))
    outcome: Mapped[str] = mapped_column(String(20))
    deal_model: Mapped[str | None] = mapped_column(Text)
    expected_close_date: Mapped[date | None] = mapped_column(Date)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class StageSet(Base):
    """The pipeline's stage sets as its events define them: the forecast weighs by their probabilities."""

    __tablename__ = "stage_set"

    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    definition: Mapped[dict[str, Any]] = mapped_column(JSONB)
