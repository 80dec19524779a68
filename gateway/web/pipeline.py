"""The pipeline board (a column per stage, filters, moving deals), the deal form and the opportunity
page with its stage history. Reads and writes go to the pipeline service's commands; every change
made here is audited like one made over the API."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import select

from contracts import pipeline as pc
from contracts.quarters import Quarter
from gateway import audit, people
from gateway.auth import Principal
from gateway.models import User
from gateway.read_models import forecast as fc
from gateway.routes.pipeline import OpportunityPatch, delete_opportunity, restore_opportunity, update_opportunity
from gateway.state import bus, sessions
from gateway.web.common import Member, Viewer, field_errors, not_found, render
from runtime.commands import send
from runtime.errors import CommandFailed

router = APIRouter(include_in_schema=False)
# A column shows the biggest deals first and says how many more there are; the board stays quick
# however many opportunities the pipeline holds.
COLUMN_LIMIT = 60


async def team_handles(request: Request) -> list[tuple[str, str]]:
    """(user id, name) of everyone who can own a deal or partner (gateway/people.py): members and up,
    not viewers (they cannot edit what they would own)."""
    async with sessions(request)() as session:
        users = await session.scalars(select(User).where(User.active, User.role.in_(people.OWNING_ROLES))
                                      .order_by(User.name))
        return [(str(u.id), u.name) for u in users]


async def partner_choices(request: Request, actor: str) -> list[pc.Partner]:
    listing: pc.PartnerList = await send(bus(request), pc.ListPartners(sort=pc.PartnerSort.name, limit=500,
                                                                       actor=actor))
    return listing.items


def quarter_choices(today: date, start_month: int) -> list[str]:
    this = Quarter.fiscal_of(today, start_month)
    return [this.shift(n).label for n in range(-2, 3)]


# ----------------------------------------------------------------------------------------- board


@dataclass
class Column:
    stage: pc.StageDef
    deals: list[pc.Opportunity]
    total: int
    previous: str | None = None
    following: str | None = None

    @property
    def amounts(self) -> dict[str, Any]:
        sums: dict[str, Any] = {}
        for o in self.deals:
            sums[o.currency] = sums.get(o.currency, 0) + o.amount
        return sums

    def converted(self, settings: pc.PipelineSettings) -> tuple[Decimal, dict[str, Decimal]]:
        """The column's total in the reporting currency, as the dashboard converts (read_models/forecast.py),
        and what has no exchange rate (shown apart)."""
        return fc.convert(self.amounts, settings)


@dataclass
class Filters:
    pipeline: str = ""
    owner: str = ""
    partner: str = ""
    source: str = ""
    quarter: str = ""

    def query(self, **changes: str) -> str:
        values = {k: v for k, v in {**vars(self), **changes}.items() if v}
        return urlencode(values)


@dataclass
class Board:
    stage_sets: list[pc.StageSet]
    stage_set: pc.StageSet
    columns: list[Column]
    filters: Filters
    settings: pc.PipelineSettings
    closed_quarter: str
    quarter_kind: str
    partners: dict[str, str] = field(default_factory=dict)


async def load_board(request: Request, principal: Principal, filters: Filters) -> Board:
    nc, actor = bus(request), principal.name
    sets, settings, partners = await asyncio.gather(
        send(nc, pc.ListStageSets(actor=actor)), send(nc, pc.GetPipelineSettings(actor=actor)),
        partner_choices(request, actor))
    by_key = {s.key: s for s in sets.items}
    stage_set = by_key.get(filters.pipeline) or by_key.get(settings.forecast_pipelines[0]) or sets.items[0]
    filters.pipeline = stage_set.key
    today = datetime.now(UTC).date()
    # Closed columns show one quarter (this one unless filtered), or they would hold all history.
    this = Quarter.fiscal_of(today, settings.fiscal_year_start_month)
    closed_quarter = filters.quarter or this.label
    partner_id = _uuid(filters.partner)
    found = (await people.directory(request)).find(filters.owner) if filters.owner else None
    owner = found.id if found else (filters.owner or None)
    source = pc.Source(filters.source) if filters.source in set(pc.Source) else None

    async def column(stage: pc.StageDef) -> tuple[list[pc.Opportunity], int]:
        quarter = filters.quarter or (closed_quarter if stage.outcome != pc.Outcome.open else None)
        listing: pc.OpportunityList = await send(nc, pc.ListOpportunities(
            pipeline=stage_set.key, stage=stage.key, owner=owner, partner_id=partner_id,
            source=source, quarter=quarter, sort=pc.OpportunitySort.amount_desc, limit=COLUMN_LIMIT, actor=actor))
        return listing.items, listing.total

    results = await asyncio.gather(*(column(s) for s in stage_set.stages))
    columns = [Column(stage=s, deals=deals, total=total) for s, (deals, total) in zip(stage_set.stages, results,
                                                                                        strict=True)]
    for i, col in enumerate(columns):
        col.previous = columns[i - 1].stage.key if i > 0 else None
        col.following = columns[i + 1].stage.key if i + 1 < len(columns) else None
    return Board(stage_sets=sets.items, stage_set=stage_set, columns=columns, filters=filters, settings=settings,
                 closed_quarter=closed_quarter, quarter_kind=this.kind_label,
                 partners={str(p.id): p.name for p in partners})


def _uuid(text: str | None) -> UUID | None:
    try:
        return UUID(text) if text else None
    except ValueError:
        return None


@router.get("/pipeline", response_class=HTMLResponse)
async def board(
    request: Request,
    principal: Viewer,
    pipeline: Annotated[str, Query(max_length=40)] = "",
    owner: Annotated[str, Query(max_length=200)] = "",
    partner: Annotated[str, Query(max_length=40)] = "",
    source: Annotated[str, Query(max_length=20)] = "",
    quarter: Annotated[str, Query(max_length=12)] = "",
) -> Response:
    try:
        quarter = Quarter.parse(quarter).label if quarter else ""
    except ValueError:
        quarter = ""
    filters = Filters(pipeline=pipeline, owner=owner, partner=partner, source=source, quarter=quarter)
    b, team = await asyncio.gather(load_board(request, principal, filters), team_handles(request))
    today = datetime.now(UTC)
    return render(request, "pipeline.html", {
        "b": b, "team": team, "sources": list(pc.Source),
        "quarters": quarter_choices(today.date(), b.settings.fiscal_year_start_month),
        "stale_before": today - timedelta(days=b.settings.stuck_after_days), "today": today.date(),
        "notice": request.query_params.get("notice"), "error": request.query_params.get("error"),
        "undo": _undo(request), "here": f"/pipeline?{filters.query()}",
    })


# ------------------------------------------------------------------------ deleting and restoring deals


def _undo(request: Request) -> dict[str, str] | None:
    """The "deleted, Undo" banner after a delete: the deal's id and name from the redirect."""
    deleted, name = _uuid(request.query_params.get("deleted")), request.query_params.get("name", "")[:200]
    return {"id": str(deleted), "name": name or "The deal"} if deleted else None


@router.get("/opportunities/deleted", response_class=HTMLResponse)
async def deleted_deals(request: Request, principal: Viewer,
                        page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> Response:
    """Deleted deals by name, each with Restore while its RESTORE_DAYS days last."""
    listing: pc.OpportunityList = await send(bus(request), pc.ListOpportunities(
        deleted=True, sort=pc.OpportunitySort.name, offset=(page - 1) * 50, limit=50, actor=principal.name))
    now = datetime.now(UTC)
    return render(request, "deleted_deals.html", {
        "deals": listing, "page": page, "pages": max(1, -(-listing.total // 50)),
        "restorable": lambda o: o.deleted_at is not None and now - o.deleted_at <= timedelta(days=pc.RESTORE_DAYS),
        "until": lambda o: o.deleted_at + timedelta(days=pc.RESTORE_DAYS) if o.deleted_at else None,
        "notice": request.query_params.get("notice"), "error": request.query_params.get("error"),
    })


@router.post("/opportunities/{opportunity_id}/delete")
async def delete_deal_form(opportunity_id: UUID, request: Request, principal: Member) -> Response:
    try:
        deal = await delete_opportunity(opportunity_id, request, principal)
    except CommandFailed as exc:
        if exc.error.kind != "conflict":
            raise
        return RedirectResponse(_with(f"/opportunities/{opportunity_id}", error=exc.error.message), status_code=303)
    return RedirectResponse(_with(f"/pipeline?pipeline={deal.pipeline}", deleted=str(deal.id), name=deal.name),
                            status_code=303)


@router.post("/opportunities/{opportunity_id}/restore")
async def restore_deal_form(opportunity_id: UUID, request: Request, principal: Member) -> Response:
    try:
        await restore_opportunity(opportunity_id, request, principal)
    except CommandFailed as exc:
        if exc.error.kind != "conflict":
            raise
        return RedirectResponse(_with("/opportunities/deleted", error=exc.error.message), status_code=303)
    return RedirectResponse(f"/opportunities/{opportunity_id}?notice=Restored.", status_code=303)


# ------------------------------------------------------------------------------------ moving deals


def _back(target: str, fallback: str) -> str:
    # Only our own pages: the hidden field comes from the form, which anyone can edit.
    return target if target.startswith("/") and not target.startswith("//") else fallback


def _with(target: str, **params: str) -> str:
    return target + ("&" if "?" in target else "?") + urlencode(params)


async def move_deal(request: Request, principal: Principal, opportunity_id: UUID, stage: str,
                    expected_version: int | None, closed_lost_reason: str | None = None) -> pc.Opportunity:
    before: pc.OpportunityDetail = await send(bus(request), pc.GetOpportunity(opportunity_id=opportunity_id,
                                                                              actor=principal.name))
    moved: pc.Opportunity = await send(bus(request), pc.MoveOpportunity(
        opportunity_id=opportunity_id, stage=stage, expected_version=expected_version,
        closed_lost_reason=closed_lost_reason or None, actor=principal.name))
    if moved.version != before.version:
        async with sessions(request)() as session, session.begin():
            await audit.record(session, actor=principal.name, action="opportunity.moved", entity="opportunity",
                               entity_id=opportunity_id, before={"stage": before.stage, "version": before.version},
                               after={"stage": moved.stage, "version": moved.version})
    return moved


@router.post("/opportunities/{opportunity_id}/move")
async def move_form(
    opportunity_id: UUID,
    request: Request,
    principal: Member,
    stage: Annotated[str, Form(max_length=100)] = "",
    expected_version: Annotated[int | None, Form()] = None,
    closed_lost_reason: Annotated[str, Form(max_length=200)] = "",
    back: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    target = _back(back, f"/opportunities/{opportunity_id}")
    if not stage:
        return RedirectResponse(_with(target, error="Pick a stage to move the deal to."), status_code=303)
    try:
        moved = await move_deal(request, principal, opportunity_id, stage, expected_version, closed_lost_reason)
    except CommandFailed as exc:
        if exc.error.kind == "conflict":
            message = "Someone changed this deal a moment ago; the board now shows its current stage."
        elif exc.error.kind in ("invalid", "not_found"):
            message = exc.error.message
        else:
            raise
        return RedirectResponse(_with(target, error=message), status_code=303)
    return RedirectResponse(_with(target, notice=f"Moved {moved.name} to {moved.stage_name}."), status_code=303)


# ---------------------------------------------------------------------------------------- new deal

DEAL_FIELDS = ("name", "customer", "partner_id", "amount", "currency", "expected_close_date", "owner",
               "deal_model", "pipeline", "stage", "hyperscaler")


async def _deal_form(request: Request, principal: Principal, *, form: dict[str, str], errors: dict[str, str],
                     status_code: int = 200) -> Response:
    nc = bus(request)
    partners, team, sets, settings = await asyncio.gather(
        partner_choices(request, principal.name), team_handles(request),
        send(nc, pc.ListStageSets(actor=principal.name)), send(nc, pc.GetPipelineSettings(actor=principal.name)))
    form = {"currency": settings.reporting_currency, "owner": principal.id, **form}
    return render(request, "deal_form.html", {
        "form": form, "errors": errors, "partners": partners, "team": team, "stage_sets": sets.items,
        "deal_models": list(pc.DealModel), "hyperscalers": list(pc.Hyperscaler),
    }, status_code=status_code)


@router.get("/opportunities/new", response_class=HTMLResponse)
async def new_deal(request: Request, principal: Member, partner: Annotated[str, Query(max_length=40)] = "",
                   ) -> Response:
    return await _deal_form(request, principal, form={"partner_id": partner} if partner else {}, errors={})


@router.post("/opportunities")
async def create_deal_form(request: Request, principal: Member) -> Response:
    raw = await request.form()
    form = {name: str(raw.get(name, "")).strip() for name in DEAL_FIELDS}
    values: dict[str, Any] = {k: v for k, v in form.items() if v != ""}
    try:
        if values.get("owner"):
            values["owner"] = await people.deal_owner_id(request, values["owner"])
        command = pc.CreateOpportunity(**values, actor=principal.name)
        created: pc.Opportunity = await send(bus(request), command)
    except (ValidationError, CommandFailed) as exc:
        if isinstance(exc, CommandFailed) and exc.error.kind not in ("invalid", "conflict"):
            raise
        return await _deal_form(request, principal, form=form, errors=field_errors(exc, "name"), status_code=422)
    async with sessions(request)() as session, session.begin():
        await audit.record(session, actor=principal.name, action="opportunity.created", entity="opportunity",
                           entity_id=created.id, after=created)
    return RedirectResponse(f"/opportunities/{created.id}?notice=Deal+added.", status_code=303)


# ---------------------------------------------------------------------------------- opportunity page


EDIT_FIELDS = ("name", "customer", "partner_id", "amount", "currency", "expected_close_date", "owner", "deal_model",
               "hyperscaler", "expected_version")
ACE_FIELDS = ("review_status", "action_due_date", "reviewer_comments", "next_steps")


def _edit_form(o: pc.Opportunity) -> dict[str, str]:
    ace = o.ace or pc.AceState()
    values: dict[str, object] = {
        "name": o.name, "customer": o.customer, "partner_id": o.partner_id or "", "amount": f"{o.amount:f}",
        "currency": o.currency, "expected_close_date": o.expected_close_date or "", "owner": o.owner or "",
        "deal_model": o.deal_model.value, "hyperscaler": o.hyperscaler.value if o.hyperscaler else "",
        "review_status": ace.review_status.value if ace.review_status else "",
        "action_due_date": ace.action_due_date or "", "reviewer_comments": ace.reviewer_comments or "",
        "next_steps": ace.next_steps or "",
    }
    return {k: str(v) for k, v in values.items()}


async def _opportunity_page(request: Request, opportunity_id: UUID, *, errors: dict[str, str] | None = None,
                            form: dict[str, str] | None = None, status_code: int = 200,
                            share_errors: dict[str, str] | None = None,
                            share_form: dict[str, str] | None = None) -> Response:
    nc, actor = bus(request), request.state.principal.name
    try:
        o: pc.OpportunityDetail = await send(nc, pc.GetOpportunity(opportunity_id=opportunity_id, actor=actor))
    except CommandFailed as exc:
        if exc.error.kind == "not_found":
            return not_found(request, "deal")
        raise
    sets, settings, partners, team = await asyncio.gather(
        send(nc, pc.ListStageSets(actor=actor)), send(nc, pc.GetPipelineSettings(actor=actor)),
        partner_choices(request, actor), team_handles(request))
    stage_set = next((s for s in sets.items if s.key == o.pipeline), pc.RESALE_STAGE_SET)
    partner = next((p for p in partners if p.id == o.partner_id), None)
    names = {s.key: s.name for s in stage_set.stages}
    stale = (o.outcome == pc.Outcome.open and o.deleted_at is None
             and o.stage_entered_at < datetime.now(UTC) - timedelta(days=settings.stuck_after_days))
    return render(request, "opportunity.html", {
        "o": o, "stage_set": stage_set, "partner": partner, "stage_names": names, "stale": stale,
        "settings": settings, "notice": request.query_params.get("notice"),
        "error": request.query_params.get("error"), "here": f"/opportunities/{o.id}",
        "partners": partners, "team": team, "deal_models": list(pc.DealModel), "hyperscalers": list(pc.Hyperscaler),
        "review_statuses": list(pc.AceReviewStatus), "co_sell": o.pipeline == pc.COSELL or o.ace is not None,
        "form": form or _edit_form(o), "errors": errors or {},
        "share_form": share_form or {}, "share_errors": share_errors or {},
        "restore_until": o.deleted_at + timedelta(days=pc.RESTORE_DAYS) if o.deleted_at else None,
        "restorable": o.deleted_at is not None and datetime.now(UTC) - o.deleted_at <= timedelta(days=pc.RESTORE_DAYS),
    }, status_code=status_code)


@router.get("/opportunities/{opportunity_id}", response_class=HTMLResponse)
async def opportunity_page(opportunity_id: UUID, request: Request, _: Viewer) -> Response:
    return await _opportunity_page(request, opportunity_id)


@router.post("/opportunities/{opportunity_id}")
async def update_deal_form(opportunity_id: UUID, request: Request, principal: Member) -> Response:
    raw = await request.form()
    form = {name: str(raw.get(name, "")).strip() for name in (*EDIT_FIELDS, *ACE_FIELDS)}
    changes: dict[str, Any] = {k: form[k] for k in ("name", "customer", "amount", "currency", "deal_model")}
    # Emptied optional fields are cleared, as the API's PATCH does with null.
    changes.update({k: form[k] or None for k in ("partner_id", "expected_close_date", "owner", "hyperscaler")})
    if form["expected_version"]:
        changes["expected_version"] = form["expected_version"]
    if raw.get("ace") == "1":
        current: pc.OpportunityDetail = await send(bus(request), pc.GetOpportunity(
            opportunity_id=opportunity_id, actor=principal.name))
        changes["ace"] = {**{k: form[k] or None for k in ACE_FIELDS},
                          "closed_lost_reason": current.ace.closed_lost_reason if current.ace else None}
    try:
        await update_opportunity(opportunity_id, OpportunityPatch(**changes), request, principal)
    except (ValidationError, CommandFailed) as exc:
        if isinstance(exc, CommandFailed) and exc.error.kind not in ("invalid", "conflict"):
            raise
        errors = field_errors(exc, "name")
        if "expected_version" in errors:
            errors = {"form": "Someone changed this deal while you were editing; here is what they saved."}
            return await _opportunity_page(request, opportunity_id, errors=errors, status_code=409)
        return await _opportunity_page(request, opportunity_id, errors=errors, form=form, status_code=422)
    return RedirectResponse(f"/opportunities/{opportunity_id}?notice=Saved.", status_code=303)
