"""Hyperscaler goals (progress counted from pipeline events or entered by hand) and competencies with
their renewal checklists. Commitments and checklists are audited like money: they are what the
department promised a hyperscaler."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from contracts import competencies as kc
from contracts import goals as gc
from contracts import pipeline as pc
from contracts.deadlines import TimeZone
from contracts.fields import Currency, Day, Name, Person, text
from gateway import audit, people
from gateway.auth import Principal, Role, require
from gateway.state import bus
from runtime.commands import send

router = APIRouter(prefix="/api", tags=["goals"])

Reader = Annotated[Principal, Depends(require(Role.viewer, scope="funding:read"))]
Writer = Annotated[Principal, Depends(require(Role.member, scope="funding:write"))]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class GoalIn(_In):
    hyperscaler: pc.Hyperscaler
    period: gc.Period
    metric: gc.GoalMetric
    name: Name | None = None
    target: gc.Target
    currency: Currency | None = None
    manual_progress: gc.Progress | None = None
    owner: Person | None = None


class GoalPatch(_In):
    expected_version: int | None = Field(default=None, ge=0, le=2**31 - 1)
    name: Name | None = None
    target: gc.Target | None = None
    manual_progress: gc.Progress | None = None
    owner: Person | None = None
    archived: bool | None = None


class CompetencyIn(_In):
    hyperscaler: pc.Hyperscaler
    name: Name
    kind: kc.CompetencyKind = kc.CompetencyKind.competency
    achieved_on: Day | None = None
    renewal_date: Day | None = None
    time_zone: TimeZone = "UTC"
    owner: Person | None = None
    notes: text(4000) | None = None


class CompetencyPatch(_In):
    expected_version: int | None = Field(default=None, ge=0, le=2**31 - 1)
    name: Name | None = None
    kind: kc.CompetencyKind | None = None
    achieved_on: Day | None = None
    renewal_date: Day | None = None
    time_zone: TimeZone | None = None
    owner: Person | None = None
    notes: text(4000) | None = None


class RequirementIn(_In):
    kind: kc.RequirementKind
    title: Name
    required: int = Field(default=1, ge=1, le=10_000)
    done: int = Field(default=0, ge=0, le=10_000)
    owner: Person | None = None
    due_date: Day | None = None


class RequirementPatch(_In):
    title: Name | None = None
    required: int | None = Field(default=None, ge=1, le=10_000)
    done: int | None = Field(default=None, ge=0, le=10_000)
    owner: Person | None = None
    due_date: Day | None = None
    removed: bool | None = None


async def _owner(request: Request, fields: dict[str, Any]) -> dict[str, Any]:
    if fields.get("owner"):
        fields["owner"] = await people.owner_id(request, fields["owner"])
    return fields


# ------------------------------------------------------------------------------------------ goals


@router.get("/goals", response_model=gc.GoalList)
async def list_goals(request: Request, principal: Reader, hyperscaler: pc.Hyperscaler | None = None,
                     period: gc.Period | None = None, include_archived: bool = False) -> gc.GoalList:
    return await send(bus(request), gc.ListGoals(hyperscaler=hyperscaler, period=period,
                                                 include_archived=include_archived, actor=principal.name))


async def create_goal(request: Request, principal: Principal, body: GoalIn) -> gc.Goal:
    goal: gc.Goal = await send(bus(request), gc.CreateGoal(**await _owner(request, body.model_dump()),
                                                           actor=principal.name))
    await audit.record_change(request, principal.name, "goal.created", entity="goal", entity_id=goal.id, after=body)
    return goal


@router.post("/goals", status_code=201, response_model=gc.Goal)
async def post_goal(body: GoalIn, request: Request, principal: Writer) -> gc.Goal:
    return await create_goal(request, principal, body)


@router.get("/goals/{goal_id}", response_model=gc.GoalDetail)
async def get_goal(goal_id: UUID, request: Request, principal: Reader) -> gc.GoalDetail:
    """A goal with the deals (and the events) that count toward it."""
    return await send(bus(request), gc.GetGoal(goal_id=goal_id, actor=principal.name))


async def update_goal(request: Request, principal: Principal, goal_id: UUID, body: GoalPatch) -> gc.Goal:
    changes = await _owner(request, body.model_dump(exclude_unset=True))
    before = await send(bus(request), gc.GetGoal(goal_id=goal_id, actor=principal.name))
    goal: gc.Goal = await send(bus(request), gc.UpdateGoal(goal_id=goal_id, **changes, actor=principal.name))
    if goal.version != before.version:
        keep = {"name", "target", "currency", "owner", "archived", "progress"}
        await audit.record_change(request, principal.name, "goal.updated", entity="goal", entity_id=goal_id,
                                  before=before.model_dump(mode="json", include=keep),
                                  after=goal.model_dump(mode="json", include=keep))
    return goal


@router.patch("/goals/{goal_id}", response_model=gc.Goal)
async def patch_goal(goal_id: UUID, body: GoalPatch, request: Request, principal: Writer) -> gc.Goal:
    return await update_goal(request, principal, goal_id, body)


# ----------------------------------------------------------------------------------- competencies


@router.get("/competencies", response_model=kc.CompetencyList)
async def list_competencies(request: Request, principal: Reader,
                            hyperscaler: pc.Hyperscaler | None = None) -> kc.CompetencyList:
    return await send(bus(request), kc.ListCompetencies(hyperscaler=hyperscaler, actor=principal.name))


async def create_competency(request: Request, principal: Principal, body: CompetencyIn) -> kc.Competency:
    c: kc.Competency = await send(bus(request), kc.CreateCompetency(**await _owner(request, body.model_dump()),
                                                                    actor=principal.name))
    await audit.record_change(request, principal.name, "competency.created", entity="competency", entity_id=c.id,
                              after=body)
    return c


@router.post("/competencies", status_code=201, response_model=kc.Competency)
async def post_competency(body: CompetencyIn, request: Request, principal: Writer) -> kc.Competency:
    return await create_competency(request, principal, body)


@router.get("/competencies/{competency_id}", response_model=kc.Competency)
async def get_competency(competency_id: UUID, request: Request, principal: Reader) -> kc.Competency:
    return await send(bus(request), kc.GetCompetency(competency_id=competency_id, actor=principal.name))


async def update_competency(request: Request, principal: Principal, competency_id: UUID,
                            body: CompetencyPatch) -> kc.Competency:
    changes = await _owner(request, body.model_dump(exclude_unset=True))
    c: kc.Competency = await send(bus(request), kc.UpdateCompetency(competency_id=competency_id, **changes,
                                                                    actor=principal.name))
    await audit.record_change(request, principal.name, "competency.updated", entity="competency",
                              entity_id=competency_id, after=body)
    return c


@router.patch("/competencies/{competency_id}", response_model=kc.Competency)
async def patch_competency(competency_id: UUID, body: CompetencyPatch, request: Request,
                           principal: Writer) -> kc.Competency:
    return await update_competency(request, principal, competency_id, body)


async def add_requirement(request: Request, principal: Principal, competency_id: UUID,
                          body: RequirementIn) -> kc.Competency:
    c: kc.Competency = await send(bus(request), kc.AddRequirement(
        competency_id=competency_id, **await _owner(request, body.model_dump()), actor=principal.name))
    await audit.record_change(request, principal.name, "competency.requirement_added", entity="competency",
                              entity_id=competency_id, after=body)
    return c


@router.post("/competencies/{competency_id}/requirements", status_code=201, response_model=kc.Competency)
async def post_requirement(competency_id: UUID, body: RequirementIn, request: Request,
                           principal: Writer) -> kc.Competency:
    return await add_requirement(request, principal, competency_id, body)


async def update_requirement(request: Request, principal: Principal, competency_id: UUID, requirement_id: UUID,
                             body: RequirementPatch) -> kc.Competency:
    changes = await _owner(request, body.model_dump(exclude_unset=True))
    c: kc.Competency = await send(bus(request), kc.UpdateRequirement(
        competency_id=competency_id, requirement_id=requirement_id, **changes, actor=principal.name))
    await audit.record_change(request, principal.name, "competency.requirement_changed", entity="competency",
                              entity_id=competency_id, after={"requirement_id": str(requirement_id), **changes})
    return c


@router.patch("/competencies/{competency_id}/requirements/{requirement_id}", response_model=kc.Competency)
async def patch_requirement(competency_id: UUID, requirement_id: UUID, body: RequirementPatch, request: Request,
                            principal: Writer) -> kc.Competency:
    return await update_requirement(request, principal, competency_id, requirement_id, body)
