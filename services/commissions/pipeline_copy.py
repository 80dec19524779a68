"""What the commissions service keeps from the pipeline's events: won deals as revenue, reopened and
lost ones voiding it, partners' names and tier history (for tier-based rates), and the open
opportunities the forecast weighs. Never commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from contracts import pipeline as p
from services.commissions import engine, service
from services.commissions.repository import AgreementRepository, PipelineCopyRepository


async def on_opportunities_won(session: AsyncSession, events: Sequence[p.OpportunityWonV1]) -> None:
    # A deal without a partner earns nobody commission; invoices naming it stay unattributed.
    await engine.ingest(session, [service.deal_incoming(
        event_id=e.event_id, opportunity_id=e.opportunity_id, partner_id=e.partner_id, customer=e.customer,
        amount=e.amount, currency=e.currency, won_at=e.won_at, deal_model=e.deal_model.value, event_at=e.occurred_at,
        pipeline=e.pipeline)
        for e in events if e.partner_id is not None])


async def on_opportunities_reopened(session: AsyncSession, events: Sequence[p.OpportunityReopenedV1]) -> None:
    for e in events:
        if e.previous_outcome == p.Outcome.won:
            await engine.void_deal(session, e.opportunity_id, e.occurred_at)


async def on_opportunities_lost(session: AsyncSession, events: Sequence[p.OpportunityLostV1]) -> None:
    # Only matters for a deal that was won before (moved straight from won to lost).
    for e in events:
        await engine.void_deal(session, e.opportunity_id, e.occurred_at)


async def on_opportunity_snapshots(session: AsyncSession, events: Sequence[p.OpportunityCreatedV1]) -> None:
    repo = PipelineCopyRepository(session)
    for e in sorted(events, key=lambda e: e.opportunity.version):
        o = e.opportunity
        await repo.upsert_opportunity({
            "id": o.id, "partner_id": o.partner_id, "customer": o.customer, "amount": o.amount, "currency": o.currency,
            "probability": o.probability, "stage": o.stage_name, "pipeline": o.pipeline, "stage_key": o.stage,
            # A deleted deal is kept as outcome "deleted": the forecast weighs open deals only.
            "outcome": p.copied_outcome(o),
            "deal_model": o.deal_model.value, "expected_close_date": o.expected_close_date, "version": o.version,
        })


async def on_stage_sets(session: AsyncSession, events: Sequence[p.StageSetDefinedV1]) -> None:
    repo = PipelineCopyRepository(session)
    for e in sorted(events, key=lambda e: e.stage_set.version):
        await repo.upsert_stage_set(e.stage_set)


async def on_partners_created(session: AsyncSession, events: Sequence[p.PartnerCreatedV1]) -> None:
    repo = PipelineCopyRepository(session)
    for e in events:
        await repo.upsert_partner(e.partner_id, e.name, 1)
        if await repo.add_tier(e.partner_id, e.occurred_at, e.tier.value):
            await _tier_history_changed(session, e.partner_id)


async def on_partner_snapshots(session: AsyncSession, events: Sequence[p.PartnerUpdatedV1]) -> None:
    repo = PipelineCopyRepository(session)
    for e in events:
        await repo.upsert_partner(e.partner.id, e.partner.name, e.partner.version)
        if await repo.add_tier(e.partner.id, e.occurred_at, e.partner.tier.value):
            await _tier_history_changed(session, e.partner.id)


async def _tier_history_changed(session: AsyncSession, partner_id: uuid.UUID) -> None:
    """Tier-based agreements of the partner are folded again with the tier history they now know."""
    agreements = await AgreementRepository(session).of_partners([partner_id])
    if agreements:
        await engine.recalculate(session, [a.id for a in agreements])
