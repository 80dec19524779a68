"""The AWS sync's own schema: where it is in the source (cursor), what it has published, the work it
was asked to do, its runs and the records it could not sync. Kept in Postgres rather than a NATS
key-value bucket so that advancing the cursor, recording a version and staging its event in the
outbox is one transaction: a worker killed anywhere neither loses nor doubles an opportunity."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, DateTime, Identity, Index, Integer, Text, Uuid, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from runtime.db import make_metadata

SCHEMA = "aws_sync"


class Base(DeclarativeBase):
    metadata = make_metadata(SCHEMA)


class Cursor(Base):
    """Per catalog: the newest LastModifiedDate read in list order (changes since it are pulled next)."""

    __tablename__ = "cursor"

    catalog: Mapped[str] = mapped_column(Text, primary_key=True)
    watermark: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reconcile_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class SyncedOpportunity(Base):
    """The version of each ACE opportunity last published into the platform."""

    __tablename__ = "synced_opportunity"

    catalog: Mapped[str] = mapped_column(Text, primary_key=True)
    opportunity_id: Mapped[str] = mapped_column(Text, primary_key=True)
    last_modified: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    review_status: Mapped[str | None] = mapped_column(Text)
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), index=True)
    # The deal's fields as that version set them (outbound_rules.fields_of_event): a deal that still
    # holds them was not edited in PartnerOps.
    fields: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # Our deal, once the pipeline has told us of it (its events carry our id and ACE's).
    deal_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)


class SyncRequest(Base):
    """Work asked for and not done yet: a pass (incremental or reconcile, key '') or the refresh of one
    opportunity (key = its id). Asking twice is one request."""

    __tablename__ = "sync_request"

    kind: Mapped[str] = mapped_column(Text, primary_key=True)
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    reason: Mapped[str] = mapped_column(Text)
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    not_before: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class SyncRun(Base):
    __tablename__ = "sync_run"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    catalog: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), index=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ok: Mapped[bool | None] = mapped_column(Boolean)
    seen: Mapped[int] = mapped_column(Integer, server_default="0")
    published: Mapped[int] = mapped_column(Integer, server_default="0")
    unchanged: Mapped[int] = mapped_column(Integer, server_default="0")
    failed: Mapped[int] = mapped_column(Integer, server_default="0")
    error: Mapped[str | None] = mapped_column(Text)


class SyncProblem(Base):
    """An opportunity that could not be mapped onto the contract, with the reason; cleared when a later
    version of it is published."""

    __tablename__ = "sync_problem"

    catalog: Mapped[str] = mapped_column(Text, primary_key=True)
    opportunity_id: Mapped[str] = mapped_column(Text, primary_key=True)
    last_modified: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class OutboundEdit(Base):
    """An edit made in PartnerOps to a deal that lives in ACE, on its way out: the newest wanted values
    per opportunity (later edits merge into a waiting one)."""

    __tablename__ = "outbound_edit"

    catalog: Mapped[str] = mapped_column(Text, primary_key=True)
    opportunity_id: Mapped[str] = mapped_column(Text, primary_key=True)
    deal_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    fields: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # What the deal held from ACE when it was edited: a field AWS changed since is a conflict.
    base: Mapped[dict[str, Any]] = mapped_column(JSONB)
    edited_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # queued (to send) | held (ACE has it locked) | sent | superseded (AWS's newer version kept) | failed
    status: Mapped[str] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)


class Invitation(Base):
    """An engagement invitation AWS sent us (an AWS referral): a deal to accept or reject."""

    __tablename__ = "invitation"

    catalog: Mapped[str] = mapped_column(Text, primary_key=True)
    invitation_id: Mapped[str] = mapped_column(Text, primary_key=True)
    title: Mapped[str | None] = mapped_column(Text)
    sender: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)  # PENDING | ACCEPTED | REJECTED | EXPIRED, as AWS says
    invited_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Our answer: accept | reject, who gave it and why, and how sending it went (queued | sent | failed).
    decision: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    decision_state: Mapped[str | None] = mapped_column(Text)
    decision_error: Mapped[str | None] = mapped_column(Text)
    opportunity_id: Mapped[str | None] = mapped_column(Text)
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Share(Base):
    """A deal made in PartnerOps shared to ACE. The steps are CreateOpportunity (idempotent by
    `client_token`, so a retry after a timeout finds the opportunity the first try made),
    AssociateOpportunity with the solution, StartEngagementFromOpportunityTask; each step's result is
    committed before the next, so a worker stopped anywhere resumes at the step it had not finished."""

    __tablename__ = "share"
    __table_args__ = (Index("ix_share_opportunity_id", "catalog", "opportunity_id", unique=True),)

    catalog: Mapped[str] = mapped_column(Text, primary_key=True)
    deal_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    client_token: Mapped[str] = mapped_column(Text)
    # CreateOpportunity's parameters (without Catalog and ClientToken), built when it was asked for.
    request: Mapped[dict[str, Any]] = mapped_column(JSONB)
    solution_id: Mapped[str] = mapped_column(Text)
    opportunity_id: Mapped[str | None] = mapped_column(Text)
    task_id: Mapped[str | None] = mapped_column(Text)
    # queued | created | associated | submitted | failed
    state: Mapped[str] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    requested_by: Mapped[str] = mapped_column(Text)
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
