"""Funding: programs (admins configure them), fund requests on AWS's stages with their moves, milestones
and claims, and the roll-ups. Every change to a request or a program is money and is audited."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from contracts import funding as fc
from contracts import money
from contracts import pipeline as pc
from contracts.base import CommandError, ErrorKind
from contracts.fields import Day, Name, Offset, Person, line, text
from gateway import audit, people
from gateway.auth import Principal, Role, require
from gateway.known_partner import known_partner
from gateway.state import bus
from runtime.commands import send
from runtime.errors import CommandFailed

router = APIRouter(prefix="/api/funding", tags=["funding"])

Reader = Annotated[Principal, Depends(require(Role.viewer, scope="funding:read"))]
Writer = Annotated[Principal, Depends(require(Role.member, scope="funding:write"))]
Configurer = Annotated[Principal, Depends(require(Role.admin, scope="funding:configure"))]
ProgramKey = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,39}$")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class FundRequestIn(_In):
    program: pc.Key = Field(description="A program's key: map, poa, mdf, poc, box, gcp_pdf, gcp_daf, or one added.")
    title: Name
    phase: line(60) | None = Field(default=None, description="One of the program's phases (MAP: assess, mobilize, "
                                   "migrate).")
    partner_id: UUID | None = Field(default=None, description="The ISV partner the activity is for.")
    owner: Person | None = None
    aws_fund_request_id: fc.ExternalRef | None = None
    requested: money.Amount
    activity_start: Day
    activity_end: Day
    opportunities: fc.Links = Field(default_factory=list)
    description: text(4000) | None = None


class FundRequestPatch(_In):
    """Only the fields sent change; null clears an optional one."""

    expected_version: int | None = Field(default=None, ge=0, le=2**31 - 1)
    title: Name | None = None
    phase: line(60) | None = None
    partner_id: UUID | None = None
    owner: Person | None = None
    aws_fund_request_id: fc.ExternalRef | None = None
    requested: money.Amount | None = None
    activity_start: Day | None = None
    activity_end: Day | None = None
    opportunities: fc.Links | None = None
    description: text(4000) | None = None


class MoveIn(_In):
    to_stage: fc.FundStage
    expected_version: int | None = Field(default=None, ge=0, le=2**31 - 1)
    approved: money.Amount | None = Field(default=None, description="Entering pre_approved: the approved amount "
                                       "(the requested amount when not given).")
    note: text(1000) | None = None


class MilestoneIn(_In):
    name: Name
    end_date: Day
    amount: money.Amount
    claim_due_date: Day | None = None


class ClaimIn(_In):
    claim_status: fc.ClaimStatus
    received: money.Amount | None = None
    claim_reference: line(100) | None = None


# -------------------------------------------------------------------------------------- programs


@router.get("/programs", response_model=fc.ProgramList)
async def list_programs(request: Request, principal: Reader) -> fc.ProgramList:
    return await send(bus(request), fc.ListPrograms(actor=principal.name))


@router.put("/programs/{key}", response_model=fc.Program)
async def define_program(key: ProgramKey, body: fc.Program, request: Request, principal: Configurer) -> fc.Program:
    if body.key != key:
        raise CommandFailed(CommandError(kind=ErrorKind.invalid, field="key", message="the key in the body must be "
                                         "the key in the path"))
    before = {p.key: p for p in (await send(bus(request), fc.ListPrograms(actor=principal.name))).items}.get(key)
    program: fc.Program = await send(bus(request), fc.DefineProgram(program=body, actor=principal.name))
    await audit.record_change(request, principal.name, "funding_program.defined", entity="funding_program",
                              entity_id=key, before=before, after=program)
    return program


# --------------------------------------------------------------------------------- fund requests


@router.get("/requests", response_model=fc.FundRequestList)
async def list_requests(
    request: Request, principal: Reader,
    stage: fc.FundStage | None = None,
    program: Annotated[str | None, Query(pattern=r"^[a-z][a-z0-9_]{0,39}$")] = None,
    partner_id: UUID | None = None,
    owner: Annotated[Person | None, Query()] = None,
    q: Annotated[line(200) | None, Query()] = None,
    due_within_days: Annotated[int | None, Query(ge=0, le=3650)] = None,
    include_closed: bool = True,
    sort: fc.FundRequestSort = fc.FundRequestSort.created_desc,
    offset: Annotated[Offset, Query()] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> fc.FundRequestList:
    return await send(bus(request), fc.ListFundRequests(
        stage=stage, program=program, partner_id=partner_id, owner=await people.owner_filter(request, owner), q=q,
        due_within_days=due_within_days, include_closed=include_closed, sort=sort, offset=offset, limit=limit,
        actor=principal.name))


async def create(request: Request, principal: Principal, body: FundRequestIn) -> fc.FundRequest:
    await known_partner(request, body.partner_id, principal.name)
    fields = body.model_dump() | {"owner": await people.owner_id(request, body.owner)}
    created: fc.FundRequest = await send(bus(request), fc.CreateFundRequest(**fields, actor=principal.name))
    await audit.record_change(request, principal.name, "fund_request.created", entity="fund_request",
                              entity_id=created.id, after=body)
    return created


@router.post("/requests", status_code=201, response_model=fc.FundRequest)
async def create_request(body: FundRequestIn, request: Request, principal: Writer) -> fc.FundRequest:
    return await create(request, principal, body)


@router.get("/requests/{request_id}", response_model=fc.FundRequest)
async def get_request(request_id: UUID, request: Request, principal: Reader) -> fc.FundRequest:
    return await send(bus(request), fc.GetFundRequest(request_id=request_id, actor=principal.name))


async def update(request: Request, principal: Principal, request_id: UUID, body: FundRequestPatch) -> fc.FundRequest:
    changes: dict[str, Any] = body.model_dump(exclude_unset=True)
    if changes.get("partner_id"):
        await known_partner(request, changes["partner_id"], principal.name)
    if changes.get("owner"):
        changes["owner"] = await people.owner_id(request, changes["owner"])
    before = await send(bus(request), fc.GetFundRequest(request_id=request_id, actor=principal.name))
    after: fc.FundRequest = await send(bus(request), fc.UpdateFundRequest(request_id=request_id, **changes,
                                                                         actor=principal.name))
    if after.version != before.version:
        await audit.record_change(request, principal.name, "fund_request.updated", entity="fund_request",
                                  entity_id=request_id, before=_audited(before), after=_audited(after))
    return after


@router.patch("/requests/{request_id}", response_model=fc.FundRequest)
async def update_request(request_id: UUID, body: FundRequestPatch, request: Request,
                         principal: Writer) -> fc.FundRequest:
    return await update(request, principal, request_id, body)


def _audited(r: fc.FundRequest) -> dict[str, Any]:
    """What the audit keeps of a request: its fields and amounts, not its history or deadlines."""
    return r.model_dump(mode="json", exclude={"history", "deadlines", "next_stages", "milestones"}) | {
        "milestones": [m.model_dump(mode="json", include={"id", "name", "amount", "claim_status", "received"})
                       for m in r.milestones]}


async def move(request: Request, principal: Principal, request_id: UUID, body: MoveIn) -> fc.FundRequest:
    before = await send(bus(request), fc.GetFundRequest(request_id=request_id, actor=principal.name))
    after: fc.FundRequest = await send(bus(request), fc.MoveFundRequest(request_id=request_id, **body.model_dump(),
                                                                       actor=principal.name))
    await audit.record_change(request, principal.name, "fund_request.moved", entity="fund_request",
                              entity_id=request_id, before=_audited(before), after=_audited(after))
    return after


@router.post("/requests/{request_id}/moves", response_model=fc.FundRequest)
async def move_request(request_id: UUID, body: MoveIn, request: Request, principal: Writer) -> fc.FundRequest:
    """Move to another stage; an illegal move is a 422 naming the transition."""
    return await move(request, principal, request_id, body)


async def add_milestone(request: Request, principal: Principal, request_id: UUID, body: MilestoneIn) -> fc.FundRequest:
    after: fc.FundRequest = await send(bus(request), fc.AddMilestone(request_id=request_id, **body.model_dump(),
                                                                    actor=principal.name))
    await audit.record_change(request, principal.name, "fund_request.milestone_added", entity="fund_request",
                              entity_id=request_id, after=body)
    return after


@router.post("/requests/{request_id}/milestones", status_code=201, response_model=fc.FundRequest)
async def create_milestone(request_id: UUID, body: MilestoneIn, request: Request, principal: Writer) -> fc.FundRequest:
    return await add_milestone(request, principal, request_id, body)


async def claim(request: Request, principal: Principal, request_id: UUID, milestone_id: UUID,
                body: ClaimIn) -> fc.FundRequest:
    before = await send(bus(request), fc.GetFundRequest(request_id=request_id, actor=principal.name))
    after: fc.FundRequest = await send(bus(request), fc.UpdateMilestoneClaim(
        request_id=request_id, milestone_id=milestone_id, **body.model_dump(), actor=principal.name))
    await audit.record_change(request, principal.name, "fund_request.claim_changed", entity="fund_request",
                              entity_id=request_id, before=_audited(before), after=_audited(after))
    return after


@router.post("/requests/{request_id}/milestones/{milestone_id}/claim", response_model=fc.FundRequest)
async def update_claim(request_id: UUID, milestone_id: UUID, body: ClaimIn, request: Request,
                       principal: Writer) -> fc.FundRequest:
    """Move a milestone's claim (planned → submitted → approved → paid, or rejected)."""
    return await claim(request, principal, request_id, milestone_id, body)


@router.get("/rollup", response_model=fc.FundingRollup)
async def rollup(request: Request, principal: Reader,
                 year: Annotated[int | None, Query(ge=1900, le=2200)] = None) -> fc.FundingRollup:
    return await send(bus(request), fc.GetFundingRollup(year=year, actor=principal.name))
