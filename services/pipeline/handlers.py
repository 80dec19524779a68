"""What the pipeline service answers on the bus, and what it consumes."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from contracts import commissions as cm
from contracts import enablement as e
from contracts import pipeline as c
from contracts import registrations as r
from contracts import schedules, sync
from contracts.base import Event
from runtime.inbox import Subscription
from runtime.service import ServiceDefinition
from services.pipeline.config import service as config
from services.pipeline.imports import service as imports
from services.pipeline.ingestion import service as ingestion
from services.pipeline.opportunities import service as opportunities
from services.pipeline.partners import enablement
from services.pipeline.partners import service as partners
from services.pipeline.registrations import service as registrations


async def on_external_upserted(session: AsyncSession, event: Event) -> None:
    await on_external_upserted_many(session, [event])


async def on_external_upserted_many(session: AsyncSession, events: list[Event]) -> None:
    assert all(isinstance(e, sync.OpportunityExternalUpsertedV1) for e in events)
    await ingestion.apply_external(session, events)  # type: ignore[arg-type]


async def on_entries_posted(session: AsyncSession, events: list[Event]) -> None:
    """The commissions service's ledger grew: its partners have money on the ledger and are never deleted."""
    partners_posted: set[UUID] = set()
    for event in events:
        if isinstance(event, cm.CommissionEntriesPostedV2):
            partners_posted |= set(event.partner_ids)
        elif isinstance(event, cm.CommissionEntriesPostedV1):
            partners_posted.add(event.partner_id)
    if partners_posted:
        await partners.on_entries_posted(session, partners_posted, min(event.occurred_at for event in events))


async def on_entry_posted(session: AsyncSession, event: Event) -> None:
    await on_entries_posted(session, [event])


async def on_tier_recomputation_due(session: AsyncSession, event: Event) -> None:
    """The daily tick (contracts/schedules.py): tiers follow trailing revenue as won deals age out."""
    await partners.recompute_tiers(session, c.RecomputeTiers(actor="schedule"))


async def on_enablement_score(session: AsyncSession, event: Event) -> None:
    await on_enablement_scores(session, [event])


async def on_enablement_scores(session: AsyncSession, events: list[Event]) -> None:
    """Partners' enablement scores (relationships): the feasibility criterion follows them where configured."""
    assert all(isinstance(x, e.EnablementScoreChangedV1) for x in events)
    await enablement.on_scores(session, events)  # type: ignore[arg-type]


definition = ServiceDefinition(
    name="pipeline",
    publishes=(c.STREAM,),
    subscriptions=(
        Subscription(consumer="pipeline", models=(sync.OpportunityExternalUpsertedV1,), handle=on_external_upserted,
                     handle_many=on_external_upserted_many),
        Subscription(consumer="pipeline", models=(schedules.TierRecomputationDueV1,),
                     handle=on_tier_recomputation_due),
        Subscription(consumer="pipeline", models=(e.EnablementScoreChangedV1,), handle=on_enablement_score,
                     handle_many=on_enablement_scores),
        Subscription(consumer="pipeline", models=(cm.CommissionEntriesPostedV2,), handle=on_entry_posted,
                     handle_many=on_entries_posted),
        Subscription(consumer="pipeline", models=(cm.CommissionEntriesPostedV1,), handle=on_entry_posted,
                     handle_many=on_entries_posted),
    ),
    commands=(
        (c.CreatePartner, partners.create_partner),
        (c.UpdatePartner, partners.update_partner),
        (c.ArchivePartner, partners.archive_partner),
        (c.DeletePartner, partners.delete_partner),
        (c.RestorePartner, partners.restore_partner),
        (c.GetPartner, partners.get_partner),
        (c.ListPartners, partners.list_partners),
        (c.RecomputeTiers, partners.recompute_tiers),
        (c.CreateOpportunity, opportunities.create_opportunity),
        (c.UpdateOpportunity, opportunities.update_opportunity),
        (c.MoveOpportunity, opportunities.move_opportunity),
        (c.DeleteOpportunity, opportunities.delete_opportunity),
        (c.RestoreOpportunity, opportunities.restore_opportunity),
        (c.GetOpportunity, opportunities.get_opportunity),
        (c.ListOpportunities, opportunities.list_opportunities),
        (c.ListStageSets, config.list_stage_sets),
        (c.DefineStageSet, config.define_stage_set),
        (c.GetPipelineSettings, config.get_settings),
        (c.UpdatePipelineSettings, config.update_settings),
        (c.BeginImport, imports.begin_import),
        (c.ImportRows, imports.import_rows),
        (c.CommitImport, imports.commit_import),
        (c.ExportRows, imports.export_rows),
        (r.RegisterDeal, registrations.register_deal),
        (r.GetRegistration, registrations.get_registration),
        (r.ListRegistrations, registrations.list_registrations),
        (r.DecideRegistration, registrations.decide_registration),
    ),
)
