"""Use cases of the commissions service. Never commits: the command or message boundary does."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import billing as b
from contracts import commissions as c
from contracts import pipeline as pc
from contracts.pipeline import OpportunityWonV1, PartnerTier
from runtime import bus_auth
from runtime.errors import Conflict, Forbidden, Invalid, NotFound
from runtime.outbox import add_event
from services.commissions import domain, engine
from services.commissions.models import SCHEMA, Agreement, AgreementAudit, AgreementVersion, LedgerEntry, Payment
from services.commissions.models import RevenueEvent as RevenueRow
from services.commissions.repository import (
    AgreementRepository,
    IncomingRevenue,
    LedgerRepository,
    PipelineCopyRepository,
    RevenueRepository,
)

# ---------------------------------------------------------------------------------------- agreements


def version_contract(v: AgreementVersion) -> c.AgreementVersion:
    return c.AgreementVersion(version=v.version, effective_from=v.effective_from, effective_to=v.effective_to,
                              retroactive=v.retroactive, terms=c.Terms.model_validate(v.terms), revision=v.revision,
                              created_at=v.created_at, created_by=v.created_by, updated_at=v.updated_at,
                              updated_by=v.updated_by)


async def agreement_contract(session: AsyncSession, a: Agreement) -> c.Agreement:
    versions = (await AgreementRepository(session).versions([a.id]))[a.id]
    return c.Agreement(id=a.id, partner_id=a.partner_id, name=a.name, direction=c.Direction(a.direction),
                       currency=a.currency, deal_models=a.deal_models, created_at=a.created_at,
                       created_by=a.created_by, versions=[version_contract(v) for v in versions])


def version_snapshot(v: AgreementVersion | c.AddAgreementVersion | c.CreateAgreement) -> dict[str, Any]:
    terms = v.terms if isinstance(v.terms, dict) else v.terms.model_dump(mode="json")
    return {"effective_from": v.effective_from.isoformat(),
            "effective_to": v.effective_to.isoformat() if v.effective_to else None,
            "retroactive": v.retroactive, "terms": terms}


def domain_version(v: AgreementVersion) -> domain.Version:
    return domain.Version(v.version, v.effective_from, v.effective_to, v.retroactive, c.Terms.model_validate(v.terms),
                          v.revision)


def _deal_models(models: list[str] | None) -> list[str] | None:
    return sorted({m.strip().lower() for m in models}) if models else None


async def _changed(session: AsyncSession, a: Agreement, action: str, version: int | None, actor: str | None) -> None:
    await engine.recalculate(session, [a.id])
    await add_event(session, SCHEMA, c.AgreementChangedV1(
        agreement_id=a.id, partner_id=a.partner_id, name=a.name, direction=c.Direction(a.direction),
        currency=a.currency, action=action, version=version, actor=actor, correlation_id=actor))  # type: ignore[arg-type]


async def _locked_agreement(session: AsyncSession, agreement_id: uuid.UUID) -> Agreement:
    repo = AgreementRepository(session)
    a = await repo.get(agreement_id)
    if a is None:
        raise NotFound(f"no agreement with id {agreement_id}", field="agreement_id")
    await repo.lock_partners({a.partner_id}, exclusive=True)
    return a


async def create_agreement(session: AsyncSession, cmd: c.CreateAgreement) -> c.Agreement:
    domain.validate_terms(cmd.terms)
    domain.validate_window(cmd.terms, cmd.effective_to)
    domain.place_version([], cmd.effective_from, cmd.effective_to)
    repo = AgreementRepository(session)
    await repo.lock_partners({cmd.partner_id}, exclusive=True)
    existing, _ = await repo.list(partner_id=cmd.partner_id, offset=0, limit=500)
    if any(a.name.casefold() == cmd.name.casefold() for a in existing):
        raise Conflict(f"this partner already has an agreement named {cmd.name!r}", field="name")
    a = await repo.add(Agreement(partner_id=cmd.partner_id, name=cmd.name, direction=cmd.direction.value,
                                 currency=cmd.currency, deal_models=_deal_models(cmd.deal_models),
                                 created_by=cmd.actor, updated_by=cmd.actor))
    await repo.add_version(AgreementVersion(
        agreement_id=a.id, version=1, effective_from=cmd.effective_from, effective_to=cmd.effective_to,
        retroactive=cmd.retroactive, terms=cmd.terms.model_dump(mode="json"), revision=1, created_by=cmd.actor,
        updated_by=cmd.actor))
    await repo.audit(AgreementAudit(agreement_id=a.id, version=1, action="created", actor=cmd.actor, old=None, new={
        "name": a.name, "direction": a.direction, "currency": a.currency, "deal_models": a.deal_models,
        "partner_id": str(a.partner_id), "version": version_snapshot(cmd)}))
    await _changed(session, a, "created", 1, cmd.actor)
    return await agreement_contract(session, a)


async def update_agreement(session: AsyncSession, cmd: c.UpdateAgreement) -> c.Agreement:
    a = await _locked_agreement(session, cmd.agreement_id)
    old = {"name": a.name, "deal_models": a.deal_models}
    new = {"name": cmd.name, "deal_models": _deal_models(cmd.deal_models)}
    if old == new:
        return await agreement_contract(session, a)
    repo = AgreementRepository(session)
    if new["name"] != old["name"]:
        others, _ = await repo.list(partner_id=a.partner_id, offset=0, limit=500)
        if any(o.id != a.id and o.name.casefold() == cmd.name.casefold() for o in others):
            raise Conflict(f"this partner already has an agreement named {cmd.name!r}", field="name")
    a.name, a.deal_models, a.updated_by, a.updated_at = cmd.name, new["deal_models"], cmd.actor, datetime.now(UTC)
    await repo.audit(AgreementAudit(agreement_id=a.id, version=None, action="updated", actor=cmd.actor, old=old,
                                    new=new))
    await session.flush()
    await _changed(session, a, "updated", None, cmd.actor)
    return await agreement_contract(session, a)


async def add_agreement_version(session: AsyncSession, cmd: c.AddAgreementVersion) -> c.Agreement:
    domain.validate_terms(cmd.terms)
    a = await _locked_agreement(session, cmd.agreement_id)
    repo = AgreementRepository(session)
    stored = (await repo.versions([a.id]))[a.id]
    domain.validate_window(cmd.terms, cmd.effective_to, [domain_version(v) for v in stored])
    placement = domain.place_version([domain_version(v) for v in stored], cmd.effective_from, cmd.effective_to)
    if placement.closes is not None:
        closing = next(v for v in stored if v.version == placement.closes.number)
        old = version_snapshot(closing)
        closing.effective_to, closing.updated_by, closing.updated_at = cmd.effective_from, cmd.actor, datetime.now(UTC)
        await repo.audit(AgreementAudit(agreement_id=a.id, version=closing.version, action="version_ended",
                                        actor=cmd.actor, old=old, new=version_snapshot(closing)))
    number = await repo.next_version_number(a.id)
    await repo.add_version(AgreementVersion(
        agreement_id=a.id, version=number, effective_from=cmd.effective_from, effective_to=cmd.effective_to,
        retroactive=cmd.retroactive, terms=cmd.terms.model_dump(mode="json"), revision=1, created_by=cmd.actor,
        updated_by=cmd.actor))
    await repo.audit(AgreementAudit(agreement_id=a.id, version=number, action="version_added", actor=cmd.actor,
                                    old=None, new=version_snapshot(cmd)))
    await _changed(session, a, "version_added", number, cmd.actor)
    return await agreement_contract(session, a)


async def update_agreement_version(session: AsyncSession, cmd: c.UpdateAgreementVersion) -> c.Agreement:
    domain.validate_terms(cmd.terms)
    a = await _locked_agreement(session, cmd.agreement_id)
    repo = AgreementRepository(session)
    stored = (await repo.versions([a.id]))[a.id]
    v = next((v for v in stored if v.version == cmd.version), None)
    if v is None:
        raise NotFound(f"agreement {a.name!r} has no version {cmd.version}", field="version")
    domain.validate_window(cmd.terms, cmd.effective_to, [domain_version(x) for x in stored if x.version != v.version])
    domain.place_version([domain_version(x) for x in stored], cmd.effective_from, cmd.effective_to,
                         replacing=cmd.version)
    old = version_snapshot(v)
    new_terms = cmd.terms.model_dump(mode="json")
    if old == version_snapshot(cmd):  # type: ignore[arg-type]
        return await agreement_contract(session, a)
    v.effective_from, v.effective_to, v.retroactive, v.terms = (cmd.effective_from, cmd.effective_to,
                                                                 cmd.retroactive, new_terms)
    v.revision, v.updated_by, v.updated_at = v.revision + 1, cmd.actor, datetime.now(UTC)
    await repo.audit(AgreementAudit(agreement_id=a.id, version=v.version, action="version_updated", actor=cmd.actor,
                                    old=old, new=version_snapshot(v)))
    await session.flush()
    await _changed(session, a, "version_updated", v.version, cmd.actor)
    return await agreement_contract(session, a)


async def get_agreement(session: AsyncSession, cmd: c.GetAgreement) -> c.Agreement:
    a = await AgreementRepository(session).get(cmd.agreement_id)
    if a is None:
        raise NotFound(f"no agreement with id {cmd.agreement_id}", field="agreement_id")
    return await agreement_contract(session, a)


async def list_agreements(session: AsyncSession, cmd: c.ListAgreements) -> c.AgreementList:
    rows, total = await AgreementRepository(session).list(partner_id=cmd.partner_id, offset=cmd.offset,
                                                          limit=cmd.limit)
    return c.AgreementList(items=[await agreement_contract(session, a) for a in rows], total=total,
                           offset=cmd.offset, limit=cmd.limit)


async def agreement_audit(session: AsyncSession, cmd: c.GetAgreementAudit) -> c.AuditList:
    repo = AgreementRepository(session)
    if await repo.get(cmd.agreement_id) is None:
        raise NotFound(f"no agreement with id {cmd.agreement_id}", field="agreement_id")
    return c.AuditList(items=[
        c.AuditRecord(id=r.id, agreement_id=r.agreement_id, version=r.version, action=r.action, actor=r.actor,
                      at=r.at, old=r.old, new=r.new) for r in await repo.audit_trail(cmd.agreement_id)])


async def recalculate_agreement(session: AsyncSession, cmd: c.RecalculateAgreement) -> c.RecalculationResult:
    a = await _locked_agreement(session, cmd.agreement_id)
    written = await engine.recalculate(session, [a.id])
    return c.RecalculationResult(agreement_id=a.id, entries_written=len(written))


# ------------------------------------------------------------------------------------------ revenue


def utc(at: datetime) -> datetime:
    return at.astimezone(UTC)


def invoice_incoming(*, event_id: uuid.UUID, invoice_id: str, customer: str, partner_id: uuid.UUID | None,
                     opportunity_id: uuid.UUID | None, amount: Decimal, currency: str, paid_at: datetime,
                     customer_started_on: date | None, deal_model: str | None, source: str, actor: str | None,
                     event_at: datetime) -> IncomingRevenue:
    return IncomingRevenue(
        event_id=event_id, kind="invoice_paid", ref=invoice_id, scope="", partner_id=partner_id,
        opportunity_id=opportunity_id, customer=domain.customer_key(customer), customer_name=customer, amount=amount,
        currency=currency, occurred_at=utc(paid_at), invoice_ref=None,
        deal_model=deal_model.lower() if deal_model else None, customer_started_on=customer_started_on, void=False,
        source=source, actor=actor, event_occurred_at=utc(event_at))


def refund_incoming(*, event_id: uuid.UUID, refund_id: str, invoice_id: str, partner_id: uuid.UUID | None,
                    amount: Decimal, currency: str, refunded_at: datetime, source: str, actor: str | None,
                    event_at: datetime) -> IncomingRevenue:
    return IncomingRevenue(
        event_id=event_id, kind="refund", ref=refund_id, scope="", partner_id=partner_id, opportunity_id=None,
        customer="", customer_name=None, amount=amount, currency=currency, occurred_at=utc(refunded_at),
        invoice_ref=invoice_id, deal_model=None, customer_started_on=None, void=False, source=source, actor=actor,
        event_occurred_at=utc(event_at))


def churn_incoming(*, event_id: uuid.UUID, customer: str, partner_id: uuid.UUID | None,
                   opportunity_id: uuid.UUID | None, churned_at: datetime, source: str, actor: str | None,
                   event_at: datetime) -> IncomingRevenue:
    key = domain.customer_key(customer)
    scope = f"partner:{partner_id}" if partner_id else f"opportunity:{opportunity_id}"
    return IncomingRevenue(
        event_id=event_id, kind="churn", ref=f"{key}@{utc(churned_at).date()}", scope=scope, partner_id=partner_id,
        opportunity_id=opportunity_id, customer=key, customer_name=customer, amount=None, currency=None,
        occurred_at=utc(churned_at), invoice_ref=None, deal_model=None, customer_started_on=None, void=False,
        source=source, actor=actor, event_occurred_at=utc(event_at))


def deal_incoming(*, event_id: uuid.UUID, opportunity_id: uuid.UUID, partner_id: uuid.UUID, customer: str,
                  amount: Decimal, currency: str, won_at: datetime, deal_model: str | None,
                  event_at: datetime, pipeline: str | None = None) -> IncomingRevenue:
    return IncomingRevenue(
        event_id=event_id, kind="deal_won", ref=str(opportunity_id), scope="", partner_id=partner_id,
        opportunity_id=None, customer=domain.customer_key(customer), customer_name=customer, amount=amount,
        currency=currency, occurred_at=utc(won_at), invoice_ref=None,
        deal_model=deal_model.lower() if deal_model else None, customer_started_on=None, void=False,
        source="pipeline", actor=bus_auth.authenticated_producer(OpportunityWonV1.subject),
        event_occurred_at=utc(event_at), pipeline=pipeline)


def revenue_contract(r: RevenueRow, commission: list[tuple[str, int, Decimal]], notes: list[str]) -> c.RevenueEvent:
    waiting = []
    if r.partner_id is None:
        waiting.append(f"waiting for opportunity {r.opportunity_id} to be won" if r.opportunity_id
                       else f"waiting for invoice {r.invoice_ref}")
    if r.void:
        waiting.append("the opportunity was reopened: this win no longer counts")
    return c.RevenueEvent(
        key=f"{r.kind}:{r.ref}", kind=c.RevenueKind(r.kind), partner_id=r.partner_id,
        customer=r.customer_name or r.customer or None, amount=r.amount, currency=r.currency,
        occurred_at=r.occurred_at, source=r.source, recorded_by=r.actor, received_at=r.received_at,
        entries=sum(n for _, n, _ in commission), commission={cur: total for cur, _, total in commission},
        notes=waiting + notes)


async def _recorded(session: AsyncSession, incoming: IncomingRevenue, result: engine.IngestResult) -> c.RevenueRecorded:
    key = (incoming.kind, incoming.ref, incoming.scope)
    revenue = RevenueRepository(session)
    [row] = await revenue.by_natural_keys([key])
    revenue_key = f"{row.kind}:{row.ref}"
    commission = await revenue.commission_by_revenue([revenue_key])
    notes = await revenue.notes_by_revenue([revenue_key])
    entries = await LedgerRepository(session).of_revenue(revenue_key)
    return c.RevenueRecorded(event=revenue_contract(row, commission.get(revenue_key, []), notes.get(revenue_key, [])),
                             duplicate=key in result.duplicates, entries=[entry_contract(e) for e in entries])


async def _known_partner(session: AsyncSession, partner_id: uuid.UUID | None) -> None:
    """Revenue entered by hand must name a partner this service knows (its copy of the pipeline's
    partners): a mistyped id would otherwise be stored as revenue nobody can ever be paid for."""
    if partner_id is not None and not await PipelineCopyRepository(session).partner_names([partner_id]):
        raise Invalid(f"no partner with id {partner_id} (one created a moment ago arrives here within seconds)",
                      field="partner_id")


async def record_invoice(session: AsyncSession, cmd: c.RecordInvoicePaid) -> c.RevenueRecorded:
    if cmd.partner_id is None and cmd.opportunity_id is None:
        raise Invalid("give partner_id or opportunity_id, so the invoice can be attributed to a partner",
                      field="partner_id")
    await _known_partner(session, cmd.partner_id)
    incoming = invoice_incoming(
        event_id=uuid.uuid4(), invoice_id=cmd.invoice_id, customer=cmd.customer, partner_id=cmd.partner_id,
        opportunity_id=cmd.opportunity_id, amount=cmd.amount, currency=cmd.currency, paid_at=cmd.paid_at,
        customer_started_on=cmd.customer_started_on, deal_model=cmd.deal_model, source="api", actor=cmd.actor,
        event_at=datetime.now(UTC))
    return await _recorded(session, incoming, await engine.ingest(session, [incoming], strict=True))


async def record_refund(session: AsyncSession, cmd: c.RecordRefund) -> c.RevenueRecorded:
    revenue = RevenueRepository(session)
    await revenue.lock_links([f"invoice:{cmd.invoice_id}"])
    found = await revenue.by_natural_keys([("invoice_paid", cmd.invoice_id, "")])
    if not found:
        raise NotFound(f"no invoice {cmd.invoice_id!r} is recorded; record the invoice first", field="invoice_id")
    invoice = found[0]
    if cmd.currency != invoice.currency:
        raise Invalid(f"invoice {cmd.invoice_id} was paid in {invoice.currency}, not {cmd.currency}", field="currency")
    if utc(cmd.refunded_at) < invoice.occurred_at:
        raise Invalid(f"the refund is dated before invoice {cmd.invoice_id} was paid ({invoice.occurred_at:%Y-%m-%d})",
                      field="refunded_at")
    earlier = [r for r in await revenue.refunds_of(cmd.invoice_id) if r.ref != cmd.refund_id]
    refunded = sum((r.amount or Decimal(0) for r in earlier), Decimal(0))
    assert invoice.amount is not None
    if refunded + cmd.amount > invoice.amount:
        raise Invalid(f"invoice {cmd.invoice_id} was {domain.money(invoice.amount)}; {domain.money(refunded)} is "
                      f"already refunded, so at most {domain.money(invoice.amount - refunded)} can be", field="amount")
    incoming = refund_incoming(
        event_id=uuid.uuid4(), refund_id=cmd.refund_id, invoice_id=cmd.invoice_id, partner_id=None, amount=cmd.amount,
        currency=cmd.currency, refunded_at=cmd.refunded_at, source="api", actor=cmd.actor, event_at=datetime.now(UTC))
    return await _recorded(session, incoming, await engine.ingest(session, [incoming], strict=True))


async def record_churn(session: AsyncSession, cmd: c.RecordChurn) -> c.RevenueRecorded:
    if cmd.partner_id is None and cmd.opportunity_id is None:
        raise Invalid("give partner_id or opportunity_id, so the churn can be attributed to a partner",
                      field="partner_id")
    await _known_partner(session, cmd.partner_id)
    incoming = churn_incoming(
        event_id=uuid.uuid4(), customer=cmd.customer, partner_id=cmd.partner_id, opportunity_id=cmd.opportunity_id,
        churned_at=cmd.churned_at, source="api", actor=cmd.actor, event_at=datetime.now(UTC))
    return await _recorded(session, incoming, await engine.ingest(session, [incoming], strict=True))


async def list_revenue(session: AsyncSession, cmd: c.ListRevenueEvents) -> c.RevenueEventList:
    revenue = RevenueRepository(session)
    rows, total = await revenue.list(partner_id=cmd.partner_id, kind=cmd.kind.value if cmd.kind else None,
                                     offset=cmd.offset, limit=cmd.limit)
    keys = [f"{r.kind}:{r.ref}" for r in rows]
    commission = await revenue.commission_by_revenue(keys)
    notes = await revenue.notes_by_revenue(keys)
    return c.RevenueEventList(
        items=[revenue_contract(r, commission.get(k, []), notes.get(k, [])) for r, k in zip(rows, keys, strict=True)],
        total=total, offset=cmd.offset, limit=cmd.limit)


# bus events → revenue facts. Their actor is the producer the NATS server authenticated (only the
# billing user may publish billing.>): `source` is the producer's own label and proves nothing.

async def on_invoices_paid(session: AsyncSession, events: Sequence[b.InvoicePaidV1]) -> None:
    await engine.ingest(session, [invoice_incoming(
        event_id=e.event_id, invoice_id=e.invoice_id, customer=e.customer, partner_id=e.partner_id,
        opportunity_id=e.opportunity_id, amount=e.amount, currency=e.currency, paid_at=e.paid_at,
        customer_started_on=e.customer_started_on, deal_model=e.deal_model, source=e.source,
        actor=bus_auth.authenticated_producer(e.subject), event_at=e.occurred_at) for e in events])


async def on_invoices_refunded(session: AsyncSession, events: Sequence[b.InvoiceRefundedV1]) -> None:
    await engine.ingest(session, [refund_incoming(
        event_id=e.event_id, refund_id=e.refund_id, invoice_id=e.invoice_id, partner_id=e.partner_id, amount=e.amount,
        currency=e.currency, refunded_at=e.refunded_at, source=e.source,
        actor=bus_auth.authenticated_producer(e.subject), event_at=e.occurred_at) for e in events])


async def on_customers_churned(session: AsyncSession, events: Sequence[b.CustomerChurnedV1]) -> None:
    await engine.ingest(session, [churn_incoming(
        event_id=e.event_id, customer=e.customer, partner_id=e.partner_id, opportunity_id=e.opportunity_id,
        churned_at=e.churned_at, source=e.source, actor=bus_auth.authenticated_producer(e.subject),
        event_at=e.occurred_at) for e in events])


# -------------------------------------------------------------------------------------------- ledger


def entry_contract(e: LedgerEntry) -> c.LedgerEntry:
    return c.LedgerEntry(
        id=e.id, agreement_id=e.agreement_id, partner_id=e.partner_id, direction=c.Direction(e.direction),
        entry_type=c.EntryType(e.entry_type), status=c.EntryStatus(e.status), amount=e.amount, currency=e.currency,
        period=e.period, line_key=e.line_key, revenue_key=e.revenue_key, customer=e.customer_name or e.customer or None,
        version=e.version, revision=e.revision, rule=e.rule, detail=e.detail, reverses_entry_id=e.reverses_entry_id,
        adjusts_entry_id=e.adjusts_entry_id, payment_id=e.payment_id, created_at=e.created_at)


async def list_entries(session: AsyncSession, cmd: c.ListLedgerEntries) -> c.LedgerPage:
    by = cmd.sort.value.lstrip("-")
    after = _ledger_cursor(by, cmd.after) if cmd.after else None
    rows, total = await LedgerRepository(session).list(
        partner_id=cmd.partner_id, agreement_id=cmd.agreement_id, status=cmd.status.value if cmd.status else None,
        period=domain.statement_range(cmd.period) if cmd.period else None, offset=0 if after else cmd.offset,
        limit=cmd.limit + 1, sort=cmd.sort.value, after=after)
    more, rows = len(rows) > cmd.limit, rows[:cmd.limit]
    last = rows[-1] if rows else None
    next_after = None
    if more and last is not None:
        next_after = str(last.id) if by == "id" else f"{getattr(last, by)}:{last.id}"
    return c.LedgerPage(items=[entry_contract(e) for e in rows], total=total, offset=cmd.offset, limit=cmd.limit,
                        next_after=next_after)


def _ledger_cursor(by: str, cursor: str) -> tuple[object, ...]:
    """The row a page starts after, as the sort compares it; a cursor of another sort is refused."""
    value, _, last_id = cursor.rpartition(":")
    try:
        if by == "id" and not value:
            return (int(last_id),)
        if by == "amount" and value and "-" not in value[1:]:
            return (Decimal(value), int(last_id))
        if by == "period" and value:
            return (date.fromisoformat(value), int(last_id))
    except ValueError:
        pass
    raise Invalid(f"this cursor does not belong to a listing sorted by {by}: start again from the first page",
                  field="after")


async def _entries(ledger: LedgerRepository, ids: Sequence[int]) -> list[LedgerEntry]:
    rows = await ledger.by_ids(ids, for_update=True)
    missing = sorted(set(ids) - {e.id for e in rows})
    if missing:
        raise NotFound(f"no ledger entries with ids {', '.join(map(str, missing[:20]))}", field="entry_ids")
    return rows


def _totals(rows: Sequence[LedgerEntry]) -> list[c.PeriodTotal]:
    totals: dict[tuple[date, str], list[Any]] = {}
    for e in rows:
        t = totals.setdefault((e.period, e.entry_type), [Decimal(0), 0])
        t[0] += e.amount
        t[1] += 1
    return [c.PeriodTotal(period=p, entry_type=c.EntryType(t), amount=v[0], entries=v[1])
            for (p, t), v in sorted(totals.items())]


async def _refuse_own(session: AsyncSession, rows: Sequence[LedgerEntry], cmd: c.ApproveEntries | c.PayEntries,
                      doing: str) -> None:
    """Four eyes: whoever recorded revenue by hand does not also approve or pay its commission."""
    if not cmd.second_approver or not cmd.actor or not rows:
        return
    pairs = {tuple(e.revenue_key.split(":", 1)) for e in rows}
    mine = set((await session.execute(select(RevenueRow.kind, RevenueRow.ref).where(
        RevenueRow.actor == cmd.actor, tuple_(RevenueRow.kind, RevenueRow.ref).in_(pairs)))).tuples())
    own = [e.id for e in rows if tuple(e.revenue_key.split(":", 1)) in mine]
    if own:
        raise Forbidden(f"entries {', '.join(map(str, own[:20]))} come from revenue you recorded; another manager "
                        f"{doing} them", field="entry_ids")


async def approve_entries(session: AsyncSession, cmd: c.ApproveEntries) -> c.ApprovalResult:
    ledger = LedgerRepository(session)
    rows = await _entries(ledger, cmd.entry_ids)
    await _refuse_own(session, rows, cmd, "approves")
    paid = [e.id for e in rows if e.status == c.EntryStatus.paid]
    if paid:
        raise Conflict(f"entries {', '.join(map(str, paid[:20]))} are already paid", field="entry_ids")
    to_approve = [e for e in rows if e.status == c.EntryStatus.accrued]
    # Read before approving: the update refreshes these rows, and the just-approved would count as "already".
    already = [e.id for e in rows if e.status == c.EntryStatus.approved]
    await ledger.approve([e.id for e in to_approve], cmd.actor)
    groups: dict[tuple[uuid.UUID, str, str], list[LedgerEntry]] = defaultdict(list)
    for e in to_approve:
        groups[(e.partner_id, e.direction, e.currency)].append(e)
    for (partner_id, direction, currency), entries in groups.items():
        await add_event(session, SCHEMA, c.CommissionEntriesApprovedV1(
            partner_id=partner_id, direction=c.Direction(direction), currency=currency, totals=_totals(entries),
            actor=cmd.actor, correlation_id=cmd.actor))
    return c.ApprovalResult(approved=[e.id for e in to_approve], already_approved=already)


async def pay_entries(session: AsyncSession, cmd: c.PayEntries) -> c.Payment:
    ledger = LedgerRepository(session)
    rows = await _entries(ledger, cmd.entry_ids)
    await _refuse_own(session, rows, cmd, "pays")
    for e in rows:
        if e.status == c.EntryStatus.paid:
            raise Conflict(f"entry {e.id} was already paid (payment {e.payment_id})", field="entry_ids")
        if e.status != c.EntryStatus.approved:
            raise Conflict(f"entry {e.id} is {e.status}; approve it before paying it", field="entry_ids")
    groups = {(e.partner_id, e.direction, e.currency) for e in rows}
    if len(groups) > 1:
        raise Invalid("a payment covers entries of one partner, one direction and one currency; these mix "
                      f"{len(groups)}", field="entry_ids")
    [(partner_id, direction, currency)] = groups
    total = sum((e.amount for e in rows), Decimal(0))
    if total < 0:
        raise Invalid(f"the entries net to {domain.money(total)}: clawbacks exceed accruals; include accruals that "
                      "cover them", field="entry_ids")
    payment = await ledger.add_payment(Payment(partner_id=partner_id, direction=direction, currency=currency,
                                               amount=total, paid_on=cmd.paid_on, reference=cmd.reference,
                                               created_by=cmd.actor))
    await ledger.pay([e.id for e in rows], payment.id, cmd.actor)
    await add_event(session, SCHEMA, c.CommissionEntriesPaidV1(
        payment_id=payment.id, partner_id=partner_id, direction=c.Direction(direction), currency=currency,
        amount=total, paid_on=cmd.paid_on, entries=len(rows), actor=cmd.actor, correlation_id=cmd.actor))
    return c.Payment(id=payment.id, partner_id=partner_id, direction=c.Direction(direction), currency=currency,
                     amount=total, paid_on=payment.paid_on, reference=payment.reference,
                     entry_ids=[e.id for e in rows], created_at=payment.created_at, created_by=payment.created_by)


async def statement(session: AsyncSession, cmd: c.GetStatement) -> c.Statement:
    start, end = domain.statement_range(cmd.period)
    ledger = LedgerRepository(session)
    entries = await ledger.entries_in(cmd.partner_id, start, end)
    payments = await ledger.payments_in(cmd.partner_id, start, end)
    before = await ledger.balance_before(cmd.partner_id, start)
    paid_before = await ledger.payments_before(cmd.partner_id, start)
    sections: dict[tuple[str, str], dict[str, Any]] = {}
    keys = set(before) | set(paid_before) | {(e.direction, e.currency) for e in entries} | {
        (p.direction, p.currency) for p, _ in payments}
    for key in sorted(keys):
        sections[key] = {"lines": [], "payment_lines": [], "accruals": Decimal(0), "clawbacks": Decimal(0),
                         "adjustments": Decimal(0), "payments": Decimal(0), "spif": Decimal(0),
                         "opening": before.get(key, Decimal(0)) - paid_before.get(key, Decimal(0))}
    for e in entries:
        s = sections[(e.direction, e.currency)]
        s["lines"].append(entry_contract(e))
        s[{"accrual": "accruals", "clawback": "clawbacks", "adjustment": "adjustments"}[e.entry_type]] += e.amount
        if e.rule == "spif":
            s["spif"] += e.amount
    for p, count in payments:
        s = sections[(p.direction, p.currency)]
        s["payments"] += p.amount
        s["payment_lines"].append(c.StatementPayment(payment_id=p.id, paid_on=p.paid_on, amount=p.amount,
                                                     reference=p.reference, entries=count))
    names = await PipelineCopyRepository(session).partner_names([cmd.partner_id])
    return c.Statement(
        partner_id=cmd.partner_id, partner_name=names.get(cmd.partner_id), period=cmd.period, period_start=start,
        period_end=end, sections=[c.StatementSection(
            direction=c.Direction(d), currency=cur, opening_balance=s["opening"], accruals=s["accruals"],
            clawbacks=s["clawbacks"], adjustments=s["adjustments"], payments=s["payments"],
            closing_balance=s["opening"] + s["accruals"] + s["clawbacks"] + s["adjustments"] - s["payments"],
            spif_bonuses=s["spif"], lines=s["lines"], payment_lines=s["payment_lines"])
        for (d, cur), s in sections.items()])


# -------------------------------------------------------------------------------------------- SPIFs


async def list_spifs(session: AsyncSession, cmd: c.ListSpifs) -> c.SpifList:
    found = await AgreementRepository(session).spif_versions(cmd.partner_id, cmd.limit)
    net = await LedgerRepository(session).net_by_line({a.id for a, _ in found})
    names = await PipelineCopyRepository(session).partner_names({a.partner_id for a, _ in found})
    today = engine.clock().date()
    items = []
    for a, v in found:
        lines = [(k, n) for agreement_id, version, k, n in net if agreement_id == a.id and version == v.version]
        rule = c.Terms.model_validate(v.terms).rate
        assert isinstance(rule, c.SpifRate)
        end = v.effective_to or date.max
        status = (c.SpifStatus.upcoming if today < v.effective_from else
                  c.SpifStatus.running if today < end else c.SpifStatus.ended)
        items.append(c.Spif(
            agreement_id=a.id, partner_id=a.partner_id, partner_name=names.get(a.partner_id), name=a.name,
            direction=c.Direction(a.direction), currency=a.currency, version=v.version,
            window_from=v.effective_from, window_to=end, status=status, rule=rule,
            rule_text=domain.describe_spif(rule),
            deals=sum(1 for k, n in lines if k.startswith(f"{c.RevenueKind.deal_won.value}:") and n > 0),
            earned=sum((n for _, n in lines), Decimal(0))))
    return c.SpifList(items=items)


# ------------------------------------------------------------------------------------------ forecast


async def forecast(session: AsyncSession, cmd: c.ForecastCommissions) -> c.Forecast:
    copy = PipelineCopyRepository(session)
    opportunities = await copy.open_opportunities(cmd.partner_id, cmd.limit)
    partners = {o.partner_id for o in opportunities if o.partner_id}
    agreements_repo = AgreementRepository(session)
    agreements = await agreements_repo.of_partners(partners)
    versions = await agreements_repo.versions(a.id for a in agreements)
    specs = {a.id: engine.spec_of(a, versions[a.id]) for a in agreements}
    bases = await copy.period_basis(specs)
    tiers = {p: engine.tier_history(rows) for p, rows in (await copy.tiers(partners)).items()}
    in_force = await copy.probabilities()
    today = engine.clock().date()
    now = engine.clock()
    lines: list[c.ForecastLine] = []
    for o in opportunities:
        on = max(o.expected_close_date or today, today)
        # The one probability rule; a row stored before stage keys were kept weighs what it carried.
        probability = Decimal(pc.probability_of(in_force, o.pipeline, o.stage_key) if o.pipeline and o.stage_key
                              else o.probability) / 100
        for a in (a for a in agreements if a.partner_id == o.partner_id):
            spec = specs[a.id]
            version = spec.in_force(on)
            key, basis = bases.get(a.id, (None, Decimal(0)))
            same_period = version is not None and key == domain.period_key(on, version.terms.period)
            tier: PartnerTier | None = domain.tier_at(tiers.get(a.partner_id, []), now)
            expected = domain.expected_commission(
                spec, amount=o.amount, currency=o.currency, probability=probability, on=on,
                deal_model=o.deal_model, tier=tier, period_basis=basis if same_period else Decimal(0),
                pipeline=o.pipeline)
            if expected is None:
                continue
            lines.append(c.ForecastLine(
                opportunity_id=o.id, partner_id=a.partner_id, agreement_id=a.id, direction=c.Direction(a.direction),
                customer=o.customer, stage=o.stage, amount=o.amount, currency=o.currency,
                probability=probability, rate=expected.rate, commission=expected.commission,
                note=expected.note))
    totals: dict[tuple[str, str], list[Any]] = {}
    for line in lines:
        t = totals.setdefault((line.direction.value, line.currency), [Decimal(0), 0])
        t[0] += line.commission
        t[1] += 1
    return c.Forecast(lines=lines, totals=[
        c.ForecastTotal(direction=c.Direction(d), currency=cur, commission=v[0], opportunities=v[1])
        for (d, cur), v in sorted(totals.items())])
