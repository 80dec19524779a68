"""Partners and the KPI summary."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from contracts import pipeline as pc
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


@router.post("/partners", status_code=201, response_model=pc.Partner, tags=["partners"])
async def create_partner(body: PartnerIn, request: Request) -> pc.Partner:
    return await send(bus(request), pc.CreatePartner(**body.model_dump(), actor=actor(request)))


@router.get("/partners", response_model=pc.PartnerList, tags=["partners"])
async def list_partners(
    request: Request,
    type: Annotated[pc.PartnerType | None, Query()] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> pc.PartnerList:
    return await send(bus(request), pc.ListPartners(type=type, offset=offset, limit=limit, actor=actor(request)))


@router.get("/partners/{partner_id}", response_model=pc.Partner, tags=["partners"])
async def get_partner(partner_id: UUID, request: Request) -> pc.Partner:
    return await send(bus(request), pc.GetPartner(partner_id=partner_id, actor=actor(request)))


@router.get("/kpis", response_model=Kpis, tags=["kpis"])
async def kpis(request: Request) -> Kpis:
    return await compute_kpis(request)


async def compute_kpis(request: Request) -> Kpis:
    async with sessions(request)() as session:
        counts = await partner_models.partner_counts(session)
    return Kpis(partners_total=sum(counts.values()), partners_by_type=counts)


def actor(request: Request) -> str | None:
    user = getattr(request.state, "user", None)
    return getattr(user, "email", None)


