"""The partner portal's pages: the organisation's tier and progress, its deals, its registrations,
this quarter's commission statement, and the deal registration form. Every read goes through the
portal API's functions (gateway/routes/portal.py), which scope it to the signed-in partner user."""

from __future__ import annotations

import asyncio
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from contracts import commissions as cc
from contracts import pipeline as pc
from gateway.auth import Principal, require_partner
from gateway.routes import portal as api
from gateway.state import bus
from gateway.web.common import field_errors, not_found, render
from runtime.commands import send
from runtime.errors import CommandFailed

router = APIRouter(include_in_schema=False)
PartnerUser = Annotated[Principal, Depends(require_partner())]
PAGE = 50
FORM_FIELDS = ("name", "customer", "amount", "currency", "expected_close_date", "deal_model", "notes")


async def _onboarding(request: Request, principal: Principal) -> api.PortalOnboarding | None:
    try:
        return await api.onboarding_of(request, principal)
    except (CommandFailed, TimeoutError):
        return None  # the relationships service is away: the page still shows the rest


async def _enablement(request: Request, principal: Principal) -> api.PortalEnablement | None:
    try:
        return await api.enablement_of(request, principal)
    except (CommandFailed, TimeoutError):
        return None  # the relationships service is away: the page still shows the rest


async def _statement(request: Request, principal: Principal, period: str) -> cc.Statement | None:
    try:
        statement = await api.statement_of(request, principal, period)
    except (CommandFailed, TimeoutError):
        return None  # the commissions service is away: the page still shows the rest
    return statement if statement.sections else None


@router.get("/portal", response_class=HTMLResponse)
async def overview(
    request: Request,
    principal: PartnerUser,
    q: Annotated[str | None, Query(max_length=200)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    period = api.this_quarter()
    try:
        summary, deals, registrations, statement, onboarding, enablement = await asyncio.gather(
            api.summary_of(request, principal),
            api.deals_of(request, principal, q=(q or "").strip() or None, offset=(page - 1) * PAGE, limit=PAGE),
            api.registrations_of(request, principal, limit=20),
            _statement(request, principal, period), _onboarding(request, principal),
            _enablement(request, principal))
    except ValidationError:
        raise HTTPException(422, detail="search for letters, not control characters") from None
    return render(request, "portal.html", {
        "summary": summary, "deals": deals, "registrations": registrations, "statement": statement,
        "onboarding": onboarding, "enablement": enablement,
        "period": period, "q": q or "", "page": page, "pages": max(1, -(-deals.total // PAGE)),
        "notice": request.query_params.get("notice"),
    })


@router.get("/portal/deals/{opportunity_id}", response_class=HTMLResponse)
async def deal_page(opportunity_id: UUID, request: Request, principal: PartnerUser) -> Response:
    try:
        deal = await api.deal_of(request, principal, opportunity_id)
    except HTTPException as exc:
        if exc.status_code == 404:
            return not_found(request, "deal")
        raise
    # Stage history holds keys ("technical_validation"); the partner reads the names the team pages show.
    sets: pc.StageSetList = await send(bus(request), pc.ListStageSets(actor=principal.name))
    names = {(x.key, stage.key): stage.name for x in sets.items for stage in x.stages}
    return render(request, "portal_deal.html", {"deal": api.deal_view(deal), "history": deal.stage_history,
                                                "pipeline": deal.pipeline, "stage_names": names})


@router.get("/portal/statements/{period}", response_class=HTMLResponse)
async def statement_page(period: str, request: Request, principal: PartnerUser) -> Response:
    try:
        statement = await api.statement_of(request, principal, period)
    except (ValidationError, CommandFailed) as exc:
        if isinstance(exc, CommandFailed) and exc.error.kind not in ("invalid", "not_found"):
            raise
        return not_found(request, "statement period (write 2026-11 or 2026-Q4)")
    return render(request, "portal_statement.html", {"statement": statement})


def _form_page(request: Request, *, form: dict[str, str], errors: dict[str, str] | None = None,
               status_code: int = 200) -> Response:
    return render(request, "portal_register.html", {
        "form": form, "errors": errors or {}, "models": [(m.value, m.value) for m in pc.DealModel],
    }, status_code=status_code)


@router.get("/portal/register", response_class=HTMLResponse)
async def register_page(request: Request, _: PartnerUser) -> Response:
    return _form_page(request, form={"currency": "USD", "deal_model": pc.DealModel.referral.value})


@router.post("/portal/register")
async def register_form(
    request: Request,
    principal: PartnerUser,
    name: Annotated[str, Form(max_length=1000)] = "",
    customer: Annotated[str, Form(max_length=1000)] = "",
    amount: Annotated[str, Form(max_length=100)] = "",
    currency: Annotated[str, Form(max_length=20)] = "USD",
    expected_close_date: Annotated[str, Form(max_length=40)] = "",
    deal_model: Annotated[str, Form(max_length=40)] = "referral",
    notes: Annotated[str, Form(max_length=5000)] = "",
) -> Response:
    form = {"name": name, "customer": customer, "amount": amount, "currency": currency,
            "expected_close_date": expected_close_date, "deal_model": deal_model, "notes": notes}
    fields: dict[str, object] = {k: v for k, v in form.items() if v.strip()}
    try:
        body = api.RegistrationIn(**fields)  # type: ignore[arg-type]
        await api.register(request, principal, body)
    except (ValidationError, CommandFailed) as exc:
        if isinstance(exc, CommandFailed) and exc.error.kind != "invalid":
            raise
        return _form_page(request, form=form, errors=field_errors(exc, "name"), status_code=422)
    return RedirectResponse("/portal?notice=Deal+registered.+Your+contact+on+our+team+will+review+it.",
                            status_code=303)
