"""Relationship pages: the contact list (search, add, import contacts and calendars), a contact's page
(strength over time, interactions, linked deals, edit, log a touch), the heatmap and the attention
list. Writes go through the REST API's own functions, so they are validated and audited the same way.
The quick-log dialog on every page (static/quicklog.js) uses the REST API directly."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from contracts import contacts as c
from contracts import pipeline as pc
from gateway.auth import Role
from gateway.routes import contacts as api
from gateway.state import bus
from gateway.web import relationship_charts
from gateway.web.common import Member, Viewer, field_errors, not_found, render, templates
from gateway.web.pipeline import partner_choices, team_handles
from runtime.commands import send
from runtime.errors import CommandFailed

router = APIRouter(include_in_schema=False)
templates.env.globals["rcharts"] = relationship_charts
PAGE = 50
SENIORITIES = [(s.value, s.value) for s in c.Seniority]
FORM_ERRORS = ("invalid", "conflict")
FIELDS = ("partner_id", "name", "email", "phone", "role", "title", "territory", "segment", "seniority", "owner",
          "reports_to", "crucial")


def _form_errors(exc: ValidationError | CommandFailed, default: str = "name") -> dict[str, str]:
    if isinstance(exc, CommandFailed) and exc.error.kind not in FORM_ERRORS:
        raise exc
    return field_errors(exc, default)


async def _choices(request: Request) -> tuple[list[pc.Partner], list[tuple[str, str]], c.RelationshipSettings]:
    actor = request.state.principal.name
    return await asyncio.gather(partner_choices(request, actor), team_handles(request),
                                send(bus(request), c.GetRelationshipSettings(actor=actor)))


# ------------------------------------------------------------------------------------- the list


async def _list_page(request: Request, *, q: str | None, partner_id: UUID | None, crucial: bool | None,
                     sort: c.ContactSort, page: int, errors: dict[str, str] | None = None,
                     form: dict[str, str] | None = None, notice: str | None = None,
                     result: c.ImportResult | None = None, status_code: int = 200) -> Response:
    listing, (orgs, team, settings) = await asyncio.gather(
        send(bus(request), c.ListContacts(q=q, partner_id=partner_id, crucial=crucial, sort=sort,
                                          offset=(page - 1) * PAGE, limit=PAGE, actor=request.state.principal.name)),
        _choices(request))
    return render(request, "contacts.html", {
        "contacts": listing, "page": page, "pages": max(1, -(-listing.total // PAGE)), "q": q or "",
        "partner_id": str(partner_id) if partner_id else "", "crucial": crucial, "sort": sort,
        "sorts": [(c.ContactSort.name, "Name"), (c.ContactSort.strength, "Weakest first"),
                  (c.ContactSort.strength_desc, "Strongest first"), (c.ContactSort.cold_at, "Going cold soonest"),
                  (c.ContactSort.stake_desc, "Most at stake"), (c.ContactSort.last_touch_desc, "Last touched")],
        "orgs": orgs, "team": team, "roles": settings.roles, "seniorities": SENIORITIES,
        "errors": errors or {}, "form": form or {"seniority": "manager"},
        "notice": notice or request.query_params.get("notice"), "result": result,
    }, status_code=status_code)


@router.get("/contacts", response_class=HTMLResponse)
async def contact_list(
    request: Request, _: Viewer,
    q: Annotated[str | None, Query(max_length=200)] = None,
    partner_id: Annotated[str | None, Query(max_length=40)] = None,
    crucial: Annotated[str | None, Query(max_length=5)] = None,
    sort: Annotated[str | None, Query(max_length=20)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    try:
        org = UUID(partner_id) if partner_id else None
    except ValueError:
        org = None
    order = c.ContactSort(sort) if sort in {s.value for s in c.ContactSort} else c.ContactSort.name
    flag = True if crucial == "1" else None
    text = (q or "").strip() or None
    if text and any(ord(ch) < 32 for ch in text):
        text = None
    return await _list_page(request, q=text, partner_id=org, crucial=flag, sort=order, page=page)


def _contact_fields(form: dict[str, str]) -> dict[str, Any]:
    fields: dict[str, Any] = {k: (form.get(k) or "").strip() or None for k in FIELDS if k != "crucial"}
    fields["crucial"] = form.get("crucial") == "on"
    if fields["seniority"] is None:
        fields.pop("seniority")
    return fields


@router.post("/contacts")
async def create_contact_form(request: Request, principal: Member) -> Response:
    raw = await request.form()
    form = {k: str(raw.get(k, ""))[:2000] for k in FIELDS}
    try:
        contact = await api.create_contact(api.ContactIn(**_contact_fields(form)), request, principal)
    except (ValidationError, CommandFailed) as exc:
        return await _list_page(request, q=None, partner_id=None, crucial=None, sort=c.ContactSort.name, page=1,
                                errors=_form_errors(exc), form=form, status_code=422)
    return RedirectResponse(f"/contacts/{contact.id}?notice=Contact+added.", status_code=303)


async def _upload_text(upload: UploadFile | None) -> str | None:
    if upload is None:
        return None
    raw = await upload.read(api.MAX_FILE_BYTES + 1)
    if len(raw) > api.MAX_FILE_BYTES:
        raise ValueError(f"the file is larger than {api.MAX_FILE_BYTES // 1000} KB; split it")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError("the file is not UTF-8 text") from exc


@router.post("/contacts/import")
async def import_contacts_form(request: Request, principal: Member) -> Response:
    form = await request.form(max_part_size=api.MAX_FILE_BYTES + 1)
    upload = form.get("file")
    kind = c.ContactImportFormat.vcard if str(form.get("format")) == "vcard" else c.ContactImportFormat.csv
    partner = str(form.get("partner_id") or "")
    page = {"q": None, "partner_id": None, "crucial": None, "sort": c.ContactSort.name, "page": 1}
    try:
        content = await _upload_text(upload if not isinstance(upload, str) else None)
        if not content or not content.strip():
            raise ValueError("choose a file to import")
        result = await api.import_contacts_file(request, principal, content, kind, UUID(partner) if partner else None)
    except (ValueError, ValidationError, CommandFailed) as exc:
        if isinstance(exc, CommandFailed) and exc.error.kind not in FORM_ERRORS:
            raise
        message = exc.error.message if isinstance(exc, CommandFailed) else str(exc).removeprefix("Value error, ")
        if isinstance(exc, ValidationError):
            message = "; ".join(e["msg"] for e in exc.errors()[:3])
        return await _list_page(request, **page, errors={"file": message}, status_code=422)
    if not result.stored:
        return await _list_page(request, **page, result=result, status_code=422)
    return await _list_page(request, **page, notice=f"Imported {result.created} new and {result.updated} updated "
                                                       f"contacts from {result.rows} rows.")


@router.post("/contacts/calendar")
async def import_calendar_form(request: Request, principal: Member) -> Response:
    form = await request.form(max_part_size=api.MAX_FILE_BYTES + 1)
    upload = form.get("file")
    page = {"q": None, "partner_id": None, "crucial": None, "sort": c.ContactSort.name, "page": 1}
    try:
        content = await _upload_text(upload if not isinstance(upload, str) else None)
        if not content or not content.strip():
            raise ValueError("choose an .ics file")
        result: c.ImportResult = await send(bus(request), c.ImportCalendar(content=content, actor=principal.name),
                                            timeout=120)
    except (ValueError, ValidationError, CommandFailed) as exc:
        if isinstance(exc, CommandFailed) and exc.error.kind not in FORM_ERRORS:
            raise
        message = exc.error.message if isinstance(exc, CommandFailed) else str(exc)
        return await _list_page(request, **page, errors={"calendar": message[:300]}, status_code=422)
    unreadable = f", {len(result.errors)} unreadable" if result.errors else ""
    notice = (f"Calendar: {result.created} meetings logged, {result.skipped} skipped (no known contact, cancelled, "
              f"in the future or logged before){unreadable}.")
    return await _list_page(request, **page, notice=notice, result=result if result.errors else None)


# ---------------------------------------------------------------------------------- one contact


async def _contact_page(request: Request, contact_id: UUID, *, errors: dict[str, str] | None = None,
                        form: dict[str, str] | None = None, status_code: int = 200) -> Response:
    actor = request.state.principal.name
    try:
        detail: c.ContactDetail = await send(bus(request), c.GetContact(contact_id=contact_id, actor=actor))
    except CommandFailed as exc:
        if exc.error.kind == "not_found":
            return not_found(request, "contact")
        raise
    orgs, team, settings = await _choices(request)
    x = detail.contact
    if form is None:
        form = {k: ("" if getattr(x, k) is None else str(getattr(x, k).value if hasattr(getattr(x, k), "value")
                                                         else getattr(x, k))) for k in FIELDS if k != "crucial"}
        form["crucial"] = "on" if x.crucial else ""
    return render(request, "contact.html", {
        "d": detail, "x": x, "points": [(p.day, p.score) for p in detail.history], "orgs": orgs, "team": team,
        "roles": settings.roles, "seniorities": SENIORITIES,
        "threshold": settings.strength.cold_threshold, "kinds": list(c.InteractionKind), "errors": errors or {},
        "form": form, "notice": request.query_params.get("notice"),
        "today": datetime.now(UTC).date().isoformat(),
    }, status_code=status_code)


@router.get("/contacts/{contact_id}", response_class=HTMLResponse)
async def contact_page(contact_id: UUID, request: Request, _: Viewer) -> Response:
    return await _contact_page(request, contact_id)


@router.post("/contacts/{contact_id}")
async def update_contact_form(contact_id: UUID, request: Request, principal: Member) -> Response:
    raw = await request.form()
    form = {k: str(raw.get(k, ""))[:2000] for k in (*FIELDS, "expected_version", "archived")}
    fields = _contact_fields(form)
    fields.pop("partner_id")
    try:
        body = api.ContactPatch(**fields, partner_id=form["partner_id"] or None,
                                expected_version=form["expected_version"] or None,
                                archived=True if form["archived"] == "1" else (False if form["archived"] == "0"
                                                                               else None))
        await api.update_contact(contact_id, body, request, principal)
    except (ValidationError, CommandFailed) as exc:
        errors = _form_errors(exc)
        if "expected_version" in errors:
            return await _contact_page(request, contact_id, status_code=409, errors={
                "form": "Someone changed this contact while you were editing; here is what they saved."})
        return await _contact_page(request, contact_id, errors=errors, form=form, status_code=422)
    return RedirectResponse(f"/contacts/{contact_id}?notice=Saved.", status_code=303)


@router.post("/contacts/{contact_id}/interactions")
async def log_form(contact_id: UUID, request: Request, principal: Member) -> Response:
    """Logging without the dialog (no JavaScript): the contact's own form."""
    raw = await request.form()
    form = {k: str(raw.get(k, ""))[:5000] for k in ("kind", "day", "initiated_by", "note")}
    try:
        day = datetime.fromisoformat(form["day"]) if form["day"] else datetime.now(UTC)
        at = day.replace(tzinfo=UTC, hour=12) if day.tzinfo is None and len(form["day"]) <= 10 else day
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        if at.date() == datetime.now(UTC).date():
            at = datetime.now(UTC)
        await api.log_interaction(api.InteractionIn(
            kind=form["kind"], occurred_at=at, contact_ids=[contact_id], initiated_by=form["initiated_by"] or "us",
            note=form["note"].strip() or None), request, principal)
    except (ValueError, ValidationError, CommandFailed) as exc:
        if isinstance(exc, ValidationError | CommandFailed):
            errors = {f"log_{k}": v for k, v in _form_errors(exc, "kind").items()}
        else:
            errors = {"log_occurred_at": "Enter a date like 2026-11-30."}
        return await _contact_page(request, contact_id, errors=errors, status_code=422)
    return RedirectResponse(f"/contacts/{contact_id}?notice=Logged.", status_code=303)


@router.post("/interactions/{interaction_id}/delete")
async def delete_interaction_form(interaction_id: UUID, request: Request, principal: Member) -> Response:
    raw = await request.form()
    back = str(raw.get("contact_id", ""))
    try:
        await api.delete_interaction(interaction_id, request, principal)
    except CommandFailed as exc:
        if exc.error.kind != "not_found":
            raise
    target = f"/contacts/{UUID(back)}" if back and _is_uuid(back) else "/contacts"
    return RedirectResponse(f"{target}?notice=Interaction+removed.", status_code=303)


def _is_uuid(value: str) -> bool:
    try:
        UUID(value)
    except ValueError:
        return False
    return True


# ------------------------------------------------------------------------------ heatmap, attention


@router.get("/relationships", response_class=HTMLResponse)
async def heatmap_page(request: Request, principal: Viewer,
                       group: Annotated[str | None, Query(max_length=20)] = None,
                       crucial: Annotated[str | None, Query(max_length=5)] = None) -> Response:
    by = c.HeatmapGroup.owner if group == "owner" else c.HeatmapGroup.organisation
    data: c.Heatmap = await send(bus(request), c.GetHeatmap(group_by=by, crucial_only=crucial == "1", rows=40,
                                                            per_row=60, actor=principal.name))
    return render(request, "relationships.html", {"data": data, "group": by.value, "crucial": crucial == "1"})


@router.get("/attention", response_class=HTMLResponse)
async def attention_page(request: Request, principal: Viewer,
                         mine: Annotated[str | None, Query(max_length=5)] = None) -> Response:
    # The VP (and managers) see the whole team; a member sees their own week unless they ask for all.
    whole_team = (principal.role.rank >= Role.manager.rank and mine != "1") or mine == "0"
    data = await api.attention_for(request, principal, None if whole_team else principal.id)
    capacity = next((w.capacity_hours for w in data.members if w.owner == principal.id), None)
    return render(request, "attention.html", {
        "data": data, "whole_team": whole_team, "capacity": capacity, "errors": {},
        "notice": request.query_params.get("notice"),
        "week_of": (datetime.now(UTC).date() - timedelta(days=datetime.now(UTC).weekday())),
    })


@router.post("/attention/capacity")
async def capacity_form(request: Request, principal: Member) -> Response:
    raw = await request.form()
    try:
        hours = Decimal(str(raw.get("hours_per_week", "")).strip())
        await api.set_capacity(api.CapacityIn(hours_per_week=hours, owner=str(raw.get("owner") or "") or None),
                               request, principal)
    except (InvalidOperation, ValidationError, CommandFailed):
        return RedirectResponse("/attention?notice=Capacity+must+be+hours+between+0+and+168.", status_code=303)
    return RedirectResponse("/attention?notice=Capacity+saved.", status_code=303)
