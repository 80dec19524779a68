"""Helpers of the commissions tests: publish revenue, wait until the service has taken everything in,
agreements, the ledger, and calls through the gateway as a person of some role."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

from nats.aio.client import Client as NATS

from contracts import billing as b
from contracts import commissions as c
from contracts import pipeline as p
from contracts.base import Event
from gateway.auth import Role
from runtime.commands import send
from runtime.service import RunningService
from runtime.testing import eventually
from tests.support.bus import publish, settled
from tests.support.gateway import Gateway


async def known_partner(nc: NATS, service: RunningService, name: str = "Known Partner") -> uuid.UUID:
    """A partner the service's copy of the pipeline knows (revenue entered by hand must name one)."""
    partner_id = uuid.uuid4()
    await publish(nc, p.PartnerCreatedV1(partner_id=partner_id, name=name, type=p.PartnerType.referral,
                                         tier=p.PartnerTier.bronze, status=p.PartnerStatus.active))
    await settled(nc, service)
    return partner_id


async def make_agreement(nc: NATS, partner_id: uuid.UUID, terms: c.Terms, *, effective_from: str = "2026-01-01",
                         direction: c.Direction = c.Direction.payable, currency: str = "USD",
                         name: str | None = None, **kw) -> c.Agreement:
    return await send(nc, c.CreateAgreement(
        partner_id=partner_id, name=name or f"agreement {uuid.uuid4().hex[:6]}", direction=direction,
        currency=currency, effective_from=date.fromisoformat(effective_from), terms=terms, actor="tester", **kw))


def flat_terms(rate: str = "10", **kw) -> c.Terms:
    return c.Terms(rate=c.FlatRate(rate=Decimal(rate)), **kw)


async def ledger(nc: NATS, partner_id: uuid.UUID) -> list[c.LedgerEntry]:
    page = await send(nc, c.ListLedgerEntries(partner_id=partner_id, limit=1000))
    return page.items


# ------------------------------------------------------------------------- the gateway in front of it


async def call(g: Gateway, role: Role, method: str, url: str, body: object = None):
    person = g.people[role]
    return await person.client.request(method, url, json=body, headers={"x-csrf-token": person.csrf,
                                                                          "accept": "application/json"})


async def partner(g: Gateway, name: str | None = None) -> str:
    r = await call(g, Role.member, "POST", "/api/partners", {"name": name or f"P {uuid.uuid4().hex[:8]}",
                                                             "type": "referral", "status": "active"})
    assert r.status_code == 201, r.text
    partner_id = r.json()["id"]
    # Revenue entered by hand must name a partner the commissions service's copy knows: wait for it.

    async def known() -> bool:
        statement = await call(g, Role.viewer, "GET", f"/api/commissions/statements/{partner_id}/2026-Q4")
        return statement.status_code == 200 and bool(statement.json()["partner_name"])

    await eventually(known, "the commissions service to learn of the new partner")
    return partner_id


NOW = datetime(2026, 10, 1, 12, tzinfo=UTC)


def sample(model: type[Event], partner_id: uuid.UUID) -> Event:
    """A valid event of each kind the service consumes."""
    opp = uuid.uuid4()
    snapshot = p.Opportunity(
        id=opp, version=1, name="deal", pipeline="resale", stage="lead", stage_name="Lead", probability=10,
        outcome=p.Outcome.open, partner_id=partner_id, customer="Acme", amount=Decimal("100.00"), currency="USD",
        expected_close_date=None, owner=None, deal_model=p.DealModel.resale, source=p.Source.manual, created_at=NOW,
        updated_at=NOW, stage_entered_at=NOW)
    partner = p.Partner(id=partner_id, name="Hostile Partner", type=p.PartnerType.isv, tier=p.PartnerTier.gold,
                        status=p.PartnerStatus.active, owner=None, created_at=NOW, version=2)
    outcome = {"opportunity_id": opp, "partner_id": partner_id, "amount": Decimal("100.00"), "currency": "USD",
               "deal_model": p.DealModel.resale, "customer": "Acme", "owner": None, "pipeline": "resale",
               "source": p.Source.manual}
    by_model: dict[type[Event], Event] = {
        b.InvoicePaidV1: b.InvoicePaidV1(invoice_id=f"I-{opp.hex[:8]}", customer="Acme", partner_id=partner_id,
                                         amount=Decimal("100.00"), currency="USD", paid_at=NOW),
        b.InvoiceRefundedV1: b.InvoiceRefundedV1(refund_id=f"R-{opp.hex[:8]}", invoice_id="I-unknown",
                                                 amount=Decimal("1.00"), currency="USD", refunded_at=NOW),
        b.CustomerChurnedV1: b.CustomerChurnedV1(customer="Acme", partner_id=partner_id, churned_at=NOW),
        p.OpportunityWonV1: p.OpportunityWonV1(**outcome, won_at=NOW),
        p.OpportunityReopenedV1: p.OpportunityReopenedV1(**outcome, previous_outcome=p.Outcome.won, reopened_at=NOW),
        p.OpportunityLostV1: p.OpportunityLostV1(**outcome, lost_at=NOW),
        p.OpportunityCreatedV1: p.OpportunityCreatedV1(opportunity=snapshot),
        p.OpportunityUpdatedV1: p.OpportunityUpdatedV1(opportunity=snapshot),
        p.OpportunityStageChangedV1: p.OpportunityStageChangedV1(opportunity=snapshot, from_stage="lead",
                                                                 to_stage="lead", changed_by=None, changed_at=NOW),
        p.OpportunityDeletedV1: p.OpportunityDeletedV1(opportunity=snapshot.model_copy(update={"deleted_at": NOW})),
        p.OpportunityRestoredV1: p.OpportunityRestoredV1(opportunity=snapshot),
        p.StageSetDefinedV1: p.StageSetDefinedV1(stage_set=p.RESALE_STAGE_SET),
        p.PartnerCreatedV1: p.PartnerCreatedV1(partner_id=partner_id, name="Hostile Partner", type=p.PartnerType.isv,
                                               tier=p.PartnerTier.gold, status=p.PartnerStatus.active),
        p.PartnerUpdatedV1: p.PartnerUpdatedV1(partner=partner),
        p.PartnerDeletedV1: p.PartnerDeletedV1(partner=partner.model_copy(update={"deleted_at": NOW})),
        p.PartnerRestoredV1: p.PartnerRestoredV1(partner=partner),
        p.PartnerTierChangedV1: p.PartnerTierChangedV1(partner=partner, from_tier=p.PartnerTier.silver,
                                                       to_tier=p.PartnerTier.gold, trailing_revenue=Decimal("1"),
                                                       currency="USD"),
    }
    return by_model[model]
