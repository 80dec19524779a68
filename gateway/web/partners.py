"""Partner list, the add-partner form and the partner page."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from contracts import pipeline as pc
from gateway.routes.partners import PartnerIn, add_partner
from gateway.state import bus
from gateway.web.common import Member, Viewer, field_errors, not_found, render
from runtime.commands import send
from runtime.errors import CommandFailed

router = APIRouter(include_in_schema=False)
PAGE = 50


async def _list_page(request: Request, *, type_: str | None, page: int, errors: dict[str, str] | None = None,
                     form: dict[str, str] | None = None, status_code: int = 200) -> Response:
    kind = pc.PartnerType(type_) if type_ in set(pc.PartnerType) else None
    listing: pc.PartnerList = await send(bus(request), pc.ListPartners(
        type=kind, offset=(page - 1) * PAGE, limit=PAGE, actor=request.state.principal.name))
    return render(request, "partners.html", {
        "partners": listing, "page": page, "pages": max(1, -(-listing.total // PAGE)), "type": kind,
        "types": list(pc.PartnerType), "tiers": list(pc.PartnerTier), "statuses": list(pc.PartnerStatus),
        "errors": errors or {}, "form": form or {},
    }, status_code=status_code)


@router.get("/partners", response_class=HTMLResponse)
async def partner_list(
    request: Request,
    _: Viewer,
    type: Annotated[str | None, Query(max_length=20)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    return await _list_page(request, type_=type, page=page)


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
        if isinstance(exc, CommandFailed) and exc.error.kind not in ("invalid", "conflict"):
            raise
        return await _list_page(request, type_=None, page=1, errors=field_errors(exc, "name"), form=form,
                                status_code=422)
    return RedirectResponse(f"/partners/{partner.id}?created=1", status_code=303)


@router.get("/partners/{partner_id}", response_class=HTMLResponse)
async def partner_page(partner_id: UUID, request: Request, principal: Viewer) -> Response:
    try:
        partner = await send(bus(request), pc.GetPartner(partner_id=partner_id, actor=principal.name))
    except CommandFailed as exc:
        if exc.error.kind == "not_found":
            return not_found(request, "partner")
        raise
    deals = None
    if hasattr(pc, "ListOpportunities"):
        try:
            deals = await send(bus(request), pc.ListOpportunities(partner_id=partner_id, limit=100,
                                                                  actor=principal.name))
        except CommandFailed:
            deals = None
    return render(request, "partner.html", {"partner": partner, "deals": deals,
                                            "created": request.query_params.get("created")})
