"""Enablement pages: the training modules (managers add and change them), every partner's enablement
score, certifications needing attention; one partner's people with their certifications, where
members record a date to pass by or an attempt. Writes go through the REST API's functions."""

from __future__ import annotations

import asyncio
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from contracts import contacts as cc
from contracts import enablement as ec
from gateway.routes import enablement as api
from gateway.state import bus
from gateway.web.common import Manager, Member, Viewer, field_errors, not_found, render
from runtime.commands import send
from runtime.errors import CommandFailed

router = APIRouter(include_in_schema=False)
MODULE_FIELDS = ("name", "description", "duration_minutes", "pass_mark", "valid_months", "required")


async def _overview(request: Request, *, form: dict[str, str] | None = None, errors: dict[str, str] | None = None,
                    status_code: int = 200) -> Response:
    actor = request.state.principal.name
    modules, scores, attention, expiring = await asyncio.gather(
        send(bus(request), ec.ListModules(include_archived=True, actor=actor)),
        send(bus(request), ec.ListEnablementScores(actor=actor)),
        send(bus(request), ec.ListCertifications(limit=50, actor=actor)),
        send(bus(request), ec.ListCertifications(expiring_within_days=60, limit=50, actor=actor)))
    needing = [c for c in attention.items if c.status is not ec.CertificationStatus.passed]
    return render(request, "enablement.html", {
        "modules": modules.items, "scores": scores.items, "needing": needing, "expiring": expiring.items,
        "form": form or {"pass_mark": "70", "valid_months": "12"}, "errors": errors or {},
        "notice": request.query_params.get("notice"),
    }, status_code=status_code)


@router.get("/enablement", response_class=HTMLResponse)
async def overview(request: Request, _: Viewer) -> Response:
    return await _overview(request)


def _module_body(form: dict[str, str]) -> dict[str, object]:
    body: dict[str, object] = {k: form[k] for k in ("name", "duration_minutes", "pass_mark") if form.get(k)}
    body["description"] = form.get("description") or None
    body["valid_months"] = form.get("valid_months") or None
    body["required"] = form.get("required") == "true"
    return body


@router.post("/enablement/modules")
async def module_form(request: Request, principal: Manager,
                      name: Annotated[str, Form(max_length=1000)] = "",
                      description: Annotated[str, Form(max_length=4000)] = "",
                      duration_minutes: Annotated[str, Form(max_length=20)] = "",
                      pass_mark: Annotated[str, Form(max_length=20)] = "",
                      valid_months: Annotated[str, Form(max_length=20)] = "",
                      required: Annotated[str, Form(max_length=10)] = "") -> Response:
    form = {"name": name, "description": description, "duration_minutes": duration_minutes, "pass_mark": pass_mark,
            "valid_months": valid_months, "required": required}
    try:
        await api.create_module(api.ModuleIn.model_validate(_module_body(form)), request, principal)
    except (ValidationError, CommandFailed) as exc:
        if isinstance(exc, CommandFailed) and exc.error.kind not in ("invalid", "conflict"):
            raise
        return await _overview(request, form=form, errors=field_errors(exc), status_code=422)
    return RedirectResponse("/enablement?notice=Module+added.", status_code=303)


@router.post("/enablement/modules/{module_id}")
async def module_change(module_id: UUID, request: Request, principal: Manager,
                        required: Annotated[str, Form(max_length=10)] = "",
                        archived: Annotated[str, Form(max_length=10)] = "") -> Response:
    changes: dict[str, object] = {}
    if required in ("true", "false"):
        changes["required"] = required == "true"
    if archived in ("true", "false"):
        changes["archived"] = archived == "true"
    try:
        await api.update_module(module_id, api.ModulePatch.model_validate(changes), request, principal)
    except CommandFailed as exc:
        if exc.error.kind == "not_found":
            return not_found(request, "module")
        raise
    return RedirectResponse("/enablement?notice=Module+saved.", status_code=303)


async def _partner_page(request: Request, partner_id: UUID, *, form: dict[str, str] | None = None,
                        errors: dict[str, str] | None = None, status_code: int = 200) -> Response:
    actor = request.state.principal.name
    try:
        found, modules, people = await asyncio.gather(
            send(bus(request), ec.GetPartnerEnablement(partner_id=partner_id, actor=actor)),
            send(bus(request), ec.ListModules(actor=actor)),
            send(bus(request), cc.ListContacts(partner_id=partner_id, limit=500, actor=actor)))
    except CommandFailed as exc:
        if exc.error.kind == "not_found":
            return not_found(request, "partner")
        raise
    return render(request, "enablement_partner.html", {
        "found": found, "modules": modules.items, "people": people.items, "form": form or {},
        "errors": errors or {}, "notice": request.query_params.get("notice")}, status_code=status_code)


@router.get("/enablement/{partner_id}", response_class=HTMLResponse)
async def partner_page(partner_id: UUID, request: Request, _: Viewer) -> Response:
    return await _partner_page(request, partner_id)


@router.post("/enablement/{partner_id}/certifications")
async def certification_form(partner_id: UUID, request: Request, principal: Member,
                             contact_id: Annotated[str, Form(max_length=100)] = "",
                             module_id: Annotated[str, Form(max_length=100)] = "",
                             due_on: Annotated[str, Form(max_length=40)] = "",
                             taken_on: Annotated[str, Form(max_length=40)] = "",
                             score: Annotated[str, Form(max_length=20)] = "") -> Response:
    form = {"contact_id": contact_id, "module_id": module_id, "due_on": due_on, "taken_on": taken_on,
            "score": score}
    body = {k: v.strip() for k, v in form.items() if k in ("due_on", "taken_on", "score") and v.strip()}
    try:
        person, module = UUID(contact_id), UUID(module_id)
    except ValueError:
        return await _partner_page(request, partner_id, form=form, errors={"form": "Pick a person and a module."},
                                   status_code=422)
    try:
        contact = await send(bus(request), cc.GetContact(contact_id=person, actor=principal.name))
        if contact.contact.partner_id != partner_id:
            return await _partner_page(request, partner_id, form=form, status_code=422,
                                       errors={"contact_id": "That person does not work for this partner."})
        await api.record(request, principal, person, module, api.CertificationIn.model_validate(body))
    except (ValidationError, CommandFailed) as exc:
        if isinstance(exc, CommandFailed) and exc.error.kind not in ("invalid", "conflict", "not_found"):
            raise
        return await _partner_page(request, partner_id, form=form, errors=field_errors(exc), status_code=422)
    return RedirectResponse(f"/enablement/{partner_id}?notice=Certification+saved.", status_code=303)
