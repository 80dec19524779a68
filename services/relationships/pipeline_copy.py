"""What the relationships service keeps of the pipeline's events: each deal as last described (owner,
stage, amount, close date, ACE Action Required deadline), partners' names and owners, the fiscal
calendar and stuck threshold, and a log of deal changes (created, moved, won, lost) with amounts.
The team's week pre-fills updates and tells the meeting what changed from it; other areas of the
service (contacts, funding) may read it too. Never commits.

Snapshots carry the opportunity's version, so an older snapshot arriving late changes nothing; the
change log is keyed by event id, so a redelivered event is logged once.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, Date, DateTime, Index, Integer, SmallInteger, Text, Uuid, select, text
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from contracts import pipeline as p
from contracts.base import Event
from runtime.db import MONEY, execute_many, make_metadata
from runtime.inbox import Subscription


class Base(DeclarativeBase):
    metadata = make_metadata("relationships")


class DealRow(Base):
    __tablename__ = "pipeline_deal"
    __table_args__ = (
        Index("pipeline_deal_owner_idx", "owner"),
        Index("pipeline_deal_partner_idx", "partner_id"),
        # Goals count launches and created co-sell deals per hyperscaler in a period; ROI finds ACE ids.
        Index("pipeline_deal_launch_idx", "hyperscaler", "launched_at"),
        Index("pipeline_deal_created_idx", "hyperscaler", "created_at"),
        Index("pipeline_deal_external_id_idx", "external_id"),
        # Value at stake sums the open deals of each organisation.
        Index("pipeline_deal_open_partner_idx", "partner_id", postgresql_where=text("outcome = 'open'")),
        Index("pipeline_deal_action_due_idx", "ace_action_due_date",
              postgresql_where=text("outcome = 'open' AND ace_action_due_date IS NOT NULL")),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(Text)
    owner: Mapped[str | None] = mapped_column(Text)
    partner_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(Text)
    stage_name: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(Text)
    expected_close_date: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    stage_entered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ace_review_status: Mapped[str | None] = mapped_column(Text)
    ace_action_due_date: Mapped[date | None] = mapped_column(Date)
    # What goals and funding count by (added with funding, relationships_0003).
    hyperscaler: Mapped[str | None] = mapped_column(Text)
    deal_model: Mapped[str | None] = mapped_column(Text)
    pipeline: Mapped[str | None] = mapped_column(Text)
    external_id: Mapped[str | None] = mapped_column(Text)
    launched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PartnerRow(Base):
    __tablename__ = "pipeline_partner"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    owner: Mapped[str | None] = mapped_column(Text)
    archived: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    version: Mapped[int] = mapped_column(Integer)


class DealChangeRow(Base):
    __tablename__ = "pipeline_deal_change"
    __table_args__ = (
        Index("pipeline_deal_change_at_idx", "at"),
        Index("pipeline_deal_change_opportunity_idx", "opportunity_id"),
    )

    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    opportunity_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    kind: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    from_stage: Mapped[str | None] = mapped_column(Text)
    to_stage: Mapped[str | None] = mapped_column(Text)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(Text)


class PipelineSettingsRow(Base):
    __tablename__ = "pipeline_settings"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, default=1)
    fiscal_year_start_month: Mapped[int] = mapped_column(SmallInteger)
    stuck_after_days: Mapped[int] = mapped_column(Integer)
    # What value at stake is counted in (added with contacts, relationships_0006).
    reporting_currency: Mapped[str] = mapped_column(Text, default="USD", server_default="USD")
    fx_rates: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))
    version: Mapped[int] = mapped_column(Integer)


def _newer(table: Any, columns: list[str]):  # type: ignore[no-untyped-def]
    stmt = insert(table)
    return stmt.on_conflict_do_update(
        index_elements=["id"], set_={c: getattr(stmt.excluded, c) for c in columns},
        where=table.version < stmt.excluded.version)


DEAL_COLUMNS = ["version", "name", "owner", "partner_id", "amount", "currency", "stage_name", "outcome",
                "expected_close_date", "created_at", "stage_entered_at", "closed_at", "ace_review_status",
                "ace_action_due_date", "hyperscaler", "deal_model", "pipeline", "external_id", "launched_at"]


async def on_opportunity_snapshots(session: AsyncSession, events: Sequence[Event]) -> None:
    latest: dict[uuid.UUID, p.Opportunity] = {}
    changes: list[dict[str, object]] = []
    for e in events:
        assert isinstance(e, p.OpportunityCreatedV1 | p.OpportunityUpdatedV1 | p.OpportunityStageChangedV1
                          | p.OpportunityDeletedV1 | p.OpportunityRestoredV1)
        o = e.opportunity
        if o.id not in latest or latest[o.id].version < o.version:
            latest[o.id] = o
        if isinstance(e, p.OpportunityCreatedV1):
            changes.append(_change(e.event_id, o.id, "created", o.created_at, None, o.stage_name, o))
        elif isinstance(e, p.OpportunityStageChangedV1) and o.outcome == p.Outcome.open:
            # Moves into a won or lost stage are logged from the outcome events, with their amounts.
            changes.append(_change(e.event_id, o.id, "moved", e.changed_at, e.from_stage, e.to_stage, o))
    rows = [{
        "id": o.id, "version": o.version, "name": o.name, "owner": o.owner, "partner_id": o.partner_id,
        "amount": o.amount, "currency": o.currency, "stage_name": o.stage_name,
        # A deleted deal is kept as outcome "deleted": every query over open, won or lost deals leaves it out.
        "outcome": p.copied_outcome(o), "expected_close_date": o.expected_close_date, "created_at": o.created_at,
        "stage_entered_at": o.stage_entered_at, "closed_at": o.closed_at,
        "ace_review_status": o.ace.review_status.value if o.ace and o.ace.review_status else None,
        "ace_action_due_date": o.ace.action_due_date if o.ace else None,
        "hyperscaler": o.hyperscaler.value if o.hyperscaler else None, "deal_model": o.deal_model.value,
        "pipeline": o.pipeline, "external_id": o.external_id, "launched_at": o.launched_at,
    } for o in sorted(latest.values(), key=lambda o: o.id)]
    await execute_many(session, _newer(DealRow, DEAL_COLUMNS), rows)
    await _log(session, changes)
    if any(o.hyperscaler is not None for o in latest.values()):
        # Goals count launches and co-sell deals by hyperscaler (imported here: goals reads this module).
        from services.relationships.goals.service import recount

        await recount(session)
    # The hyperscaler's people named on co-sell deals become contacts (imported here, not at the top:
    # the contacts area reads this module's tables).
    from services.relationships.contacts.team import on_deals

    await on_deals(session, list(latest.values()))


def _change(event_id: uuid.UUID, opportunity_id: uuid.UUID, kind: str, at: datetime, from_stage: str | None,
            to_stage: str | None, o: p.Opportunity) -> dict[str, object]:
    return {"event_id": event_id, "opportunity_id": opportunity_id, "kind": kind, "at": at,
            "from_stage": from_stage, "to_stage": to_stage, "amount": o.amount, "currency": o.currency}


async def _log(session: AsyncSession, changes: list[dict[str, object]]) -> None:
    await execute_many(session, insert(DealChangeRow).on_conflict_do_nothing(index_elements=["event_id"]), changes)


async def on_outcomes(session: AsyncSession, events: Sequence[Event]) -> None:
    changes = []
    for e in events:
        if isinstance(e, p.OpportunityWonV1):
            kind, at = "won", e.won_at
        elif isinstance(e, p.OpportunityLostV1):
            kind, at = "lost", e.lost_at
        else:
            continue
        changes.append({"event_id": e.event_id, "opportunity_id": e.opportunity_id, "kind": kind, "at": at,
                        "from_stage": None, "to_stage": None, "amount": e.amount, "currency": e.currency})
    await _log(session, changes)


async def on_partners(session: AsyncSession, events: Sequence[Event]) -> None:
    latest: dict[uuid.UUID, dict[str, object]] = {}
    for e in events:
        if isinstance(e, p.PartnerCreatedV1):
            row = {"id": e.partner_id, "name": e.name, "owner": e.owner, "archived": False, "version": e.version}
        else:
            assert isinstance(e, p.PartnerUpdatedV1 | p.PartnerArchivedV1 | p.PartnerTierChangedV1
                              | p.PartnerDeletedV1 | p.PartnerRestoredV1)
            # A deleted partner is hidden as an archived one is (no new contacts, out of lists).
            row = {"id": e.partner.id, "name": e.partner.name, "owner": e.partner.owner,
                   "archived": e.partner.archived or e.partner.deleted_at is not None, "version": e.partner.version}
        known = latest.get(row["id"])  # type: ignore[arg-type]
        if known is None or known["version"] < row["version"]:  # type: ignore[operator]
            latest[row["id"]] = row  # type: ignore[index]
    rows = [latest[k] for k in sorted(latest)]
    await execute_many(session, _newer(PartnerRow, ["name", "owner", "archived", "version"]), rows)
    # Every new partner gets an onboarding plan (imported here: the onboarding area reads this module).
    from services.relationships.onboarding.service import start_plans

    created = [e for e in events if isinstance(e, p.PartnerCreatedV1)]
    await start_plans(session, await _not_hidden_since(session, created))


async def _not_hidden_since(session: AsyncSession, created: Sequence[p.PartnerCreatedV1]) -> list[p.PartnerCreatedV1]:
    """The creations whose partner was not archived or deleted later: a creation redelivered after the
    partner's deletion (a nak, a replay) must not start an onboarding plan, with its deadlines on
    someone's attention list, for a partner nobody sees any more."""
    if not created:
        return []
    copies = await session.execute(select(PartnerRow.id, PartnerRow.version, PartnerRow.archived)
                                   .where(PartnerRow.id.in_({e.partner_id for e in created})))
    hidden_at = {pid: version for pid, version, archived in copies if archived}
    return [e for e in created if hidden_at.get(e.partner_id, 0) <= e.version]


async def on_settings(session: AsyncSession, events: Sequence[Event]) -> None:
    for e in events:
        assert isinstance(e, p.PipelineSettingsChangedV1)
        s = e.settings
        stmt = _newer(PipelineSettingsRow, ["fiscal_year_start_month", "stuck_after_days", "reporting_currency",
                                            "fx_rates", "version"])
        await session.execute(stmt, {"id": 1, "fiscal_year_start_month": s.fiscal_year_start_month,
                                     "stuck_after_days": s.stuck_after_days, "reporting_currency": s.reporting_currency,
                                     "fx_rates": {k: str(v) for k, v in s.fx_rates.items()}, "version": s.version})


def _subscription(models: tuple[type[Event], ...], many) -> Subscription:  # type: ignore[no-untyped-def]
    async def one(session: AsyncSession, event: Event) -> None:
        await many(session, [event])

    return Subscription(consumer="relationships", models=models, handle=one, handle_many=many)


SUBSCRIPTIONS: tuple[Subscription, ...] = (
    _subscription((p.OpportunityCreatedV1,), on_opportunity_snapshots),
    _subscription((p.OpportunityUpdatedV1,), on_opportunity_snapshots),
    _subscription((p.OpportunityStageChangedV1,), on_opportunity_snapshots),
    _subscription((p.OpportunityDeletedV1,), on_opportunity_snapshots),
    _subscription((p.OpportunityRestoredV1,), on_opportunity_snapshots),
    _subscription((p.OpportunityWonV1,), on_outcomes),
    _subscription((p.OpportunityLostV1,), on_outcomes),
    _subscription((p.PartnerCreatedV1,), on_partners),
    _subscription((p.PartnerUpdatedV1,), on_partners),
    _subscription((p.PartnerArchivedV1,), on_partners),
    _subscription((p.PartnerTierChangedV1,), on_partners),
    _subscription((p.PartnerDeletedV1,), on_partners),
    _subscription((p.PartnerRestoredV1,), on_partners),
    _subscription((p.PipelineSettingsChangedV1,), on_settings),
)
