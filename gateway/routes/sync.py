"""The sync workers at the edge: AWS Partner Central's EventBridge events in (each names an opportunity
the AWS worker then refreshes), and the health of every sync out.

EventBridge reaches this route through an API destination (an HTTPS endpoint with an API key: the
connection sends `Authorization: Bearer po_…`, a token with the `events:publish` scope). Events are
best-effort on AWS's side, so the worker also reconciles on a schedule; a refused event here is never
a refresh of some other record: the catalog, the detail type and the opportunity id are checked
before anything is asked of the worker, and the worker refuses a catalog it does not sync.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from contracts import pipeline as pc
from contracts import sync
from contracts.base import CommandError, ErrorKind
from contracts.fields import Moment, line
from gateway import audit
from gateway.auth import Principal, Role, require
from gateway.state import bus
from runtime.commands import send
from runtime.errors import CommandFailed

router = APIRouter(prefix="/api", tags=["integrations"])

Publisher = Annotated[Principal, Depends(require(Role.manager, scope="events:publish"))]
SyncReader = Annotated[Principal, Depends(require(Role.viewer, scope="sync:read"))]

EVENT_SOURCE = "aws.partnercentral-selling"
# The detail types Partner Central sends (EventBridge reference, "AWS Partner Central Selling events").
OPPORTUNITY_EVENTS = ("Opportunity Created", "Opportunity Updated", "Opportunity Accepted", "Opportunity Rejected")
INVITATION_EVENTS = ("Engagement Invitation Created", "Engagement Invitation Accepted",
                     "Engagement Invitation Rejected", "Engagement Invitation Expired")
OTHER_EVENTS = (*INVITATION_EVENTS, "Engagement Member Joined", "Engagement Member Added", "Resource Snapshot Created",
                "Engagement Resource Snapshot Created")
STALE_AFTER = sync.STALE_AFTER


class AceEventOpportunity(BaseModel):
    model_config = ConfigDict(extra="ignore")
    identifier: sync.AceOpportunityId


class AceEventDetail(BaseModel):
    model_config = ConfigDict(extra="ignore")
    catalog: sync.AceCatalog
    opportunity: AceEventOpportunity | None = None


class PartnerCentralEvent(BaseModel):
    """An EventBridge event from AWS Partner Central, as EventBridge delivers it."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: line(100) | None = None
    source: Literal["aws.partnercentral-selling"]
    detail_type: Literal[OPPORTUNITY_EVENTS + OTHER_EVENTS] = Field(alias="detail-type")  # type: ignore[valid-type]
    time: Moment | None = None
    detail: AceEventDetail


class AceEventAccepted(BaseModel):
    action: Literal["refresh_queued", "already_queued", "invitations_queued", "ignored"]
    opportunity_id: str | None = None
    detail: str


@router.post("/integrations/aws/events", status_code=202, response_model=AceEventAccepted)
async def aws_event(event: PartnerCentralEvent, request: Request, principal: Publisher) -> AceEventAccepted:
    """Receive an AWS Partner Central event from EventBridge (an API destination). An opportunity event
    queues a refresh of that opportunity in the AWS worker; the others are read at its next pass.
    503 while the worker is not running: EventBridge retries."""
    if event.detail_type in INVITATION_EVENTS:
        await send(bus(request), sync.RefreshAceInvitations(catalog=event.detail.catalog, actor=principal.name))
        return AceEventAccepted(action="invitations_queued", detail="the worker reads the invitations again")
    if event.detail_type not in OPPORTUNITY_EVENTS:
        return AceEventAccepted(action="ignored", detail=f"{event.detail_type}: read at the next pass")
    if event.detail.opportunity is None:
        raise CommandFailed(CommandError(kind=ErrorKind.invalid, field="detail.opportunity",
                                              message=f"a {event.detail_type} event names its opportunity"))
    ident = event.detail.opportunity.identifier
    queued = await send(bus(request), sync.RefreshAceOpportunity(
        catalog=event.detail.catalog, opportunity_id=ident, reason=event.detail_type, actor=principal.name))
    return AceEventAccepted(action="refresh_queued" if queued.queued else "already_queued", opportunity_id=ident,
                            detail="the worker reads it from AWS and publishes it if it changed")


class InvitationDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["accept", "reject"]
    reason: sync.InvitationReason | None = None


InvitationId = Annotated[str, Path(pattern=r"^engi-[0-9a-z]{13}$", examples=["engi-0123456789abc"])]
Decider = Annotated[Principal, Depends(require(Role.manager, scope="opportunities:write"))]


async def decide(request: Request, principal: Principal, invitation_id: str,
                 body: InvitationDecision) -> sync.InvitationView:
    """Record an answer to an invitation in the AWS worker (which sends it to AWS) and audit it."""
    view = await send(bus(request), sync.DecideAceInvitation(
        invitation_id=invitation_id, decision=body.decision, reason=body.reason, actor=principal.name))
    await audit.record_change(request, principal.name, f"invitation.{body.decision}", entity="aws_invitation",
                              entity_id=invitation_id, after={"decision": body.decision, "reason": body.reason})
    return view


@router.post("/integrations/aws/invitations/{invitation_id}/decision", status_code=202,
             response_model=sync.InvitationView)
async def invitation_decision(invitation_id: InvitationId, body: InvitationDecision, request: Request,
                              principal: Decider) -> sync.InvitationView:
    """Accept or reject an engagement invitation (an AWS referral). Accepting makes the ACE opportunity
    the next pass brings in as a co-sell deal; a rejection's reason is sent to AWS. 409 when it is no
    longer pending (answered, expired)."""
    return await decide(request, principal, invitation_id, body)


class ShareToAws(BaseModel):
    """What ACE needs beyond the deal itself (the deal's name, customer, stage, amount, close date and
    next steps go as PartnerOps holds them)."""

    model_config = ConfigDict(extra="forbid")
    solution_id: sync.AceSolutionId | None = None
    business_problem: sync.BusinessProblem | None = None
    website: sync.Website | None = None
    country_code: sync.CountryCode | None = None


async def share(request: Request, principal: Principal, opportunity_id: UUID, body: ShareToAws) -> sync.ShareView:
    """Send a co-sell deal to the AWS worker to create in ACE, and audit it."""
    nc = bus(request)
    deal: pc.OpportunityDetail = await send(nc, pc.GetOpportunity(opportunity_id=opportunity_id,
                                                                  actor=principal.name))
    if deal.pipeline != pc.COSELL:
        raise CommandFailed(CommandError(kind=ErrorKind.conflict, field="pipeline", message=(
            f"only co-sell deals go to ACE; this one is in the {deal.pipeline} pipeline")))
    if deal.external_id is not None:
        raise CommandFailed(CommandError(kind=ErrorKind.conflict, field="external_id", message=(
            f"this deal is {deal.source.value} {deal.external_id} already")))
    view = await send(nc, sync.ShareDealToAce(
        deal_id=deal.id, name=deal.name, customer=deal.customer[:120], stage=deal.stage_name, amount=deal.amount,
        currency=deal.currency, expected_close_date=deal.expected_close_date,
        next_steps=deal.ace.next_steps if deal.ace else None, actor=principal.name,
        **body.model_dump(exclude_none=True)))
    await audit.record_change(request, principal.name, "opportunity.shared", entity="opportunity",
                              entity_id=deal.id, after={"to": "aws", "solution_id": view.solution_id,
                                                        "deal_version": deal.version})
    return view


@router.post("/opportunities/{opportunity_id}/share/aws", status_code=202, response_model=sync.ShareView,
             tags=["integrations"])
async def share_to_aws(opportunity_id: UUID, body: ShareToAws, request: Request,
                       principal: Decider) -> sync.ShareView:
    """Share a co-sell deal made in PartnerOps to AWS Partner Central: the AWS worker creates the ACE
    opportunity, associates the solution and submits it to AWS; the deal is then linked to it (its source
    becomes `aws`, its external id the ACE id) and synced both ways. 409 for a deal outside the co-sell
    pipeline or one that is in ACE already; 503 while the worker is not running."""
    return await share(request, principal, opportunity_id, body)


class SyncHealth(BaseModel):
    source: str
    name: str
    state: Literal["ok", "stale", "failing", "never run", "not running"] = Field(
        description="not running: the worker does not answer (not configured, or down)")
    reason: str | None = None
    status: sync.SyncStatus | None = None


def assess(status: sync.SyncStatus, now: datetime) -> tuple[str, str | None]:
    """One word and a reason for a sync's status: the one place the page and the API take it from."""
    passes = [r for r in status.runs if r.kind != "refresh" and r.ok is not None]
    if passes and passes[0].ok is False:
        return "failing", passes[0].error
    if status.last_success_at is None:
        return "never run", "no pass has finished yet"
    if now - status.last_success_at > STALE_AFTER:
        return "stale", f"no good pass for {int((now - status.last_success_at).total_seconds() // 60)} minutes"
    return "ok", None


async def aws_health(request: Request) -> SyncHealth:
    name = "AWS Partner Central"
    try:
        status = await send(bus(request), sync.GetSyncStatus(actor=request.state.principal.name), timeout=5)
    except CommandFailed as exc:
        if exc.error.kind is ErrorKind.unavailable:
            return SyncHealth(source="aws", name=name, state="not running",
                              reason="the AWS sync worker does not answer: not configured "
                                     "(AWS_PARTNER_CENTRAL_SYNC=true), or down")
        raise
    state, reason = assess(status, datetime.now(UTC))
    return SyncHealth(source="aws", name=name, state=state, reason=reason, status=status)  # type: ignore[arg-type]


@router.get("/sync", response_model=list[SyncHealth], tags=["integrations"])
async def sync_health(request: Request, _: SyncReader) -> list[SyncHealth]:
    """The health of every sync: last successful pass, lag, items in and out, queued edits, problems
    with their reasons, the schedule. A worker that is not running says so (200, state `not running`)."""
    return [await aws_health(request)]
