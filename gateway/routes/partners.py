"""Partners: create, list (filters, sorting, paging), read, change, archive, tier recomputation,
CSV import and export; and the partner KPI summary."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from contracts import pipeline as pc
from contracts.fields import Name, Offset, Person, Version, line
from gateway import audit, people, pipeline_csv
from gateway.auth import Principal, Role, may_remove, require
from gateway.read_models import partners as partner_models
from gateway.state import bus, sessions
from runtime.commands import send

router = APIRouter(prefix="/api")


class PartnerIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Name
    type: pc.PartnerType
    tier: pc.PartnerTier | None = Field(default=None, description="Pins the tier; leave out to follow revenue.")
    status: pc.PartnerStatus = pc.PartnerStatus.prospect
    owner: Person | None = Field(default=None, description="The team member who owns it: their email or user "
                                    "id (stored as the id).")
    scorecard: pc.Scorecard | None = None


class PartnerPatch(BaseModel):
    """Only the fields sent change; null clears owner or scorecard."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    expected_version: Version | None = Field(default=None, description="Answer 409 if the partner changed since.")
    name: Name | None = None
    type: pc.PartnerType | None = None
    tier: pc.PartnerTier | None = None
    tier_auto: bool | None = None
    status: pc.PartnerStatus | None = None
    owner: Person | None = None
    scorecard: pc.Scorecard | None = None


class Kpis(BaseModel):
    partners_total: int
    partners_by_type: dict[str, int]


Reader = Annotated[Principal, Depends(require(Role.viewer, scope="partners:read"))]
Writer = Annotated[Principal, Depends(require(Role.member, scope="partners:write"))]
Manager = Annotated[Principal, Depends(require(Role.manager, scope="partners:write"))]


@router.post("/partners", status_code=201, response_model=pc.Partner, tags=["partners"])
async def create_partner(body: PartnerIn, request: Request, principal: Writer) -> pc.Partner:
    return await add_partner(request, principal, body)


async def add_partner(request: Request, principal: Principal, body: PartnerIn) -> pc.Partner:
    fields = body.model_dump() | {"owner": await people.deal_owner_id(request, body.owner)}
    partner: pc.Partner = await send(bus(request), pc.CreatePartner(**fields, actor=principal.name))
    async with sessions(request)() as session, session.begin():
        await audit.record(session, actor=principal.name, action="partner.created", entity="partner",
                           entity_id=partner.id, after=partner)
    return partner


@router.get("/partners", response_model=pc.PartnerList, tags=["partners"])
async def list_partners(
    request: Request,
    principal: Reader,
    type: Annotated[pc.PartnerType | None, Query()] = None,
    tier: Annotated[pc.PartnerTier | None, Query()] = None,
    status: Annotated[pc.PartnerStatus | None, Query()] = None,
    owner: Annotated[Person | None, Query()] = None,
    q: Annotated[line(200) | None, Query(description="Part of the name.")] = None,
    include_archived: bool = False,
    state: Annotated[Literal["active", "archived", "deleted"] | None, Query(
        description="Only partners in this state; deleted ones are listed only so.")] = None,
    sort: pc.PartnerSort = pc.PartnerSort.created_desc,
    offset: Annotated[Offset, Query()] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> pc.PartnerList:
    owner = await people.owner_filter(request, owner)
    return await send(bus(request), pc.ListPartners(
        type=type, tier=tier, status=status, owner=owner, q=q, include_archived=include_archived, state=state,
        sort=sort, offset=offset, limit=limit, actor=principal.name))


@router.get("/partners/export.csv", tags=["partners"], response_class=StreamingResponse,
            responses={200: {"content": {"text/csv": {}}}})
async def export_partners(request: Request, principal: Reader) -> StreamingResponse:
    lines = pipeline_csv.export_lines(bus(request), pc.ImportKind.partners, principal.name,
                                      await people.directory(request, fresh=True))
    return StreamingResponse(lines, media_type="text/csv",
                             headers={"content-disposition": "attachment; filename=partners.csv"})


@router.post("/partners/import", response_model=pc.ImportResult, tags=["partners"],
             max_body_size=pipeline_csv.MAX_BYTES,
             responses={422: {"description": "Bad rows (with their row numbers); nothing was stored."}})
async def import_partners(request: Request, principal: Writer) -> JSONResponse:
    return await pipeline_csv.import_response(request, principal.name, pc.ImportKind.partners)


@router.post("/partners/tiers/recompute", response_model=pc.TierRecomputation, tags=["partners"])
async def recompute_tiers(request: Request, principal: Manager) -> pc.TierRecomputation:
    result: pc.TierRecomputation = await send(bus(request), pc.RecomputeTiers(actor=principal.name), timeout=120)
    await audit.record_change(request, principal.name, "partner.tiers_recomputed", entity="partner", after=result)
    return result


@router.get("/partners/{partner_id}", response_model=pc.Partner, tags=["partners"])
async def get_partner(partner_id: UUID, request: Request, principal: Reader) -> pc.Partner:
    return await send(bus(request), pc.GetPartner(partner_id=partner_id, actor=principal.name))


@router.patch("/partners/{partner_id}", response_model=pc.Partner, tags=["partners"])
async def update_partner(partner_id: UUID, body: PartnerPatch, request: Request, principal: Writer) -> pc.Partner:
    changes = body.model_dump(exclude_unset=True)
    if changes.get("owner"):
        changes["owner"] = await people.deal_owner_id(request, changes["owner"])
    command = pc.UpdatePartner(partner_id=partner_id, actor=principal.name, **changes)
    partner: pc.Partner = await send(bus(request), command)
    async with sessions(request)() as session, session.begin():
        await audit.record(session, actor=principal.name, action="partner.updated", entity="partner",
                           entity_id=partner_id, after=body.model_dump(mode="json", exclude_unset=True))
    return partner


@router.post("/partners/{partner_id}/archive", response_model=pc.Partner, tags=["partners"])
async def archive_partner(partner_id: UUID, request: Request, principal: Writer) -> pc.Partner:
    """Archive a partner no longer worked with: kept with its history, gone from lists, pickers and partner
    KPIs; its owner, a manager or an admin restores it at any time."""
    await _may_remove(request, principal, partner_id)
    partner: pc.Partner = await send(bus(request), pc.ArchivePartner(partner_id=partner_id, actor=principal.name))
    async with sessions(request)() as session, session.begin():
        await audit.record(session, actor=principal.name, action="partner.archived", entity="partner",
                           entity_id=partner_id)
    return partner


@router.delete("/partners/{partner_id}", response_model=pc.Partner, tags=["partners"],
               responses={409: {"description": "Money on the commission ledger, or deals not deleted."}})
async def delete_partner(partner_id: UUID, request: Request, principal: Writer) -> pc.Partner:
    """Delete a partner (soft): hidden everywhere; refused with money on the commission ledger or deals that
    are not deleted; restorable by its owner, a manager or an admin for `RESTORE_DAYS` days."""
    await _may_remove(request, principal, partner_id)
    partner: pc.Partner = await send(bus(request), pc.DeletePartner(partner_id=partner_id, actor=principal.name))
    async with sessions(request)() as session, session.begin():
        await audit.record(session, actor=principal.name, action="partner.deleted", entity="partner",
                           entity_id=partner_id, after={"name": partner.name})
    return partner


@router.post("/partners/{partner_id}/restore", response_model=pc.Partner, tags=["partners"],
             responses={409: {"description": "Deleted too long ago."}})
async def restore_partner(partner_id: UUID, request: Request, principal: Writer) -> pc.Partner:
    """Undo an archive, or a delete within the restore window."""
    await _may_remove(request, principal, partner_id)
    partner: pc.Partner = await send(bus(request), pc.RestorePartner(partner_id=partner_id, actor=principal.name))
    async with sessions(request)() as session, session.begin():
        await audit.record(session, actor=principal.name, action="partner.restored", entity="partner",
                           entity_id=partner_id, after={"name": partner.name})
    return partner


async def _may_remove(request: Request, principal: Principal, partner_id: UUID) -> None:
    found: pc.Partner = await send(bus(request), pc.GetPartner(partner_id=partner_id, actor=principal.name))
    may_remove(principal, found.owner, "partner")


@router.get("/kpis", response_model=Kpis, tags=["kpis"])
async def kpis(request: Request, _: Annotated[Principal, Depends(require(Role.viewer, scope="kpis:read"))]) -> Kpis:
    return await compute_kpis(request)


async def compute_kpis(request: Request) -> Kpis:
    async with sessions(request)() as session:
        counts = await partner_models.partner_counts(session)
    return Kpis(partners_total=sum(counts.values()), partners_by_type=counts)
