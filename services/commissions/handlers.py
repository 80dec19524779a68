"""What the commissions service answers on the bus: its commands, and the revenue and pipeline events
it consumes. Thin: parse, call the service, return."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contracts import billing as b
from contracts import commissions as c
from contracts import pipeline as p
from contracts.base import Event
from runtime.inbox import Subscription
from runtime.service import ServiceDefinition
from services.commissions import pipeline_copy, service

CONSUMER = "commissions"


def _subscription(models: tuple[type[Event], ...],
                  many: Callable[[AsyncSession, Sequence[Any]], Awaitable[None]]) -> Subscription:
    async def one(session: AsyncSession, event: Event) -> None:
        await many(session, [event])

    return Subscription(consumer=CONSUMER, models=models, handle=one, handle_many=many)


SUBSCRIPTIONS: tuple[Subscription, ...] = (
    _subscription((b.InvoicePaidV1,), service.on_invoices_paid),
    _subscription((b.InvoiceRefundedV1,), service.on_invoices_refunded),
    _subscription((b.CustomerChurnedV1,), service.on_customers_churned),
    _subscription((p.OpportunityWonV1,), pipeline_copy.on_opportunities_won),
    _subscription((p.OpportunityReopenedV1,), pipeline_copy.on_opportunities_reopened),
    _subscription((p.OpportunityLostV1,), pipeline_copy.on_opportunities_lost),
    _subscription((p.OpportunityCreatedV1,), pipeline_copy.on_opportunity_snapshots),
    _subscription((p.OpportunityUpdatedV1,), pipeline_copy.on_opportunity_snapshots),
    _subscription((p.OpportunityStageChangedV1,), pipeline_copy.on_opportunity_snapshots),
    _subscription((p.OpportunityDeletedV1,), pipeline_copy.on_opportunity_snapshots),
    _subscription((p.OpportunityRestoredV1,), pipeline_copy.on_opportunity_snapshots),
    _subscription((p.StageSetDefinedV1,), pipeline_copy.on_stage_sets),
    _subscription((p.PartnerCreatedV1,), pipeline_copy.on_partners_created),
    _subscription((p.PartnerUpdatedV1,), pipeline_copy.on_partner_snapshots),
    _subscription((p.PartnerTierChangedV1,), pipeline_copy.on_partner_snapshots),
    _subscription((p.PartnerDeletedV1,), pipeline_copy.on_partner_snapshots),
    _subscription((p.PartnerRestoredV1,), pipeline_copy.on_partner_snapshots),
)

definition = ServiceDefinition(
    name="commissions",
    publishes=(c.STREAM,),
    subscriptions=SUBSCRIPTIONS,
    commands=(
        (c.CreateAgreement, service.create_agreement),
        (c.UpdateAgreement, service.update_agreement),
        (c.AddAgreementVersion, service.add_agreement_version),
        (c.UpdateAgreementVersion, service.update_agreement_version),
        (c.GetAgreement, service.get_agreement),
        (c.ListAgreements, service.list_agreements),
        (c.GetAgreementAudit, service.agreement_audit),
        (c.RecalculateAgreement, service.recalculate_agreement),
        (c.RecordInvoicePaid, service.record_invoice),
        (c.RecordRefund, service.record_refund),
        (c.RecordChurn, service.record_churn),
        (c.ListRevenueEvents, service.list_revenue),
        (c.ListLedgerEntries, service.list_entries),
        (c.ApproveEntries, service.approve_entries),
        (c.PayEntries, service.pay_entries),
        (c.GetStatement, service.statement),
        (c.ForecastCommissions, service.forecast),
        (c.ListSpifs, service.list_spifs),
    ),
)
