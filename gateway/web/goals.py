"""Goals and competencies pages: progress bars per hyperscaler with the pace and at-risk signal, a goal's
page with the deals that count toward it, and competencies with their renewal checklists. Writes go
through the REST API's own functions (validated and audited the same way)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from contracts import competencies as kc
from contracts import goals as gc
from contracts import pipeline as pc
from contracts.quarters import Quarter
from gateway.routes import goals as api
from gateway.state import bus
from gateway.web.common import Member, Viewer, field_errors, not_found, render
from gateway.web.pipeline import team_handles
from runtime.commands import send
from runtime.errors import CommandFailed

router = APIRouter(include_in_schema=False)
FORM_ERRORS = ("invalid", "conflict", "not_found")


def _blank(value: Any) -> str | None:
    text = str(value or "").strip()
    return text or None


def bar(goal: gc.Goal, today: Any) -> dict[str, float]:
    """Where the progress bar ends and where the pace marker stands, as fractions of the target."""
    share = float(goal.progress / goal.target) if goal.target else 0.0
    total = (goal.period_end - goal.period_start).days
    gone = min(max((today - goal.period_start).days + 1, 0), total)
    return {"share": min(share, 1.0), "expected": gone / total if total else 1.0}


def _periods(today: Any) -> list[str]:
    """Goals count calendar quarters and years: this quarter, this year, the next quarter, next year."""
    this = Quarter.calendar_of(today)
    return [this.label, str(today.year), this.shift(1).label, str(today.year + 1)]


async def _goals_page(request: Request, *, hyperscaler: str | None, errors: dict[str, str] | None = None,
                      form: dict[str, str] | None = None, status_code: int = 200) -> Response:
    actor = request.state.principal.name
    hs = pc.Hyperscaler(hyperscaler) if hyperscaler in set(pc.Hyperscaler) else None
    listing, competencies, team = await asyncio.gather(
        send(bus(request), gc.ListGoals(hyperscaler=hs, actor=actor)),
        send(bus(request), kc.ListCompetencies(hyperscaler=hs, actor=actor)), team_handles(request))
    groups: dict[str, list[gc.Goal]] = {}
    for goal in listing.items:
        groups.setdefault(goal.hyperscaler.value, []).append(goal)
    return render(request, "goals.html", {
        "groups": groups, "today": listing.today, "bars": {x.id: bar(x, listing.today) for x in listing.items},
        "competencies": competencies.items, "hyperscaler": hs, "hyperscalers": list(pc.Hyperscaler),
        "metrics": [(m.value, gc.METRIC_LABELS[m]) for m in gc.GoalMetric],
        "period_options": [(x, x) for x in _periods(listing.today)],
        "hyperscaler_options": [(h.value, h.value.upper()) for h in pc.Hyperscaler],
        "goal_errors": bool(errors) and not any(k.startswith("competency_") for k in errors or {}),
        "team": team, "errors": errors or {}, "form": form or {}, "notice": request.query_params.get("notice"),
        "kinds": [(k.value, k.value.replace("_", " ")) for k in kc.CompetencyKind],
    }, status_code=status_code)


@router.get("/goals", response_class=HTMLResponse)
async def goals_page(request: Request, _: Viewer,
                     hyperscaler: Annotated[str | None, Query(max_length=10)] = None) -> Response:
    return await _goals_page(request, hyperscaler=hyperscaler)


@router.post("/goals")
async def create_goal_form(request: Request, principal: Member) -> Response:
    raw = await request.form()
    form = {n: str(raw.get(n, "")).strip() for n in ("hyperscaler", "period", "metric", "name", "target", "currency",
                                                     "manual_progress", "owner")}
    try:
        body = api.GoalIn(**{k: _blank(v) for k, v in form.items()})
        goal = await api.create_goal(request, principal, body)
    except (ValidationError, CommandFailed) as exc:
        if isinstance(exc, CommandFailed) and exc.error.kind not in FORM_ERRORS:
            raise
        return await _goals_page(request, hyperscaler=None, errors=field_errors(exc, "target"), form=form,
                                 status_code=422)
    return RedirectResponse(f"/goals/{goal.id}?notice=Goal+set.", status_code=303)


async def _goal_page(request: Request, goal_id: UUID, *, errors: dict[str, str] | None = None,
                     status_code: int = 200) -> Response:
    try:
        goal: gc.GoalDetail = await send(bus(request), gc.GetGoal(goal_id=goal_id,
                                                                  actor=request.state.principal.name))
    except CommandFailed as exc:
        if exc.error.kind == "not_found":
            return not_found(request, "goal")
        raise
    today = datetime.now(UTC).date()
    return render(request, "goal.html", {"goal": goal, "bar": bar(goal, today), "errors": errors or {},
                                         "notice": request.query_params.get("notice")}, status_code=status_code)


@router.get("/goals/{goal_id}", response_class=HTMLResponse)
async def goal_page(goal_id: UUID, request: Request, _: Viewer) -> Response:
    return await _goal_page(request, goal_id)


@router.post("/goals/{goal_id}")
async def update_goal_form(goal_id: UUID, request: Request, principal: Member) -> Response:
    raw = await request.form()
    changes: dict[str, Any] = {k: _blank(raw.get(k)) for k in ("target", "manual_progress", "name",
                                                                "expected_version") if k in raw}
    if "archived" in raw:
        changes["archived"] = raw.get("archived") == "on"
    try:
        await api.update_goal(request, principal, goal_id, api.GoalPatch(**changes))
    except (ValidationError, CommandFailed) as exc:
        if isinstance(exc, CommandFailed) and exc.error.kind not in FORM_ERRORS:
            raise
        return await _goal_page(request, goal_id, errors=field_errors(exc, "target"), status_code=422)
    return RedirectResponse(f"/goals/{goal_id}?notice=Saved.", status_code=303)


# ----------------------------------------------------------------------------------- competencies


@router.post("/competencies")
async def create_competency_form(request: Request, principal: Member) -> Response:
    raw = await request.form()
    form = {n: str(raw.get(n, "")).strip() for n in ("hyperscaler", "name", "kind", "achieved_on", "renewal_date",
                                                     "owner")}
    try:
        body = api.CompetencyIn(**{k: _blank(v) for k, v in form.items() if _blank(v) is not None})
        c = await api.create_competency(request, principal, body)
    except (ValidationError, CommandFailed) as exc:
        if isinstance(exc, CommandFailed) and exc.error.kind not in FORM_ERRORS:
            raise
        errors = {f"competency_{k}": v for k, v in field_errors(exc, "name").items()}
        return await _goals_page(request, hyperscaler=None, errors=errors,
                                 form={f"competency_{k}": v for k, v in form.items()}, status_code=422)
    return RedirectResponse(f"/competencies/{c.id}?notice=Competency+added.", status_code=303)


async def _competency_page(request: Request, competency_id: UUID, *, errors: dict[str, str] | None = None,
                           status_code: int = 200) -> Response:
    try:
        c: kc.Competency = await send(bus(request), kc.GetCompetency(competency_id=competency_id,
                                                                     actor=request.state.principal.name))
    except CommandFailed as exc:
        if exc.error.kind == "not_found":
            return not_found(request, "competency")
        raise
    return render(request, "competency.html", {
        "c": c, "team": await team_handles(request), "errors": errors or {},
        "requirement_kinds": [(k.value, k.value.replace("_", " ")) for k in kc.RequirementKind],
        "notice": request.query_params.get("notice"),
    }, status_code=status_code)


@router.get("/competencies/{competency_id}", response_class=HTMLResponse)
async def competency_page(competency_id: UUID, request: Request, _: Viewer) -> Response:
    return await _competency_page(request, competency_id)


async def _competency_write(request: Request, competency_id: UUID, action: Any, notice: str) -> Response:
    try:
        await action
    except (ValidationError, CommandFailed) as exc:
        if isinstance(exc, CommandFailed) and exc.error.kind not in FORM_ERRORS:
            raise
        return await _competency_page(request, competency_id, errors=field_errors(exc, "form"), status_code=422)
    return RedirectResponse(f"/competencies/{competency_id}?notice={notice}", status_code=303)


@router.post("/competencies/{competency_id}")
async def update_competency_form(competency_id: UUID, request: Request, principal: Member) -> Response:
    raw = await request.form()
    changes = {k: _blank(raw.get(k)) for k in ("renewal_date", "achieved_on", "owner", "expected_version") if k in raw}
    try:
        body = api.CompetencyPatch(**changes)
    except ValidationError as exc:
        return await _competency_page(request, competency_id, errors=field_errors(exc, "form"), status_code=422)
    return await _competency_write(request, competency_id,
                                   api.update_competency(request, principal, competency_id, body), "Saved.")


@router.post("/competencies/{competency_id}/requirements")
async def add_requirement_form(competency_id: UUID, request: Request, principal: Member) -> Response:
    raw = await request.form()
    fields = {k: _blank(raw.get(k)) for k in ("kind", "title", "required", "done", "owner", "due_date")}
    try:
        body = api.RequirementIn(**{k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        return await _competency_page(request, competency_id, errors=field_errors(exc, "title"), status_code=422)
    return await _competency_write(request, competency_id,
                                   api.add_requirement(request, principal, competency_id, body), "Item+added.")


@router.post("/competencies/{competency_id}/requirements/{requirement_id}")
async def update_requirement_form(competency_id: UUID, requirement_id: UUID, request: Request,
                                  principal: Member) -> Response:
    raw = await request.form()
    fields: dict[str, Any] = {k: _blank(raw.get(k)) for k in ("done", "due_date", "owner") if k in raw}
    if raw.get("removed") == "on":
        fields = {"removed": True}
    try:
        body = api.RequirementPatch(**fields)
    except ValidationError as exc:
        return await _competency_page(request, competency_id, errors=field_errors(exc, "done"), status_code=422)
    return await _competency_write(request, competency_id, api.update_requirement(
        request, principal, competency_id, requirement_id, body), "Checklist+updated.")

