"""Opportunities (create, list with filters/sorting/paging, read with stage history, change, move,
CSV import and export), pipelines' stage sets, pipeline settings, the pipeline KPIs, and the
integration endpoint sync workers publish external opportunities through."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from contracts import money, sync
from contracts import pipeline as pc
from contracts.fields import Currency, Day, Moment, Name, Offset, Person, Version, line
from contracts.quarters import Quarter
from gateway import audit, people, pipeline_csv
from gateway.auth import Principal, Role, give_back_connection, lent_connection, may_remove, require
from gateway.read_models import kpi_snapshots
from gateway.read_models import pipeline as pipeline_models
from gateway.state import bus, running, sessions
from runtime import bus as runtime_bus
from runtime.commands import send

router = APIRouter(prefix="/api")

Reader = Annotated[Principal, Depends(require(Role.viewer, scope="opportunities:read"))]
Writer = Annotated[Principal, Depends(require(Role.member, scope="opportunities:write"))]
# Settings and stage sets shape every figure of the department: an admin's, or a token's own scope.
Configurer = Annotated[Principal, Depends(require(Role.admin, scope="pipeline:configure"))]
# Checked on the connection the kept KPIs are then read on: one pool checkout per request.
KpiReader = Annotated[Principal, Depends(require(Role.viewer, scope="kpis:read", lend_connection=True))]
Publisher = Annotated[Principal, Depends(require(Role.manager, scope="events:publish"))]

class OpportunityIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Name
    customer: Name
    partner_id: UUID | None = None
    amount: money.Amount
    currency: Currency = "USD"
    expected_close_date: Day | None = None
    owner: Person | None = Field(default=None, description="The team member who owns it: their email or user id "
                                    "(stored as the id). The creator, if left out, on the web form only.")
    deal_model: pc.DealModel = pc.DealModel.resale
    pipeline: pc.Key | None = Field(default=None, description="Defaults from the deal model (cosell or resale).")
    stage: line(100, description="Key or name; defaults to the first.") | None = None
    hyperscaler: pc.Hyperscaler | None = None
    ace: pc.AceState | None = None
    gcp: pc.GcpState | None = None
    created_at: Moment | None = Field(default=None, description="When the deal started, if recorded later.")


class OpportunityPatch(BaseModel):
    """Only the fields sent change; null clears the optional ones."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    expected_version: Version | None = None
    name: Name | None = None
    customer: Name | None = None
    partner_id: UUID | None = None
    amount: money.Amount | None = None
    currency: Currency | None = None
    expected_close_date: Day | None = None
    owner: Person | None = None
    deal_model: pc.DealModel | None = None
    hyperscaler: pc.Hyperscaler | None = None
    ace: pc.AceState | None = None
    gcp: pc.GcpState | None = None


class MoveIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    stage: line(100, 1, description="Key or name of a stage of the pipeline.")
    expected_version: Version | None = None
    closed_lost_reason: line(200) | None = None
    occurred_at: Moment | None = Field(default=None, description="When it happened, if recorded later.")


class StageSetIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Name
    stages: tuple[pc.StageDef, ...] = Field(min_length=2, max_length=30)


class SettingsPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expected_version: Version | None = None
    fiscal_year_start_month: int | None = Field(default=None, ge=1, le=12)
    reporting_currency: Currency | None = None
    quarterly_target: money.Amount | None = None
    forecast_pipelines: tuple[pc.Key, ...] | None = Field(default=None, min_length=1, max_length=20)
    stuck_after_days: int | None = Field(default=None, ge=1, le=3650)
    tier_window_days: int | None = Field(default=None, ge=1, le=3650)
    tier_thresholds: pc.TierThresholds | None = None
    tier_benefits: pc.TierBenefitTable | None = Field(
        default=None, description="Each tier's benefits and commission rate: the whole table, every tier.")
    scorecard_weights: pc.ScorecardWeights | None = None
    feasibility_from_enablement: bool | None = Field(
        default=None, description="The feasibility criterion follows each partner's enablement score.")
    fx_rates: dict[Currency, Annotated[Decimal, Field(gt=0, max_digits=18, decimal_places=8)]] | None = Field(
        default=None, max_length=200, description="1 unit of the currency = rate units of the reporting currency; "
        "send rates as strings (\"1.0825\") to keep them exact.")


class Accepted(BaseModel):
    accepted: int
    event_ids: list[UUID]


# --------------------------------------------------------------------------------- opportunities


@router.post("/opportunities", status_code=201, response_model=pc.Opportunity, tags=["opportunities"])
async def create_opportunity(body: OpportunityIn, request: Request, principal: Writer) -> pc.Opportunity:
    fields = body.model_dump() | {"owner": await people.deal_owner_id(request, body.owner)}
    opportunity: pc.Opportunity = await send(bus(request), pc.CreateOpportunity(**fields, actor=principal.name))
    await _audit(request, principal, "opportunity.created", opportunity.id, opportunity)
    return opportunity


@router.get("/opportunities", response_model=pc.OpportunityList, tags=["opportunities"])
async def list_opportunities(
    request: Request,
    principal: Reader,
    owner: Annotated[Person | None, Query()] = None,
    partner_id: UUID | None = None,
    pipeline: Annotated[str | None, Query(pattern=r"^[a-z][a-z0-9_]{0,39}$")] = None,
    stage: Annotated[line(100) | None, Query()] = None,
    outcome: pc.Outcome | None = None,
    source: pc.Source | None = None,
    deal_model: pc.DealModel | None = None,
    quarter: Annotated[line(12) | None, Query(description="Fiscal quarter, e.g. 2026-Q3.")] = None,
    q: Annotated[line(200) | None, Query(description="Part of the name or customer.")] = None,
    deleted: Annotated[bool, Query(description="Only deleted deals (restorable for "
                                               f"{pc.RESTORE_DAYS} days after their deletion).")] = False,
    sort: pc.OpportunitySort = pc.OpportunitySort.created_desc,
    offset: Annotated[Offset, Query()] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> pc.OpportunityList:
    if quarter is not None:
        try:
            Quarter.parse(quarter)
        except ValueError as exc:
            raise pipeline_csv.unprocessable(["query", "quarter"], str(exc)) from exc
    owner = await people.owner_filter(request, owner)
    return await send(bus(request), pc.ListOpportunities(
        owner=owner, partner_id=partner_id, pipeline=pipeline, stage=stage, outcome=outcome, source=source,
        deal_model=deal_model, quarter=quarter, q=q, deleted=deleted, sort=sort, offset=offset, limit=limit,
        actor=principal.name))


@router.get("/opportunities/export.csv", tags=["opportunities"], response_class=StreamingResponse,
            responses={200: {"content": {"text/csv": {}}}})
async def export_opportunities(request: Request, principal: Reader) -> StreamingResponse:
    lines = pipeline_csv.export_lines(bus(request), pc.ImportKind.opportunities, principal.name,
                                      await people.directory(request, fresh=True))
    return StreamingResponse(lines,
                             media_type="text/csv",
                             headers={"content-disposition": "attachment; filename=opportunities.csv"})


@router.post("/opportunities/import", response_model=pc.ImportResult, tags=["opportunities"],
             max_body_size=pipeline_csv.MAX_BYTES,
             responses={422: {"description": "Bad rows (with their row numbers); nothing was stored."}})
async def import_opportunities(request: Request, principal: Writer) -> JSONResponse:
    return await pipeline_csv.import_response(request, principal.name, pc.ImportKind.opportunities)


@router.get("/opportunities/{opportunity_id}", response_model=pc.OpportunityDetail, tags=["opportunities"])
async def get_opportunity(opportunity_id: UUID, request: Request, principal: Reader) -> pc.OpportunityDetail:
    return await send(bus(request), pc.GetOpportunity(opportunity_id=opportunity_id, actor=principal.name))


@router.patch("/opportunities/{opportunity_id}", response_model=pc.Opportunity, tags=["opportunities"])
async def update_opportunity(opportunity_id: UUID, body: OpportunityPatch, request: Request,
                             principal: Writer) -> pc.Opportunity:
    changes = body.model_dump(exclude_unset=True)
    if changes.get("owner"):
        changes["owner"] = await people.deal_owner_id(request, changes["owner"])
    opportunity: pc.Opportunity = await send(bus(request), pc.UpdateOpportunity(
        opportunity_id=opportunity_id, actor=principal.name, **changes))
    await _audit(request, principal, "opportunity.updated", opportunity_id, body.model_dump(mode="json",
                                                                                            exclude_unset=True))
    return opportunity


@router.post("/opportunities/{opportunity_id}/stage", response_model=pc.Opportunity, tags=["opportunities"])
async def move_opportunity(opportunity_id: UUID, body: MoveIn, request: Request, principal: Writer) -> pc.Opportunity:
    opportunity: pc.Opportunity = await send(bus(request), pc.MoveOpportunity(
        opportunity_id=opportunity_id, actor=principal.name, **body.model_dump()))
    await _audit(request, principal, "opportunity.moved", opportunity_id, {"stage": opportunity.stage})
    return opportunity


@router.delete("/opportunities/{opportunity_id}", response_model=pc.Opportunity, tags=["opportunities"],
               responses={409: {"description": "The deal is won (reopen it or mark it lost first)."}})
async def delete_opportunity(opportunity_id: UUID, request: Request, principal: Writer) -> pc.Opportunity:
    """Delete a deal (soft): gone from every list, KPI, search, export and the portal; restorable by its
    owner, a manager or an admin for `RESTORE_DAYS` days (`POST …/restore`)."""
    found: pc.OpportunityDetail = await send(bus(request), pc.GetOpportunity(opportunity_id=opportunity_id,
                                                                              actor=principal.name))
    may_remove(principal, found.owner, "deal")
    opportunity: pc.Opportunity = await send(bus(request), pc.DeleteOpportunity(
        opportunity_id=opportunity_id, actor=principal.name))
    await _audit(request, principal, "opportunity.deleted", opportunity_id, {"name": opportunity.name})
    return opportunity


@router.post("/opportunities/{opportunity_id}/restore", response_model=pc.Opportunity, tags=["opportunities"],
             responses={409: {"description": "Deleted too long ago, or its partner is deleted."}})
async def restore_opportunity(opportunity_id: UUID, request: Request, principal: Writer) -> pc.Opportunity:
    found: pc.OpportunityDetail = await send(bus(request), pc.GetOpportunity(opportunity_id=opportunity_id,
                                                                              actor=principal.name))
    may_remove(principal, found.owner, "deal")
    opportunity: pc.Opportunity = await send(bus(request), pc.RestoreOpportunity(
        opportunity_id=opportunity_id, actor=principal.name))
    await _audit(request, principal, "opportunity.restored", opportunity_id, {"name": opportunity.name})
    return opportunity


# ---------------------------------------------------------------------------- stages, settings


@router.get("/pipelines", response_model=pc.StageSetList, tags=["pipelines"])
async def list_pipelines(request: Request, principal: Reader) -> pc.StageSetList:
    return await send(bus(request), pc.ListStageSets(actor=principal.name))


@router.put("/pipelines/{key}", response_model=pc.StageSet, tags=["pipelines"])
async def define_pipeline(key: Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,39}$")], body: StageSetIn,
                          request: Request, principal: Configurer) -> pc.StageSet:
    stage_set: pc.StageSet = await send(bus(request), pc.DefineStageSet(key=key, name=body.name, stages=body.stages,
                                                                        actor=principal.name))
    await _audit(request, principal, "pipeline.defined", key, stage_set)
    return stage_set


@router.get("/pipeline/settings", response_model=pc.PipelineSettings, tags=["pipelines"])
async def get_settings(request: Request, principal: Reader) -> pc.PipelineSettings:
    return await send(bus(request), pc.GetPipelineSettings(actor=principal.name))


@router.patch("/pipeline/settings", response_model=pc.PipelineSettings, tags=["pipelines"])
async def update_settings(body: SettingsPatch, request: Request, principal: Configurer) -> pc.PipelineSettings:
    changes = body.model_dump(exclude_unset=True)
    settings: pc.PipelineSettings = await send(bus(request), pc.UpdatePipelineSettings(actor=principal.name, **changes),
                                               timeout=120)
    await _audit(request, principal, "pipeline.settings_changed", None, body.model_dump(mode="json",
                                                                                        exclude_unset=True))
    return settings


# ------------------------------------------------------------------------------------------ KPIs


@router.get("/kpis/pipeline", response_model=pipeline_models.PipelineKpis, tags=["kpis"])
async def pipeline_kpis(
    request: Request,
    principal: KpiReader,
    as_of: Annotated[Day | None, Query(description="A day of the quarter to report on (default: today, UTC).")] = None,
    owner: Annotated[Person | None, Query(
        description="A team member (email or user id): their deals, and the partners they own. Members and "
                    "viewers may ask only for themselves, as on the team page; managers, admins and tokens for "
                    "anyone.")] = None,
    top: Annotated[int, Query(ge=1, le=100)] = 10,
) -> pipeline_models.PipelineKpis | Response:
    owner = await people.owner_filter(request, owner)
    if owner is not None and principal.kind == "user" and principal.role.rank < Role.manager.rank \
            and owner != principal.id:
        raise HTTPException(403, detail="you can see your own KPIs; managers see everyone's")
    today = datetime.now(UTC).date()
    day = as_of or today
    if day == today and top == pipeline_models.SNAPSHOT_TOP:
        arrived = time.monotonic()
        scope = pipeline_models.kpi_scope(owner)
        # Today's figures as the consumers (or an earlier request) computed them, if nothing changed since.
        body = await kpi_snapshots.current_on(lent_connection(request), scope, today)
        if body is None:
            await give_back_connection(request)  # the computation takes connections of its own
            body = await _kept_computations(request).computed(
                scope, arrived, lambda: _compute_kept(request, scope, today, owner),
                lambda: kpi_snapshots.current(running(request).engine, scope, today))
        return Response(body, media_type="application/json")
    await give_back_connection(request)  # the sessions below take connections of their own
    async with sessions(request)() as session, session.begin():
        # Rolls the per-partner ARR over when a month begins (a no-op on every other read).
        await pipeline_models.ensure_arr_window(session, today)
    async with sessions(request)() as session:
        return await pipeline_models.kpis(session, as_of=day, owner=owner, top=top)


def _kept_computations(request: Request) -> kpi_snapshots.Computations:
    """This app's computations of kept KPIs under way (one per scope at a time)."""
    computations: kpi_snapshots.Computations | None = getattr(request.app.state, "kpi_computations", None)
    if computations is None:
        computations = request.app.state.kpi_computations = kpi_snapshots.Computations()
    return computations


async def _compute_kept(request: Request, scope: str, today: date, owner: str | None) -> str:
    async with sessions(request)() as session, session.begin():
        # Rolls the per-partner ARR over when a month begins (a no-op on every other read).
        await pipeline_models.ensure_arr_window(session, today)
    async with sessions(request)() as session, session.begin():
        return await kpi_snapshots.compute_and_store(
            session, scope, today, lambda s: pipeline_models.kpis_json(s, as_of=today, owner=owner))


# ------------------------------------------------------------------------------------ integration

_STREAM_READY = "pipeline_sync_stream_ready"
MAX_BATCH = 500


@router.post("/integrations/opportunities", status_code=202, response_model=Accepted, tags=["integrations"])
async def publish_external(
    body: Annotated[list[sync.OpportunityExternalUpsertedV1], Field(min_length=1, max_length=MAX_BATCH)],
    request: Request,
    principal: Publisher,
) -> Accepted:
    """Publish external opportunities (the `sync.opportunity.external.upserted.v1` contract, see
    /asyncapi.json) for sync workers that speak HTTP rather than NATS. Answered once JetStream has
    stored them; the pipeline applies them shortly after (newer-wins by last_modified)."""
    js = running(request).nc.jetstream()
    if not getattr(request.app.state, _STREAM_READY, False):
        await runtime_bus.ensure_streams(js, [sync.STREAM])
        setattr(request.app.state, _STREAM_READY, True)
    # correlation_id names the verified sender, not whatever the payload claimed.
    body = [e.model_copy(update={"correlation_id": principal.name}) for e in body]
    await asyncio.gather(*(
        js.publish(e.subject, e.model_dump_json().encode(), headers={"Nats-Msg-Id": str(e.event_id)})
        for e in body
    ))
    # Deals (and, once won, commission) arrive this way: who sent them is the token or person verified
    # above, whatever the payload says.
    await audit.record_change(request, principal.name, "opportunity.external_published", entity="opportunity",
                              after={"events": [{"event_id": e.event_id, "source": e.source,
                                                 "external_id": e.external_id} for e in body]})
    return Accepted(accepted=len(body), event_ids=[e.event_id for e in body])


async def _audit(request: Request, principal: Principal, action: str, entity_id: object, after: object) -> None:
    async with sessions(request)() as session, session.begin():
        await audit.record(session, actor=principal.name, action=action, entity=action.split(".")[0],
                           entity_id=entity_id, after=after)
