"""Funding pages: the tracker (a board by AWS stage and a list ordered by the next deadline, with days
left), the new-request form, and a request's page (amounts, deadlines, history, milestones with their
claims, the move form). Writes go through the REST API's own functions, so they are validated and
audited the same way."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from contracts import funding as fc
from gateway.routes import funding as api
from gateway.state import bus
from gateway.web.common import Admin, Member, Viewer, field_errors, not_found, render
from gateway.web.pipeline import partner_choices, team_handles
from runtime.commands import send
from runtime.errors import CommandFailed

router = APIRouter(include_in_schema=False)
FORM_ERRORS = ("invalid", "conflict", "not_found")
S = fc.FundStage
# The board's columns: where a request is still moving. Closed ones are listed below it.
BOARD = (S.draft, S.submitted, S.aws_review, S.technical_approval, S.business_approval, S.finance_approval,
         S.pre_approved, S.cash_claim)
CLOSED = (S.completed, S.rejected, S.terminated, S.expired)


def _blank(value: Any) -> str | None:
    text = str(value or "").strip()
    return text or None


def _links(text: str | None) -> list[dict[str, str]]:
    """Opportunity links from a form field: ACE ids or our deal ids, separated by commas or spaces."""
    out: list[dict[str, str]] = []
    for token in (text or "").replace(",", " ").split():
        try:
            out.append({"opportunity_id": str(UUID(token))})
        except ValueError:
            out.append({"ace_id": token})
    return out


def _links_text(links: list[fc.OpportunityLink]) -> str:
    return " ".join(str(x.opportunity_id) if x.opportunity_id else (x.ace_id or "") for x in links)


async def _tracker(request: Request, *, program: str | None, view: str, errors: dict[str, str] | None = None,
                   form: dict[str, str] | None = None, status_code: int = 200) -> Response:
    actor = request.state.principal.name
    listing, programs, partners, team, rollup = await asyncio.gather(
        send(bus(request), fc.ListFundRequests(program=program, sort=fc.FundRequestSort.next_deadline, limit=500,
                                                actor=actor)),
        send(bus(request), fc.ListPrograms(include_inactive=False, actor=actor)),
        partner_choices(request, actor), team_handles(request),
        send(bus(request), fc.GetFundingRollup(actor=actor)))
    columns = [(stage, fc.STAGE_LABELS[stage], [r for r in listing.items if r.stage == stage]) for stage in BOARD]
    closed = [r for r in listing.items if r.stage in CLOSED]
    deadlines = sorted(((d, r) for r in listing.items for d in r.deadlines if d.status == "open"),
                       key=lambda x: x[0].due_date)
    return render(request, "funding.html", {
        "requests": listing, "columns": columns, "closed": closed, "deadlines": deadlines, "programs": programs.items,
        "program": program, "view": view, "partners": partners, "partner_names": {p.id: p.name for p in partners},
        "team": team, "errors": errors or {}, "form": form or {}, "labels": fc.STAGE_LABELS,
        "rollup": rollup, "program_options": [(p.key, p.name) for p in programs.items],
        "partner_options": partner_options(partners),
        "notice": request.query_params.get("notice"),
    }, status_code=status_code)


def partner_options(partners: list[Any]) -> list[tuple[str, str]]:
    return [(str(p.id), p.name) for p in partners]


@router.get("/funding", response_class=HTMLResponse)
async def tracker(request: Request, _: Viewer,
                  program: Annotated[str | None, Query(pattern=r"^[a-z][a-z0-9_]{0,39}$")] = None,
                  view: Annotated[str, Query(pattern=r"^(board|list)$")] = "board") -> Response:
    return await _tracker(request, program=program, view=view)


@router.post("/funding")
async def create_form(request: Request, principal: Member) -> Response:
    raw = await request.form()
    names = ("program", "title", "phase", "partner_id", "owner", "aws_fund_request_id", "requested",
             "activity_start", "activity_end", "opportunities", "description")
    form = {n: str(raw.get(n, "")).strip() for n in names}
    try:
        # Blank fields are left out, so a required one reads "Required." beside it.
        body = api.FundRequestIn(**{k: v for k, v in form.items() if v and k != "opportunities"},
                                 opportunities=_links(form["opportunities"]))
        created = await api.create(request, principal, body)
    except (ValidationError, CommandFailed) as exc:
        if isinstance(exc, CommandFailed) and exc.error.kind not in FORM_ERRORS:
            raise
        return await _tracker(request, program=None, view="board", errors=field_errors(exc, "title"), form=form,
                              status_code=422)
    return RedirectResponse(f"/funding/{created.id}?notice=Fund+request+created+as+a+draft.", status_code=303)


# ------------------------------------------------------------------------------------------ programs


async def _programs_page(request: Request, *, errors: dict[str, str] | None = None, edit: str | None = None,
                         status_code: int = 200) -> Response:
    programs = await send(bus(request), fc.ListPrograms(actor=request.state.principal.name))
    editing = next((p for p in programs.items if p.key == edit), None)
    return render(request, "funding_programs.html", {
        "programs": programs.items, "errors": errors or {}, "editing": editing,
        "notice": request.query_params.get("notice")}, status_code=status_code)


# Declared before /funding/{request_id}, which would otherwise take "programs" for an id.
@router.get("/funding/programs", response_class=HTMLResponse)
async def programs_page(request: Request, _: Viewer,
                        edit: Annotated[str | None, Query(pattern=r"^[a-z][a-z0-9_]{0,39}$")] = None) -> Response:
    return await _programs_page(request, edit=edit)


@router.post("/funding/programs/{key}")
async def program_form(key: api.ProgramKey, request: Request, principal: Admin) -> Response:
    raw = await request.form()
    programs = {p.key: p for p in (await send(bus(request), fc.ListPrograms(actor=principal.name))).items}
    if key not in programs:
        return not_found(request, "funding program")
    changes: dict[str, Any] = {k: _blank(raw.get(k)) for k in ("typical_cap", "expires_days_after_end",
                                                                "claim_due_months_after_end", "milestone_claim_days",
                                                                "time_zone")}
    changes["active"] = raw.get("active") == "on"
    try:
        body = fc.Program.model_validate(programs[key].model_dump() | changes)
        await api.define_program(key, body, request, principal)
    except (ValidationError, CommandFailed) as exc:
        if isinstance(exc, CommandFailed) and exc.error.kind not in FORM_ERRORS:
            raise
        return await _programs_page(request, errors=field_errors(exc, "typical_cap"), edit=key, status_code=422)
    return RedirectResponse(f"/funding/programs?notice={programs[key].name}+saved.", status_code=303)


async def _request_page(request: Request, request_id: UUID, *, errors: dict[str, str] | None = None,
                        form: dict[str, str] | None = None, status_code: int = 200) -> Response:
    actor = request.state.principal.name
    try:
        r: fc.FundRequest = await send(bus(request), fc.GetFundRequest(request_id=request_id, actor=actor))
    except CommandFailed as exc:
        if exc.error.kind == "not_found":
            return not_found(request, "fund request")
        raise
    partners, team, programs = await asyncio.gather(
        partner_choices(request, actor), team_handles(request), send(bus(request), fc.ListPrograms(actor=actor)))
    program = next((p for p in programs.items if p.key == r.program), None)
    if form is None:
        form = {"title": r.title, "phase": r.phase or "", "partner_id": str(r.partner_id or ""),
                "owner": r.owner or "", "aws_fund_request_id": r.aws_fund_request_id or "",
                "requested": str(r.requested), "activity_start": r.activity_start.isoformat(),
                "activity_end": r.activity_end.isoformat(), "opportunities": _links_text(r.opportunities),
                "description": r.description or "", "expected_version": str(r.version)}
    return render(request, "funding_request.html", {
        "r": r, "program": program, "partners": partners, "partner_names": {p.id: p.name for p in partners},
        "team": team, "errors": errors or {}, "form": form, "labels": fc.STAGE_LABELS,
        "partner_options": partner_options(partners), "editable_money": r.stage in (S.draft, S.rejected),
        "notice": request.query_params.get("notice"),
    }, status_code=status_code)


@router.get("/funding/{request_id}", response_class=HTMLResponse)
async def request_page(request_id: UUID, request: Request, _: Viewer) -> Response:
    return await _request_page(request, request_id)


async def _fail(request: Request, request_id: UUID, exc: ValidationError | CommandFailed, default: str,
                form: dict[str, str] | None = None) -> Response:
    if isinstance(exc, CommandFailed) and exc.error.kind not in FORM_ERRORS:
        raise exc
    errors = field_errors(exc, default)
    if "expected_version" in errors:
        errors = {"form": "Someone changed this request while you were editing; here is what they saved."}
        return await _request_page(request, request_id, errors=errors, status_code=409)
    return await _request_page(request, request_id, errors=errors, form=form, status_code=422)


@router.post("/funding/{request_id}")
async def update_form(request_id: UUID, request: Request, principal: Member) -> Response:
    raw = await request.form()
    names = ("title", "phase", "partner_id", "owner", "aws_fund_request_id", "requested", "activity_start",
             "activity_end", "opportunities", "description", "expected_version")
    form = {n: str(raw.get(n, "")).strip() for n in names if n in raw}
    changes: dict[str, Any] = {k: _blank(v) for k, v in form.items() if k != "opportunities"}
    if "opportunities" in form:
        changes["opportunities"] = _links(form["opportunities"])
    try:
        body = api.FundRequestPatch(**changes)
        await api.update(request, principal, request_id, body)
    except (ValidationError, CommandFailed) as exc:
        return await _fail(request, request_id, exc, "title", form)
    return RedirectResponse(f"/funding/{request_id}?notice=Saved.", status_code=303)


@router.post("/funding/{request_id}/move")
async def move_form(request_id: UUID, request: Request, principal: Member) -> Response:
    raw = await request.form()
    try:
        body = api.MoveIn(to_stage=str(raw.get("to_stage", "")), approved=_blank(raw.get("approved")),
                          note=_blank(raw.get("note")), expected_version=_blank(raw.get("expected_version")))
        moved = await api.move(request, principal, request_id, body)
    except (ValidationError, CommandFailed) as exc:
        return await _fail(request, request_id, exc, "to_stage")
    return RedirectResponse(f"/funding/{request_id}?notice=Moved+to+{moved.stage_label}.", status_code=303)


@router.post("/funding/{request_id}/milestones")
async def milestone_form(request_id: UUID, request: Request, principal: Member) -> Response:
    raw = await request.form()
    try:
        body = api.MilestoneIn(name=str(raw.get("name", "")), end_date=_blank(raw.get("end_date")),
                               amount=_blank(raw.get("amount")), claim_due_date=_blank(raw.get("claim_due_date")))
        await api.add_milestone(request, principal, request_id, body)
    except (ValidationError, CommandFailed) as exc:
        return await _fail(request, request_id, exc, "name")
    return RedirectResponse(f"/funding/{request_id}?notice=Milestone+added.#milestones", status_code=303)


@router.post("/funding/{request_id}/milestones/{milestone_id}/claim")
async def claim_form(request_id: UUID, milestone_id: UUID, request: Request, principal: Member) -> Response:
    raw = await request.form()
    try:
        body = api.ClaimIn(claim_status=str(raw.get("claim_status", "")), received=_blank(raw.get("received")),
                           claim_reference=_blank(raw.get("claim_reference")))
        await api.claim(request, principal, request_id, milestone_id, body)
    except (ValidationError, CommandFailed) as exc:
        return await _fail(request, request_id, exc, "claim_status")
    return RedirectResponse(f"/funding/{request_id}?notice=Claim+updated.#milestones", status_code=303)


