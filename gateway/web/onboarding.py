"""Onboarding pages: every plan with its progress and late steps, time to the first opportunity per
partner type, the template (managers edit it as one line per step), and one partner's plan where
members tick steps off or hand them to someone else. Writes go through the REST API's functions."""

from __future__ import annotations

import asyncio
import re
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from contracts import onboarding as oc
from gateway.routes import onboarding as api
from gateway.state import bus
from gateway.web.common import Manager, Member, Viewer, field_errors, not_found, render
from gateway.web.pipeline import team_handles
from runtime.commands import send
from runtime.errors import CommandFailed

router = APIRouter(include_in_schema=False)
StepKeyPath = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
# One template step per line: "<week> <key> <title>", e.g. "2 product_training Product training".
_LINE = re.compile(r"^\s*(\d{1,2})\s+([a-z][a-z0-9_]{0,39})\s+(.+?)\s*$")


def template_text(template: oc.OnboardingTemplate) -> str:
    return "\n".join(f"{s.week} {s.key} {s.title}" for s in template.steps)


def parse_template(text: str) -> list[dict[str, object]]:
    """Lines to steps; a line that does not read "<week> <key> <title>" is a ValueError naming it."""
    steps = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        found = _LINE.match(raw)
        if found is None:
            raise ValueError(f"line {number} should read '<week> <key> <title>', like '2 product_training "
                             "Product training'")
        steps.append({"week": int(found[1]), "key": found[2], "title": found[3]})
    return steps


async def _overview(request: Request, *, template_form: str | None = None, errors: dict[str, str] | None = None,
                    status_code: int = 200, open_only: bool = True) -> Response:
    actor = request.state.principal.name
    plans, stats, template = await asyncio.gather(
        send(bus(request), oc.ListOnboardingPlans(open_only=open_only, limit=200, actor=actor)),
        send(bus(request), oc.GetFirstOpportunityStats(actor=actor)),
        send(bus(request), oc.GetOnboardingTemplate(actor=actor)))
    return render(request, "onboarding.html", {
        "plans": plans, "stats": stats, "template": template, "open_only": open_only,
        "template_form": template_form if template_form is not None else template_text(template),
        "errors": errors or {}, "notice": request.query_params.get("notice"),
    }, status_code=status_code)


@router.get("/onboarding", response_class=HTMLResponse)
async def overview(request: Request, _: Viewer, all: Annotated[bool, Query()] = False) -> Response:
    return await _overview(request, open_only=not all)


@router.post("/onboarding/template")
async def template_form(request: Request, principal: Manager,
                        steps: Annotated[str, Form(max_length=20_000)] = "",
                        expected_version: Annotated[str, Form(max_length=12)] = "") -> Response:
    try:
        body = api.TemplateIn(steps=parse_template(steps),  # type: ignore[arg-type]
                              expected_version=int(expected_version) if expected_version.isdigit() else None)
        await api.set_template(body, request, principal)
    except (ValueError, CommandFailed) as exc:
        if isinstance(exc, CommandFailed) and exc.error.kind not in ("invalid", "conflict"):
            raise
        message = (next(iter(field_errors(exc).values())) if isinstance(exc, ValidationError | CommandFailed)
                   else str(exc))
        return await _overview(request, template_form=steps, errors={"steps": message}, status_code=422)
    return RedirectResponse("/onboarding?notice=Template+saved.+Partners+added+from+now+on+follow+it.",
                            status_code=303)


async def _plan_page(request: Request, partner_id: UUID, *, errors: dict[str, str] | None = None,
                     status_code: int = 200) -> Response:
    try:
        plan, team = await asyncio.gather(
            send(bus(request), oc.GetOnboardingPlan(partner_id=partner_id, actor=request.state.principal.name)),
            team_handles(request))
    except CommandFailed as exc:
        if exc.error.kind == "not_found":
            return not_found(request, "onboarding plan")
        raise
    return render(request, "onboarding_plan.html", {"plan": plan, "team": team, "errors": errors or {},
                                                    "notice": request.query_params.get("notice")},
                  status_code=status_code)


@router.get("/onboarding/{partner_id}", response_class=HTMLResponse)
async def plan_page(partner_id: UUID, request: Request, _: Viewer) -> Response:
    return await _plan_page(request, partner_id)


@router.post("/onboarding/{partner_id}/steps/{key}")
async def step_form(partner_id: UUID, key: StepKeyPath, request: Request, principal: Member,
                    done: Annotated[str, Form(max_length=10)] = "",
                    owner: Annotated[str, Form(max_length=1000)] = "",
                    due_date: Annotated[str, Form(max_length=40)] = "") -> Response:
    fields: dict[str, object] = {}
    if done in ("true", "false"):
        fields["done"] = done == "true"
    if owner.strip():
        fields["owner"] = owner.strip()
    if due_date.strip():
        fields["due_date"] = due_date.strip()
    try:
        await api.change_step(request, principal, partner_id, key, api.StepPatch(**fields))  # type: ignore[arg-type]
    except (ValidationError, CommandFailed) as exc:
        if isinstance(exc, CommandFailed) and exc.error.kind not in ("invalid", "conflict", "not_found"):
            raise
        return await _plan_page(request, partner_id, errors={key: next(iter(field_errors(exc).values()))},
                                status_code=422)
    return RedirectResponse(f"/onboarding/{partner_id}?notice=Saved.", status_code=303)
