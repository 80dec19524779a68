"""Partner enablement: training modules (duration, assessment pass mark, how long a pass is valid,
whether every partner needs it), each partner person's certifications, and each partner's enablement
score (the relationships service owns them all; contracts/enablement.py)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from contracts import enablement as ec
from contracts.fields import Day, Name, Offset, text
from gateway import audit
from gateway.auth import Principal, Role, require
from gateway.state import bus
from runtime.commands import send

router = APIRouter(prefix="/api", tags=["enablement"])

Reader = Annotated[Principal, Depends(require(Role.viewer, scope="relationships:read"))]
Writer = Annotated[Principal, Depends(require(Role.member, scope="relationships:write"))]
Manager = Annotated[Principal, Depends(require(Role.manager, scope="relationships:write"))]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ModuleIn(_In):
    name: Name
    description: text(2000) | None = None
    duration_minutes: ec.Minutes
    pass_mark: ec.Percent = Field(default=70, description="The assessment's pass mark, percent.")
    valid_months: ec.ValidMonths | None = 12
    required: bool = Field(default=False, description="Counts toward every partner's enablement score.")


class ModulePatch(_In):
    """Only the fields sent change; `valid_months: null` makes passes from then on never lapse."""

    expected_version: int | None = Field(default=None, ge=1, le=2_147_483_647)
    name: Name | None = None
    description: text(2000) | None = None
    duration_minutes: ec.Minutes | None = None
    pass_mark: ec.Percent | None = None
    valid_months: ec.ValidMonths | None = None
    required: bool | None = None
    archived: bool | None = None


class CertificationIn(_In):
    """A date to pass by, or an attempt (the day and the score, percent), or both."""

    due_on: Day | None = None
    taken_on: Day | None = None
    score: ec.Percent | None = None


@router.get("/enablement/modules", response_model=ec.ModuleList)
async def list_modules(request: Request, principal: Reader, include_archived: bool = False) -> ec.ModuleList:
    return await send(bus(request), ec.ListModules(include_archived=include_archived, actor=principal.name))


@router.post("/enablement/modules", status_code=201, response_model=ec.Module)
async def create_module(body: ModuleIn, request: Request, principal: Manager) -> ec.Module:
    made: ec.Module = await send(bus(request), ec.CreateModule(**body.model_dump(), actor=principal.name))
    await audit.record_change(request, principal.name, "enablement.module_created", entity="enablement_module",
                              entity_id=made.id, after=made)
    return made


@router.patch("/enablement/modules/{module_id}", response_model=ec.Module)
async def update_module(module_id: UUID, body: ModulePatch, request: Request, principal: Manager) -> ec.Module:
    changed: ec.Module = await send(bus(request), ec.UpdateModule(
        module_id=module_id, actor=principal.name, **body.model_dump(exclude_unset=True)))
    await audit.record_change(request, principal.name, "enablement.module_changed", entity="enablement_module",
                              entity_id=module_id, after=body.model_dump(mode="json", exclude_unset=True))
    return changed


async def record(request: Request, principal: Principal, contact_id: UUID, module_id: UUID,
                 body: CertificationIn) -> ec.Certification:
    made: ec.Certification = await send(bus(request), ec.RecordCertification(
        contact_id=contact_id, module_id=module_id, actor=principal.name, **body.model_dump(exclude_unset=True)))
    await audit.record_change(request, principal.name, "enablement.certification_recorded", entity="certification",
                              entity_id=made.id, after=body.model_dump(mode="json", exclude_unset=True))
    return made


@router.put("/contacts/{contact_id}/certifications/{module_id}", response_model=ec.Certification)
async def record_certification(contact_id: UUID, module_id: UUID, body: CertificationIn, request: Request,
                               principal: Writer) -> ec.Certification:
    """Record a partner person's certification on a module: a date to pass by, an attempt, or both.
    Passed when the score reaches the module's pass mark; valid for the module's months from then."""
    return await record(request, principal, contact_id, module_id, body)


@router.get("/enablement/certifications", response_model=ec.CertificationList)
async def list_certifications(
    request: Request,
    principal: Reader,
    partner_id: UUID | None = None,
    contact_id: UUID | None = None,
    status: ec.CertificationStatus | None = None,
    expiring_within_days: Annotated[int | None, Query(ge=0, le=3650)] = None,
    offset: Annotated[Offset, Query()] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ec.CertificationList:
    """Certifications, those needing attention first (failed, expired, due, then soonest to lapse)."""
    return await send(bus(request), ec.ListCertifications(
        partner_id=partner_id, contact_id=contact_id, status=status, expiring_within_days=expiring_within_days,
        offset=offset, limit=limit, actor=principal.name))


@router.get("/enablement/scores", response_model=ec.EnablementScores)
async def scores(request: Request, principal: Reader) -> ec.EnablementScores:
    """Every partner's enablement score (share of required modules with a valid certification)."""
    return await send(bus(request), ec.ListEnablementScores(actor=principal.name))


@router.get("/partners/{partner_id}/enablement", response_model=ec.PartnerEnablement)
async def partner_enablement(partner_id: UUID, request: Request, principal: Reader) -> ec.PartnerEnablement:
    return await send(bus(request), ec.GetPartnerEnablement(partner_id=partner_id, actor=principal.name))
