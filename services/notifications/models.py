"""The notifications schema: the people it writes to and their preferences, what it keeps of the
pipeline (deals and settings) to evaluate rules, the alerts raised (the in-app feed), and the emails
(deliveries) with their status."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, Date, DateTime, Index, Integer, SmallInteger, String, Text, Uuid, func, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from runtime.db import MONEY, make_metadata

SCHEMA = "notifications"


class Base(DeclarativeBase):
    metadata = make_metadata(SCHEMA)


class Person(Base):
    """Someone the service may write to, from the gateway's directory (SyncPeople)."""

    __tablename__ = "person"

    user_id: Mapped[str] = mapped_column(Text, primary_key=True)
    email: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(20))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    time_zone: Mapped[str] = mapped_column(Text, default="UTC", server_default="UTC")
    synced_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Preference(Base):
    __tablename__ = "preference"

    user_id: Mapped[str] = mapped_column(Text, primary_key=True)
    email: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    digest: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    quiet_from: Mapped[int | None] = mapped_column(SmallInteger)
    quiet_until: Mapped[int | None] = mapped_column(SmallInteger)
    muted_rules: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list, server_default=text("'{}'"))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Deal(Base):
    """An opportunity as the rules need it (the newest version the pipeline published)."""

    __tablename__ = "deal"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(Text)
    pipeline: Mapped[str] = mapped_column(Text)
    stage: Mapped[str] = mapped_column(Text)
    stage_name: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(10))
    amount: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3))
    owner: Mapped[str | None] = mapped_column(Text)
    customer: Mapped[str] = mapped_column(Text)
    stage_entered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ace_status: Mapped[str | None] = mapped_column(Text)
    ace_due: Mapped[date | None] = mapped_column(Date)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("deal_open_idx", "stage_entered_at", postgresql_where="outcome = 'open'"),)


class PipelineSettings(Base):
    """The pipeline's settings as last published (reporting currency, fx rates, stuck threshold)."""

    __tablename__ = "pipeline_settings"

    # One row: id 1 (no sequence).
    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, default=1, autoincrement=False)
    version: Mapped[int] = mapped_column(Integer)
    settings: Mapped[dict[str, Any]] = mapped_column(JSONB)


class DeadlineCopy(Base):
    """A deadline another service published (newest version wins), for the deadline scans."""

    __tablename__ = "deadline"

    key: Mapped[str] = mapped_column(Text, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(Text)
    due_date: Mapped[date] = mapped_column(Date)
    time_zone: Mapped[str] = mapped_column(Text)
    link: Mapped[str] = mapped_column(Text)
    owner: Mapped[str | None] = mapped_column(Text)
    amount_at_stake: Mapped[Decimal | None] = mapped_column(MONEY)
    currency: Mapped[str | None] = mapped_column(String(3))

    __table_args__ = (Index("deadline_due_date_idx", "due_date", postgresql_where="status = 'open'"),)


class SyncHealthCopy(Base):
    """The newest pass of each sync worker's source (contracts/sync.py SyncRunFinishedV1), for the
    stale-sync scan: a worker that stopped publishing goes stale here too."""

    __tablename__ = "sync_health"

    source: Mapped[str] = mapped_column(String(20), primary_key=True)
    catalog: Mapped[str] = mapped_column(Text, primary_key=True)
    last_run_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_ok: Mapped[bool] = mapped_column(Boolean)
    last_success_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)


class Alert(Base):
    """One alert for one person: their in-app feed. (rule, key, user_id) fires once per rule window."""

    __tablename__ = "alert"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    rule: Mapped[str] = mapped_column(String(40))
    key: Mapped[str] = mapped_column(Text)
    user_id: Mapped[str] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    why: Mapped[str] = mapped_column(Text)
    link: Mapped[str] = mapped_column(Text)
    fired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("alert_dedupe_idx", "rule", "key", "user_id", "fired_at"),
        Index("alert_feed_idx", "user_id", "created_at"),
    )


class EmailDelivery(Base):
    """An email to send, rendered when it was decided; sent by the delivery worker with retries."""

    __tablename__ = "delivery"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(String(10))
    rule: Mapped[str | None] = mapped_column(String(40))
    alert_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # Digests: once per person and ISO week ('2026-W49'); unique, so two processes cannot both send it.
    dedupe_key: Mapped[str | None] = mapped_column(Text, unique=True)
    user_id: Mapped[str] = mapped_column(Text)
    to: Mapped[str] = mapped_column("to_address", Text)
    subject: Mapped[str] = mapped_column(Text)
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    # Inline images by content id, base64 (PNG charts of the digest).
    images: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))
    status: Mapped[str] = mapped_column(String(10), default="pending", server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (Index("delivery_due_idx", "next_attempt_at", postgresql_where="status = 'pending'"),
                      Index("delivery_created_idx", "created_at"))
