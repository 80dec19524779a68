"""The contacts area's tables in the relationships schema: contacts, interactions, the links between
contacts and deals, settings and capacities. Organisations, deals and exchange rates come from the
service's shared copy of the pipeline (services/relationships/pipeline_copy.py), kept from its events,
so value at stake never needs a call to the pipeline service."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, DateTime, Float, ForeignKey, Index, Integer, Numeric, String, Text, Uuid, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from runtime.db import make_metadata

SCHEMA = "relationships"


class Base(DeclarativeBase):
    metadata = make_metadata(SCHEMA)


class Contact(Base):
    __tablename__ = "contact"
    __table_args__ = (
        # One contact per email within an organisation: imports and co-sell deals match on it.
        Index("contact_partner_email_key", "partner_id", func.lower(text("email")), unique=True,
              postgresql_where=text("email IS NOT NULL")),
        Index("contact_partner_id_idx", "partner_id"),
        Index("contact_owner_idx", "owner"),
        # Search by the start of a name (LIKE 'ada%' on lower(name)).
        Index("contact_lower_name_idx", func.lower(text("name")).label("lower_name"),
              postgresql_ops={"lower_name": "text_pattern_ops"}),
        # The cooling scan and the attention list read only contacts whose cold date is near.
        Index("contact_cold_at_idx", "cold_at", postgresql_where=text("archived_at IS NULL")),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    partner_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(40))
    role: Mapped[str | None] = mapped_column(String(100))
    title: Mapped[str | None] = mapped_column(String(200))
    territory: Mapped[str | None] = mapped_column(String(100))
    segment: Mapped[str | None] = mapped_column(String(100))
    seniority: Mapped[str] = mapped_column(String(20))
    reports_to: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    owner: Mapped[str | None] = mapped_column(Text)
    crucial: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # What the closed form of the strength needs (domain.py): the decayed weight sum at the latest touch.
    energy: Mapped[float] = mapped_column(Float, default=0.0, server_default=text("0"))
    last_touch_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    touches: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # Derived from the above and kept for the index: when the score falls below the cold threshold.
    cold_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The latest touch of the cooling episode already announced (one alert per crossing).
    cooling_notified_for: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Interaction(Base):
    __tablename__ = "interaction"
    __table_args__ = (
        Index("interaction_uid_key", "uid", unique=True, postgresql_where=text("uid IS NOT NULL")),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    initiated_by: Mapped[str] = mapped_column(String(10))
    partner_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    opportunity_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    note: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(20))
    uid: Mapped[str | None] = mapped_column(Text)
    logged_by: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class InteractionContact(Base):
    __tablename__ = "interaction_contact"
    __table_args__ = (
        Index("interaction_contact_contact_id_idx", "contact_id"),
    )

    interaction_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(Interaction.id, ondelete="CASCADE"), primary_key=True)
    contact_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(Contact.id), primary_key=True)


class ContactDeal(Base):
    """A deal that depends on a contact: named on the co-sell opportunity, or linked by an interaction."""

    __tablename__ = "contact_deal"
    __table_args__ = (
        Index("contact_deal_opportunity_id_idx", "opportunity_id"),
    )

    contact_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(Contact.id), primary_key=True)
    opportunity_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    via: Mapped[str] = mapped_column(String(20))


class ContactSettings(Base):
    __tablename__ = "contact_settings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    settings: Mapped[dict[str, Any]] = mapped_column(JSONB)
    version: Mapped[int] = mapped_column(Integer)


class MemberCapacity(Base):
    __tablename__ = "member_capacity"

    owner: Mapped[str] = mapped_column(Text, primary_key=True)
    hours_per_week: Mapped[Decimal] = mapped_column(Numeric(5, 2))
