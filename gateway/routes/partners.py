"""Partners and the KPI summary."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from contracts import pipeline as pc
from gateway import audit
from gateway.auth import Principal, Role, require
from gateway.read_models import partners as partner_models
from gateway.state import bus, sessions
from runtime.commands import send

router = APIRouter(prefix="/api")


class PartnerIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200)
    type: pc.PartnerType
    tier: pc.PartnerTier = pc.PartnerTier.bronze
    status: pc.PartnerStatus = pc.PartnerStatus.prospect
    owner: str | None = Field(default=None, max_length=200)


class Kpis(BaseModel):
    partners_total: int
    partners_by_type: dict[str, int]


Reader = Annotated[Principal, Depends(require(Role.viewer, scope="partners:read"))]
Writer = Annotated[Principal, Depends(require(Role.member, scope="partners:write"))]


@router.post("/partners", status_code=201, response_model=pc.Partner, tags=["partners"])
async def create_partner(body: PartnerIn, request: Request, principal: Writer) -> pc.Partner:
    return await add_partner(request, principal, body)


async def add_partner(request: Request, principal: Principal, body: PartnerIn) -> pc.Partner:
    partner: pc.Partner = await send(bus(request), pc.CreatePartner(**body.model_dump(), actor=principal.name))
    async with sessions(request)() as session, session.begin():
        await audit.record(session, actor=principal.name, action="partner.created", entity="partner",
                           entity_id=partner.id, after=partner)
    return partner


@router.get("/partners", response_model=pc.PartnerList, tags=["partners"])
async def list_partners(
    request: Request,
    principal: Reader,
    type: Annotated[pc.PartnerType | None, Query()] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> pc.PartnerList:
    return await send(bus(request), pc.ListPartners(type=type, offset=offset, limit=limit, actor=principal.name))


@router.get("/partners/{partner_id}", response_model=pc.Partner, tags=["partners"])
async def get_partner(partner_id: UUID, request: Request, principal: Reader) -> pc.Partner:
    return await send(bus(request), pc.GetPartner(partner_id=partner_id, actor=principal.name))


@router.get("/kpis", response_model=Kpis, tags=["kpis"])
async def kpis(request: Request, _: Annotated[Principal, Depends(require(Role.viewer, scope="kpis:read"))]) -> Kpis:
    return await compute_kpis(request)


async def compute_kpis(request: Request) -> Kpis:
    async with sessions(request)() as session:
        counts = await partner_models.partner_counts(session)
    return Kpis(partners_total=sum(counts.values()), partners_by_type=counts)
