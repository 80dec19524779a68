"""Commissions: agreements and their versions and audit, revenue entered by hand, the ledger with
approval and payment (managers and admins), statements (JSON and CSV), the forecast and the KPIs."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from contracts import billing as bc
from contracts import commissions as cc
from contracts import money
from contracts import pipeline as pc
from contracts.fields import INT_MAX, Day, Moment, Name, Offset, PeriodName, line, text
from gateway import audit
from gateway.auth import Principal, Role, require
from gateway.known_partner import known_partner
from gateway.read_models import commissions as commission_models
from gateway.state import bus, sessions
from runtime.commands import send
from runtime.csv_cells import safe_row

router = APIRouter(prefix="/api/commissions", tags=["commissions"])

Reader = Annotated[Principal, Depends(require(Role.viewer, scope="commissions:read"))]
Writer = Annotated[Principal, Depends(require(Role.member, scope="commissions:write"))]
Approver = Annotated[Principal, Depends(require(Role.manager, scope="commissions:approve"))]

DealModels = Annotated[list[pc.DealModel] | None, Field(default=None, max_length=10,
                                                        description="only deals of these models; none = all")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class VersionIn(_In):
    effective_from: Day
    effective_to: Day | None = Field(default=None, description="exclusive; none = until a later version starts")
    retroactive: bool = Field(default=False, description="apply also to revenue of deals booked before "
                              "effective_from (from effective_from on)")
    terms: cc.Terms


class AgreementIn(VersionIn):
    partner_id: UUID
    name: Name
    direction: cc.Direction
    currency: bc.Currency = "USD"
    deal_models: DealModels = None


class AgreementPatch(_In):
    name: Name
    deal_models: DealModels = None


class InvoiceIn(_In):
    invoice_id: bc.Ref
    customer: bc.Ref
    partner_id: UUID | None = None
    opportunity_id: UUID | None = None
    amount: money.PositiveAmount
    currency: bc.Currency = "USD"
    paid_at: Moment
    customer_started_on: Day | None = None
    deal_model: pc.DealModel | None = None


class RefundIn(_In):
    refund_id: bc.Ref
    invoice_id: bc.Ref
    amount: money.PositiveAmount
    currency: bc.Currency = "USD"
    refunded_at: Moment


class ChurnIn(_In):
    customer: bc.Ref
    partner_id: UUID | None = None
    opportunity_id: UUID | None = None
    churned_at: Moment
    reason: text(500) | None = None


class EntriesIn(_In):
    entry_ids: cc.EntryIds


class PaymentIn(EntriesIn):
    paid_on: Day = Field(default_factory=lambda: datetime.now(UTC).date())
    reference: line(200, 1, description="e.g. the bank transfer's reference")


class KpiFigure(BaseModel):
    label: str
    direction: cc.Direction
    currency: str
    amount: str


class Kpis(BaseModel):
    quarter: str
    quarter_kind: str = Field(description="Commissions count calendar quarters.")
    figures: list[KpiFigure]


def _models(models: list[pc.DealModel] | None) -> list[str] | None:
    return [m.value for m in models] if models else None


# ---------------------------------------------------------------------------------------- agreements


@router.get("/agreements", response_model=cc.AgreementList)
async def list_agreements(request: Request, principal: Reader, partner_id: UUID | None = None,
                          offset: Annotated[Offset, Query()] = 0,
                          limit: Annotated[int, Query(ge=1, le=500)] = 50) -> cc.AgreementList:
    return await send(bus(request), cc.ListAgreements(partner_id=partner_id, offset=offset, limit=limit,
                                                      actor=principal.name))


@router.post("/agreements", status_code=201, response_model=cc.Agreement)
async def create_agreement(body: AgreementIn, request: Request, principal: Writer) -> cc.Agreement:
    await known_partner(request, body.partner_id, principal.name)
    fields = body.model_dump(exclude={"deal_models", "terms"})
    agreement: cc.Agreement = await send(bus(request), cc.CreateAgreement(
        **fields, terms=body.terms, deal_models=_models(body.deal_models), actor=principal.name))
    await audit.record_change(request, principal.name, "agreement.created", entity_id=agreement.id, after=body)
    return agreement


@router.get("/agreements/{agreement_id}", response_model=cc.Agreement)
async def get_agreement(agreement_id: UUID, request: Request, principal: Reader) -> cc.Agreement:
    return await send(bus(request), cc.GetAgreement(agreement_id=agreement_id, actor=principal.name))


@router.patch("/agreements/{agreement_id}", response_model=cc.Agreement)
async def update_agreement(agreement_id: UUID, body: AgreementPatch, request: Request,
                           principal: Writer) -> cc.Agreement:
    agreement: cc.Agreement = await send(bus(request), cc.UpdateAgreement(
        agreement_id=agreement_id, name=body.name, deal_models=_models(body.deal_models), actor=principal.name))
    await audit.record_change(request, principal.name, "agreement.updated", entity_id=agreement_id, after=body)
    return agreement


@router.post("/agreements/{agreement_id}/versions", status_code=201, response_model=cc.Agreement)
async def add_version(agreement_id: UUID, body: VersionIn, request: Request, principal: Writer) -> cc.Agreement:
    agreement: cc.Agreement = await send(bus(request), cc.AddAgreementVersion(
        agreement_id=agreement_id, **body.model_dump(exclude={"terms"}), terms=body.terms, actor=principal.name))
    await audit.record_change(request, principal.name, "agreement.version_added", entity_id=agreement_id, after=body)
    return agreement


@router.put("/agreements/{agreement_id}/versions/{version}", response_model=cc.Agreement)
async def update_version(agreement_id: UUID, version: Annotated[int, Path(ge=1, le=INT_MAX)], body: VersionIn,
                         request: Request, principal: Writer) -> cc.Agreement:
    agreement: cc.Agreement = await send(bus(request), cc.UpdateAgreementVersion(
        agreement_id=agreement_id, version=version, **body.model_dump(exclude={"terms"}), terms=body.terms,
        actor=principal.name))
    await audit.record_change(request, principal.name, "agreement.version_updated", entity_id=agreement_id,
                              after={"version": version, **body.model_dump(mode="json")})
    return agreement


@router.get("/agreements/{agreement_id}/audit", response_model=cc.AuditList)
async def agreement_audit(agreement_id: UUID, request: Request, principal: Reader) -> cc.AuditList:
    return await send(bus(request), cc.GetAgreementAudit(agreement_id=agreement_id, actor=principal.name))


@router.post("/agreements/{agreement_id}/recalculate", response_model=cc.RecalculationResult)
async def recalculate(agreement_id: UUID, request: Request, principal: Approver) -> cc.RecalculationResult:
    result: cc.RecalculationResult = await send(
        bus(request), cc.RecalculateAgreement(agreement_id=agreement_id, actor=principal.name), timeout=60)
    await audit.record_change(request, principal.name, "agreement.recalculated", entity_id=agreement_id,
                              after=result)
    return result


# ------------------------------------------------------------------------------------------ revenue


async def _recorded(request: Request, principal: Principal, result: cc.RevenueRecorded) -> JSONResponse:
    if not result.duplicate:  # a duplicate changed nothing
        e = result.event
        await audit.record_change(request, principal.name, f"revenue.{e.kind.value}_recorded", entity="revenue",
                                  entity_id=e.key, after={
                                      "partner_id": e.partner_id, "customer": e.customer, "amount": e.amount,
                                      "currency": e.currency, "occurred_at": e.occurred_at,
                                      "entries": [x.id for x in result.entries]})
    return JSONResponse(result.model_dump(mode="json"), status_code=200 if result.duplicate else 201)


@router.post("/revenue/invoices", status_code=201, response_model=cc.RevenueRecorded,
             responses={200: {"description": "already recorded (the same invoice): nothing changed"}})
async def record_invoice(body: InvoiceIn, request: Request, principal: Writer) -> JSONResponse:
    data = body.model_dump(exclude={"deal_model"})
    return await _recorded(request, principal, await send(bus(request), cc.RecordInvoicePaid(
        **data, deal_model=body.deal_model.value if body.deal_model else None, actor=principal.name)))


@router.post("/revenue/refunds", status_code=201, response_model=cc.RevenueRecorded,
             responses={200: {"description": "already recorded (the same refund): nothing changed"}})
async def record_refund(body: RefundIn, request: Request, principal: Writer) -> JSONResponse:
    return await _recorded(request, principal, await send(bus(request), cc.RecordRefund(
        **body.model_dump(), actor=principal.name)))


@router.post("/revenue/churns", status_code=201, response_model=cc.RevenueRecorded,
             responses={200: {"description": "already recorded (the same churn): nothing changed"}})
async def record_churn(body: ChurnIn, request: Request, principal: Writer) -> JSONResponse:
    return await _recorded(request, principal, await send(bus(request), cc.RecordChurn(
        **body.model_dump(), actor=principal.name)))


@router.get("/revenue", response_model=cc.RevenueEventList)
async def list_revenue(request: Request, principal: Reader, partner_id: UUID | None = None,
                       kind: cc.RevenueKind | None = None, offset: Annotated[Offset, Query()] = 0,
                       limit: Annotated[int, Query(ge=1, le=500)] = 50) -> cc.RevenueEventList:
    return await send(bus(request), cc.ListRevenueEvents(partner_id=partner_id, kind=kind, offset=offset, limit=limit,
                                                         actor=principal.name))


# ------------------------------------------------------------------------------------------- ledger


@router.get("/ledger", response_model=cc.LedgerPage)
async def list_ledger(request: Request, principal: Reader, partner_id: UUID | None = None,
                      agreement_id: UUID | None = None, status: cc.EntryStatus | None = None,
                      period: Annotated[PeriodName | None, Query()] = None,
                      sort: cc.LedgerSort = cc.LedgerSort.id,
                      after: Annotated[cc.LedgerCursor | None, Query(
                          description="the previous page's next_after (keyset paging)")] = None,
                      offset: Annotated[Offset, Query()] = 0,
                      limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> cc.LedgerPage:
    return await send(bus(request), cc.ListLedgerEntries(
        partner_id=partner_id, agreement_id=agreement_id, status=status, period=period, sort=sort, after=after,
        offset=offset, limit=limit, actor=principal.name))


def second_approver(request: Request) -> bool:
    return bool(request.app.state.settings.commissions_second_approver)


@router.post("/ledger/approve", response_model=cc.ApprovalResult)
async def approve(body: EntriesIn, request: Request, principal: Approver) -> cc.ApprovalResult:
    result: cc.ApprovalResult = await send(bus(request), cc.ApproveEntries(
        entry_ids=body.entry_ids, actor=principal.name, second_approver=second_approver(request)))
    if result.approved:
        await audit.record_change(request, principal.name, "ledger.approved", entity="ledger_entry",
                                  after={"entries": result.approved})
    return result


@router.post("/ledger/pay", status_code=201, response_model=cc.Payment)
async def pay(body: PaymentIn, request: Request, principal: Approver) -> cc.Payment:
    payment: cc.Payment = await send(bus(request), cc.PayEntries(
        entry_ids=body.entry_ids, paid_on=body.paid_on, reference=body.reference, actor=principal.name,
        second_approver=second_approver(request)))
    await audit.record_change(request, principal.name, "ledger.paid", entity="payment", entity_id=payment.id,
                              after=payment)
    return payment


# --------------------------------------------------------------------------------------- statements

PeriodPath = Annotated[PeriodName, Path(description="a month (2026-11) or a calendar quarter (2026-Q4)")]


CSV_COLUMNS = ("direction", "currency", "row", "date", "entry_id", "entry_type", "status", "agreement_id",
               "revenue", "customer", "version", "rule", "detail", "amount")


def statement_csv(s: cc.Statement) -> Iterator[str]:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")

    def row(*cells: object) -> str:
        out.seek(0)
        out.truncate()
        writer.writerow(safe_row(cells))
        return out.getvalue()

    yield row(*CSV_COLUMNS)
    for sec in s.sections:
        head = (sec.direction.value, sec.currency)
        yield row(*head, "opening balance", s.period_start, "", "", "", "", "", "", "", "", "", sec.opening_balance)
        for e in sec.lines:
            yield row(*head, "entry", e.period, e.id, e.entry_type.value, e.status.value, e.agreement_id,
                      e.revenue_key, e.customer, e.version, e.rule, e.detail, e.amount)
        for p in sec.payment_lines:
            yield row(*head, "payment", p.paid_on, "", "", "", "", "", "", "", "", p.reference, -p.amount)
        yield row(*head, "closing balance", s.period_end, "", "", "", "", "", "", "", "", "", sec.closing_balance)


@router.get("/statements/{partner_id}/{period}.csv", response_class=StreamingResponse,
            responses={200: {"content": {"text/csv": {}}}})
async def statement_as_csv(partner_id: UUID, period: PeriodPath, request: Request,
                           principal: Reader) -> StreamingResponse:
    s = await send(bus(request), cc.GetStatement(partner_id=partner_id, period=period, actor=principal.name))
    name = f"commission-statement-{period}-{partner_id}.csv"
    return StreamingResponse(statement_csv(s), media_type="text/csv; charset=utf-8",
                             headers={"content-disposition": f'attachment; filename="{name}"'})


# Declared after the CSV route: "{period}" alone would also match "2026-Q4.csv".
@router.get("/statements/{partner_id}/{period}", response_model=cc.Statement)
async def statement(partner_id: UUID, period: PeriodPath, request: Request, principal: Reader) -> cc.Statement:
    return await send(bus(request), cc.GetStatement(partner_id=partner_id, period=period, actor=principal.name))


# ---------------------------------------------------------------------------------- forecast, KPIs


@router.get("/forecast", response_model=cc.Forecast)
async def forecast(request: Request, principal: Reader, partner_id: UUID | None = None,
                   limit: Annotated[int, Query(ge=1, le=5000)] = 500) -> cc.Forecast:
    return await send(bus(request), cc.ForecastCommissions(partner_id=partner_id, limit=limit, actor=principal.name))


@router.get("/spifs", response_model=cc.SpifList)
async def spifs(request: Request, principal: Reader, partner_id: UUID | None = None,
                limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> cc.SpifList:
    """SPIFs (agreements of rate kind `spif`), a line per window, with the deals that qualified and the bonus
    earned. A SPIF is made like any agreement (POST /agreements with `terms.rate.kind` = `spif`)."""
    return await send(bus(request), cc.ListSpifs(partner_id=partner_id, limit=limit, actor=principal.name))


@router.get("/kpis", response_model=Kpis)
async def kpis(request: Request, principal: Reader) -> Kpis:
    async with sessions(request)() as session:
        k = await commission_models.kpis(session, datetime.now(UTC).date())
    figures = [KpiFigure(label=f.label, direction=cc.Direction(f.direction), currency=f.currency, amount=str(f.amount))
               for f in k.figures]
    return Kpis(quarter=k.quarter, quarter_kind=k.quarter_kind, figures=figures)
