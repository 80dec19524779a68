"""Partner list, the add-partner form, and the partner page (scorecard, tier, deals, commission
statement) with its edit form. Writes go through the REST API's own functions, so they are
validated and audited the same way."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from contracts import commissions as cc
from contracts import pipeline as pc
from contracts.quarters import Quarter
from gateway.routes.partners import (
    PartnerIn,
    PartnerPatch,
    add_partner,
    archive_partner,
    delete_partner,
    restore_partner,
    update_partner,
)
from gateway.state import bus
from gateway.web.activity import section as activity_section
from gateway.web.common import Member, Viewer, field_errors, not_found, render
from gateway.web.pipeline import team_handles
from runtime.commands import send
from runtime.errors import CommandFailed

router = APIRouter(include_in_schema=False)
DEALS_PAGE = 20
PAGE = 50
CRITERIA = (("strategic_fit", "Strategic fit", 30), ("revenue_potential", "Revenue potential", 25),
            ("feasibility", "Feasibility", 25), ("risk", "Risk (10 = least risky)", 20))
FORM_ERRORS = ("invalid", "conflict")


STATES = (("active", "Active"), ("archived", "Archived"), ("deleted", "Deleted"))


async def _list_page(request: Request, *, type_: str | None, page: int, errors: dict[str, str] | None = None,
                     form: dict[str, str] | None = None, status_code: int = 200, state: str = "active",
                     sort: str = "name") -> Response:
    kind = pc.PartnerType(type_) if type_ in set(pc.PartnerType) else None
    state = state if state in dict(STATES) else "active"
    sort = sort if sort in {s.value for s in pc.PartnerSort} else pc.PartnerSort.name.value
    listing, team = await asyncio.gather(
        send(bus(request), pc.ListPartners(type=kind, state=state, sort=pc.PartnerSort(sort),  # type: ignore[arg-type]
                                           offset=(page - 1) * PAGE, limit=PAGE, actor=request.state.principal.name)),
        team_handles(request))
    now = datetime.now(UTC)
    removed, q = _uuid(request.query_params.get("removed")), request.query_params
    undo = {"id": str(removed), "name": q.get("name", "")[:200] or "The partner",
            "how": "archived" if q.get("how") == "archived" else "deleted"} if removed else None
    return render(request, "partners.html", {
        "state": state, "states": STATES, "undo": undo, "sort": sort,
        # Every link keeps the filters: type, state and sort (a sort starts at page 1).
        "list_link": lambda page=1, sort=sort: "?" + urlencode(
            {k: v for k, v in (("type", kind.value if kind else ""), ("state", state), ("sort", sort),
                               ("page", str(page))) if v}),
        "restorable": lambda p: p.deleted_at is None or now - p.deleted_at <= timedelta(days=pc.RESTORE_DAYS),
        "notice": request.query_params.get("notice"), "error": request.query_params.get("error"),
        "partners": listing, "page": page, "pages": max(1, -(-listing.total // PAGE)), "type": kind,
        "types": list(pc.PartnerType), "tiers": list(pc.PartnerTier), "statuses": list(pc.PartnerStatus),
        "team": team, "errors": errors or {}, "form": form or {},
    }, status_code=status_code)


@router.get("/partners", response_class=HTMLResponse)
async def partner_list(
    request: Request,
    _: Viewer,
    type: Annotated[str | None, Query(max_length=20)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    state: Annotated[str, Query(max_length=20)] = "active",
    sort: Annotated[str, Query(max_length=20)] = "name",
) -> Response:
    return await _list_page(request, type_=type, page=page, state=state, sort=sort)


def _uuid(text: str | None) -> UUID | None:
    try:
        return UUID(text) if text else None
    except ValueError:
        return None


def _to(path: str, **params: str) -> RedirectResponse:
    return RedirectResponse(path + "?" + urlencode(params), status_code=303)


@router.post("/partners/{partner_id}/archive")
async def archive_partner_form(partner_id: UUID, request: Request, principal: Member) -> Response:
    try:
        partner = await archive_partner(partner_id, request, principal)
    except CommandFailed as exc:
        if exc.error.kind != "conflict":
            raise
        return _to(f"/partners/{partner_id}", error=exc.error.message)
    return _to("/partners", removed=str(partner.id), name=partner.name, how="archived")


@router.post("/partners/{partner_id}/delete")
async def delete_partner_form(partner_id: UUID, request: Request, principal: Member) -> Response:
    try:
        partner = await delete_partner(partner_id, request, principal)
    except CommandFailed as exc:
        if exc.error.kind != "conflict":
            raise
        return _to(f"/partners/{partner_id}", error=exc.error.message)
    return _to("/partners", removed=str(partner.id), name=partner.name, how="deleted")


@router.post("/partners/{partner_id}/restore")
async def restore_partner_form(partner_id: UUID, request: Request, principal: Member) -> Response:
    try:
        await restore_partner(partner_id, request, principal)
    except CommandFailed as exc:
        if exc.error.kind != "conflict":
            raise
        return _to("/partners", state="deleted", error=exc.error.message)
    return _to(f"/partners/{partner_id}", notice="Restored.")


@router.post("/partners")
async def create_partner_form(
    request: Request,
    principal: Member,
    name: Annotated[str, Form(max_length=1000)] = "",
    type: Annotated[str, Form(max_length=50)] = "",
    tier: Annotated[str, Form(max_length=50)] = "",
    status: Annotated[str, Form(max_length=50)] = "",
    owner: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    form = {"name": name, "type": type, "tier": tier, "status": status, "owner": owner}
    fields: dict[str, object] = {"name": name, "type": type, "owner": owner.strip() or None}
    if tier:
        fields["tier"] = tier
    if status:
        fields["status"] = status
    try:
        body = PartnerIn(**fields)  # type: ignore[arg-type]
        partner = await add_partner(request, principal, body)
    except (ValidationError, CommandFailed) as exc:
        if isinstance(exc, CommandFailed) and exc.error.kind not in FORM_ERRORS:
            raise
        return await _list_page(request, type_=None, page=1, errors=field_errors(exc, "name"), form=form,
                                status_code=422)
    return RedirectResponse(f"/partners/{partner.id}?notice=Partner+added.", status_code=303)


async def _statement(request: Request, partner_id: UUID, actor: str) -> cc.Statement | None:
    """This quarter's commission statement, when the commissions service has one to give."""
    with contextlib.suppress(CommandFailed, TimeoutError):
        statement: cc.Statement = await send(bus(request), cc.GetStatement(
            partner_id=partner_id, period=Quarter.calendar_of(datetime.now(UTC).date()).label, actor=actor), timeout=3)
        return statement if statement.sections else None
    return None


async def _tier_agreements(request: Request, partner_id: UUID, actor: str) -> list[cc.Agreement]:
    """The partner's agreements that follow its tier (rate kind `partner_tier`), when the service answers."""
    with contextlib.suppress(CommandFailed, TimeoutError):
        found: cc.AgreementList = await send(bus(request), cc.ListAgreements(partner_id=partner_id, limit=100,
                                                                            actor=actor), timeout=3)
        return [a for a in found.items if isinstance(current_version(a).terms.rate, cc.PartnerTierRate)]
    return []


def current_version(a: cc.Agreement) -> cc.AgreementVersion:
    today = datetime.now(UTC).date()
    started = [v for v in a.versions if v.effective_from <= today] or a.versions
    return max(started, key=lambda v: v.effective_from)


def tier_outlook(tier: pc.PartnerTier, table: pc.TierBenefitTable) -> dict[str, Any]:
    """This tier's row of the tier table and what a move one tier up or down gains and loses."""
    order = pc.TIER_ORDER
    at = order.index(tier)
    return {"now": table.of(tier), "table": table,
            "up": pc.tier_change(table, tier, order[at + 1]) if at + 1 < len(order) else None,
            "down": pc.tier_change(table, tier, order[at - 1]) if at > 0 else None}


async def _partner_page(request: Request, partner_id: UUID, *, errors: dict[str, str] | None = None,
                        form: dict[str, str] | None = None, status_code: int = 200) -> Response:
    actor = request.state.principal.name
    try:
        partner: pc.Partner = await send(bus(request), pc.GetPartner(partner_id=partner_id, actor=actor))
    except CommandFailed as exc:
        if exc.error.kind == "not_found":
            return not_found(request, "partner")
        raise
    q = request.query_params
    sorts = {s.value for s in pc.OpportunitySort}
    sort = q["sort"] if q.get("sort") in sorts else pc.OpportunitySort.amount_desc.value
    # A partner has tens of deals, not millions: numbered pages (offset) read well and cost little here.
    page_no = int(q["page"]) if q.get("page", "").isdigit() and 0 < len(q["page"]) < 6 else 1
    deals, statement, team, settings, tier_agreements, activity = await asyncio.gather(
        send(bus(request), pc.ListOpportunities(partner_id=partner_id, sort=pc.OpportunitySort(sort),
                                                 offset=(page_no - 1) * DEALS_PAGE, limit=DEALS_PAGE, actor=actor)),
        _statement(request, partner_id, actor), team_handles(request),
        send(bus(request), pc.GetPipelineSettings(actor=actor)), _tier_agreements(request, partner_id, actor),
        activity_section(request, request.state.principal, partner_id))
    pages = max(1, -(-deals.total // DEALS_PAGE))
    if form is None:
        sc = partner.scorecard
        form = {"name": partner.name, "type": partner.type.value, "status": partner.status.value,
                "owner": partner.owner or "", "tier": "" if partner.tier_auto else partner.tier.value,
                **{key: (f"{getattr(sc, key):g}" if sc else "") for key, _, _ in CRITERIA}}
    return render(request, "partner.html", {
        "partner": partner, "deals": deals, "statement": statement, "team": team, "criteria": CRITERIA,
        "activity": activity, "this_month": datetime.now(UTC).strftime("%Y-%m"),
        "outlook": tier_outlook(partner.tier, settings.tier_benefits), "tier_order": list(pc.TIER_ORDER),
        "tier_agreements": [(a, current_version(a).terms.rate) for a in tier_agreements],
        "types": list(pc.PartnerType), "tiers": list(pc.PartnerTier), "statuses": list(pc.PartnerStatus),
        "errors": errors or {}, "form": form, "notice": request.query_params.get("notice"),
        "error": request.query_params.get("error"),
        "restore_until": partner.deleted_at + timedelta(days=pc.RESTORE_DAYS) if partner.deleted_at else None,
        "restorable": partner.deleted_at is None or datetime.now(UTC) - partner.deleted_at <= timedelta(
            days=pc.RESTORE_DAYS),
        "deal_sort": sort, "deal_page": page_no, "deal_pages": pages, "deals_first": (page_no - 1) * DEALS_PAGE + 1,
        "deal_link": lambda page=1, sort=sort: "?" + urlencode({"sort": sort, "page": page}) + "#deals-title",
    }, status_code=status_code)


@router.get("/partners/{partner_id}", response_class=HTMLResponse)
async def partner_page(partner_id: UUID, request: Request, _: Viewer) -> Response:
    return await _partner_page(request, partner_id)


@router.post("/partners/{partner_id}")
async def update_partner_form(partner_id: UUID, request: Request, principal: Member) -> Response:
    raw = await request.form()
    names = ("name", "type", "status", "owner", "tier", "expected_version", *(k for k, _, _ in CRITERIA))
    form = {n: str(raw.get(n, "")).strip() for n in names}
    changes: dict[str, Any] = {"name": form["name"], "type": form["type"], "status": form["status"],
                               "owner": form["owner"] or None}
    if form["expected_version"]:
        changes["expected_version"] = form["expected_version"]
    # Tier: blank means "follow trailing revenue"; a value pins it.
    changes.update({"tier": form["tier"]} if form["tier"] else {"tier_auto": True})
    scores = {k: form[k] for k, _, _ in CRITERIA}
    if any(scores.values()):
        changes["scorecard"] = scores
    try:
        body = PartnerPatch(**changes)
        await update_partner(partner_id, body, request, principal)
    except (ValidationError, CommandFailed) as exc:
        if isinstance(exc, CommandFailed) and exc.error.kind not in FORM_ERRORS:
            raise
        errors = field_errors(exc, "name")
        if "expected_version" in errors:
            errors = {"form": "Someone changed this partner while you were editing; here is what they saved."}
            return await _partner_page(request, partner_id, errors=errors, status_code=409)
        return await _partner_page(request, partner_id, errors=errors, form=form, status_code=422)
    return RedirectResponse(f"/partners/{partner_id}?notice=Saved.", status_code=303)
