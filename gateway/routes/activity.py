"""Partner activity and quality per month: leads, opportunities, demos, proposals and meetings counted
by the relationships service from the pipeline's events and the logged interactions, and the quality
figures entered per month (lead quality, customer satisfaction, implementation success)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict

from contracts import activity as ac
from gateway import audit
from gateway.auth import Principal, Role, require
from gateway.state import bus
from runtime.commands import send

router = APIRouter(prefix="/api", tags=["activity"])

Reader = Annotated[Principal, Depends(require(Role.viewer, scope="relationships:read"))]
Writer = Annotated[Principal, Depends(require(Role.member, scope="relationships:write"))]
MonthPath = Annotated[str, Path(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", examples=["2026-11"])]


class QualityIn(BaseModel):
    """Only the fields sent change; null clears one."""

    model_config = ConfigDict(extra="forbid")

    lead_quality: ac.LeadQuality | None = None
    customer_satisfaction: ac.Percent | None = None
    implementation_success: ac.Percent | None = None


def this_month() -> str:
    return datetime.now(UTC).strftime("%Y-%m")


async def activity_of(request: Request, principal: Principal, partner_id: UUID, until: str | None = None,
                      months: int = 12) -> ac.PartnerActivity:
    return await send(bus(request), ac.GetPartnerActivity(partner_id=partner_id, until=until or this_month(),
                                                          months=months, actor=principal.name))


@router.get("/partners/{partner_id}/activity", response_model=ac.PartnerActivity)
async def get_activity(partner_id: UUID, request: Request, principal: Reader,
                       until: Annotated[str | None, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")] = None,
                       months: Annotated[int, Query(ge=1, le=ac.MAX_MONTHS)] = 12) -> ac.PartnerActivity:
    """Each month's activity and quality, oldest first, ending with `until` (this month by default)."""
    return await activity_of(request, principal, partner_id, until, months)


async def set_quality(request: Request, principal: Principal, partner_id: UUID, month: str,
                      body: QualityIn) -> ac.MonthFigures:
    saved: ac.MonthFigures = await send(bus(request), ac.SetPartnerQuality(
        partner_id=partner_id, month=month, actor=principal.name, **body.model_dump(exclude_unset=True)))
    await audit.record_change(request, principal.name, "partner.quality_set", entity="partner", entity_id=partner_id,
                              after={"month": month, **body.model_dump(mode="json", exclude_unset=True)})
    return saved


@router.put("/partners/{partner_id}/quality/{month}", response_model=ac.MonthFigures)
async def put_quality(partner_id: UUID, month: MonthPath, body: QualityIn, request: Request,
                      principal: Writer) -> ac.MonthFigures:
    """A month's lead quality (0-10), customer satisfaction (0-100) and implementation success (%)."""
    return await set_quality(request, principal, partner_id, month, body)
