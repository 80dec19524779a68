"""Deal registrations from the team's side: the queue with what the conflict check found, and the
decision, which only the partner's owner (or a manager) may take."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from contracts import pipeline as pc
from contracts import registrations as rc
from contracts.fields import Offset, Person, Version, text
from gateway import audit, people
from gateway.auth import Principal, Role, require
from gateway.state import bus
from runtime.commands import send

router = APIRouter(prefix="/api", tags=["registrations"])

Reader = Annotated[Principal, Depends(require(Role.viewer, scope="opportunities:read"))]
# A person's decision: tokens cannot approve deals in someone's name.
Decider = Annotated[Principal, Depends(require(Role.member))]


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    approve: bool
    reason: text(2000) | None = Field(default=None, description="Shown to the partner.")
    acknowledge_conflicts: bool = Field(default=False, description="Approve although the check found other deals "
                                        "or registrations for the customer (you looked at them).")
    owner: Person | None = Field(default=None, description="Who owns the new deal (email or user id); the "
                                 "partner's owner when left out.")
    expected_version: Version | None = None


@router.get("/registrations", response_model=rc.RegistrationList)
async def list_registrations(
    request: Request,
    principal: Reader,
    partner_id: UUID | None = None,
    status: rc.RegistrationStatus | None = None,
    offset: Annotated[Offset, Query()] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> rc.RegistrationList:
    """Registrations, newest first, with the conflicts the check found."""
    return await send(bus(request), rc.ListRegistrations(partner_id=partner_id, status=status, offset=offset,
                                                         limit=limit, actor=principal.name))


@router.get("/registrations/{registration_id}", response_model=rc.Registration)
async def get_registration(registration_id: UUID, request: Request, principal: Reader) -> rc.Registration:
    return await send(bus(request), rc.GetRegistration(registration_id=registration_id, actor=principal.name))


async def decide(request: Request, principal: Principal, registration_id: UUID, body: Decision) -> rc.Registration:
    found: rc.Registration = await send(bus(request), rc.GetRegistration(registration_id=registration_id,
                                                                         actor=principal.name))
    partner: pc.Partner = await send(bus(request), pc.GetPartner(partner_id=found.partner_id, actor=principal.name))
    if partner.owner != principal.id and principal.role.rank < Role.manager.rank:
        raise HTTPException(403, detail="only the partner's owner or a manager decides its registrations")
    owner = await people.deal_owner_id(request, body.owner) if body.owner else partner.owner
    decided: rc.Registration = await send(bus(request), rc.DecideRegistration(
        registration_id=registration_id, approve=body.approve, reason=body.reason,
        acknowledge_conflicts=body.acknowledge_conflicts, owner=owner, expected_version=body.expected_version,
        actor=principal.name))
    await audit.record_change(request, principal.name, "registration." + decided.status.value,
                              entity="deal_registration", entity_id=registration_id, before=found, after=decided)
    return decided


@router.post("/registrations/{registration_id}/decision", response_model=rc.Registration)
async def decide_registration(registration_id: UUID, body: Decision, request: Request,
                              principal: Decider) -> rc.Registration:
    """Approve (an opportunity of the partner is created) or reject; 409 when the check found conflicts
    and `acknowledge_conflicts` is not set, or when someone decided first."""
    return await decide(request, principal, registration_id, body)
