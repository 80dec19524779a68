"""Partner onboarding: the template (the playbook's four weeks until someone edits it), each partner's
plan, its steps done or reassigned, and the time from a partner's start to its first opportunity."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from contracts import onboarding as oc
from contracts.fields import Day, Offset, Person
from gateway import audit, people
from gateway.auth import Principal, Role, require
from gateway.state import bus
from runtime.commands import send

router = APIRouter(prefix="/api", tags=["onboarding"])

Reader = Annotated[Principal, Depends(require(Role.viewer, scope="partners:read"))]
Writer = Annotated[Principal, Depends(require(Role.member, scope="partners:write"))]
Manager = Annotated[Principal, Depends(require(Role.manager, scope="partners:write"))]
StepKeyPath = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,39}$")]


class TemplateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    steps: oc.Steps
    expected_version: int | None = Field(default=None, ge=0, le=2_147_483_647)


class StepPatch(BaseModel):
    """Only the fields sent change."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    done: bool | None = None
    owner: Person | None = Field(default=None, description="A team member's email or user id.")
    due_date: Day | None = None
    expected_version: int | None = Field(default=None, ge=1, le=2_147_483_647)


@router.get("/onboarding/template", response_model=oc.OnboardingTemplate)
async def get_template(request: Request, principal: Reader) -> oc.OnboardingTemplate:
    return await send(bus(request), oc.GetOnboardingTemplate(actor=principal.name))


@router.put("/onboarding/template", response_model=oc.OnboardingTemplate)
async def set_template(body: TemplateIn, request: Request, principal: Manager) -> oc.OnboardingTemplate:
    """Replace the template: partners added from now on get plans from it; existing plans keep theirs.
    A step's owner is a team member (email or user id) or none (the partner's owner)."""
    steps = []
    for i, step in enumerate(body.steps):
        steps.append(step.model_copy(update={"owner": await people.owner_id(request, step.owner,
                                                                            f"steps.{i}.owner")}))
    saved: oc.OnboardingTemplate = await send(bus(request), oc.SetOnboardingTemplate(
        steps=tuple(steps), expected_version=body.expected_version, actor=principal.name))
    await audit.record_change(request, principal.name, "onboarding.template_changed", entity="onboarding_template",
                              entity_id=1, after=saved)
    return saved


@router.get("/onboarding/plans", response_model=oc.OnboardingPlanList)
async def list_plans(
    request: Request,
    principal: Reader,
    open_only: bool = False,
    owner: Annotated[Person | None, Query(description="Plans with a step this member owns (email or id).")] = None,
    offset: Annotated[Offset, Query()] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> oc.OnboardingPlanList:
    """Onboarding plans, those with overdue steps first."""
    return await send(bus(request), oc.ListOnboardingPlans(
        open_only=open_only, owner=await people.owner_filter(request, owner), offset=offset, limit=limit,
        actor=principal.name))


@router.get("/onboarding/first-opportunity", response_model=oc.FirstOpportunityStats)
async def first_opportunity(request: Request, principal: Reader) -> oc.FirstOpportunityStats:
    """Days from a partner's start (its onboarding plan) to its first opportunity, per partner type."""
    return await send(bus(request), oc.GetFirstOpportunityStats(actor=principal.name))


@router.get("/partners/{partner_id}/onboarding", response_model=oc.OnboardingPlan)
async def get_plan(partner_id: UUID, request: Request, principal: Reader) -> oc.OnboardingPlan:
    return await send(bus(request), oc.GetOnboardingPlan(partner_id=partner_id, actor=principal.name))


async def change_step(request: Request, principal: Principal, partner_id: UUID, key: str,
                      body: StepPatch) -> oc.OnboardingPlan:
    changes = body.model_dump(exclude_unset=True)
    if "owner" in changes:
        changes["owner"] = await people.owner_id(request, body.owner)
    plan: oc.OnboardingPlan = await send(bus(request), oc.UpdateOnboardingStep(
        partner_id=partner_id, key=key, actor=principal.name, **changes))
    await audit.record_change(request, principal.name, "onboarding.step_changed", entity="onboarding_plan",
                              entity_id=plan.id, after={"key": key, **body.model_dump(mode="json", exclude_unset=True)})
    return plan


@router.patch("/partners/{partner_id}/onboarding/steps/{key}", response_model=oc.OnboardingPlan)
async def update_step(partner_id: UUID, key: StepKeyPath, body: StepPatch, request: Request,
                      principal: Writer) -> oc.OnboardingPlan:
    """Mark a step done or not, give it another owner or due date."""
    return await change_step(request, principal, partner_id, key, body)
