"""What the AWS worker answers and consumes on the bus: the ticks of its passes (contracts/schedules.py),
a refresh of one opportunity (the gateway forwards an EventBridge event) and the status of the sync
(the gateway's sync health page). Each only records the work asked for; the driver does it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from contracts import pipeline as pc
from contracts import schedules, sync
from contracts.base import Event
from integrations.aws_partner_central import outbound_rules, share_rules
from integrations.aws_partner_central.driver import driver
from integrations.aws_partner_central.models import SCHEMA, Invitation, Share
from integrations.aws_partner_central.repository import PASS_KEY, SyncRepository
from integrations.aws_partner_central.settings import get_aws_settings
from runtime.errors import Conflict, Invalid, NotFound
from runtime.inbox import Subscription
from runtime.service import ServiceDefinition

NAME = "aws-sync"
CONSUMER = NAME  # its dead letters go under deadletter.aws-sync.>, the only ones it may park
_PLANS = {p.tick: p for p in schedules.PLANS}


def schedule_in_words() -> str:
    pull, reconcile = _PLANS[schedules.AwsPullDueV1], _PLANS[schedules.AwsReconciliationDueV1]
    return (f"changes pulled at cron `{pull.cron}`, everything reconciled at cron `{reconcile.cron}` "
            f"({pull.time_zone or 'UTC'}), and a refresh on every EventBridge event")


async def on_pull_due(session: AsyncSession, event: Event) -> None:
    repo = SyncRepository(session, get_aws_settings().catalog)
    await repo.request("incremental", PASS_KEY, "schedule")
    await repo.request("invitations", PASS_KEY, "schedule")
    await repo.wake_driver()


async def on_reconciliation_due(session: AsyncSession, event: Event) -> None:
    repo = SyncRepository(session, get_aws_settings().catalog)
    await repo.request("reconcile", PASS_KEY, "schedule")
    await repo.advance(reconcile_due_at=event.occurred_at)
    await repo.wake_driver()


async def on_deal_changed(session: AsyncSession, event: Event) -> None:
    """A deal changed in the pipeline. When it is an ACE opportunity this worker synced and it no longer
    holds what the sync last published, someone edited it in PartnerOps: the edit goes out."""
    assert isinstance(event, pc.OpportunityUpdatedV1 | pc.OpportunityStageChangedV1)
    deal = event.opportunity
    if deal.source is not pc.Source.aws or not deal.external_id:
        return
    repo = SyncRepository(session, get_aws_settings().catalog)
    published = await repo.published(deal.external_id)
    if published is None or published[0] is None:
        return  # not a record of this worker's catalog, or an old version without its fields
    fields, last_modified = published
    if deal.source_modified_at is None or deal.source_modified_at < last_modified:
        return  # the deal has not caught up with the newest version published: an older echo
    edit = outbound_rules.changed(fields, outbound_rules.fields_of_deal(deal))
    if not edit:
        return  # the deal holds what ACE sent: the echo of an inbound change
    await repo.queue_edit(deal.external_id, deal.id, edit, fields, deal.updated_at)
    await repo.request("push", deal.external_id, "edited in PartnerOps")
    await repo.wake_driver()


async def refresh_opportunity(session: AsyncSession, command: sync.RefreshAceOpportunity) -> sync.RefreshQueued:
    catalog = get_aws_settings().catalog
    if command.catalog != catalog:
        # An event from the other catalog (Sandbox vs AWS) names a record this worker must not touch.
        raise Invalid(f"this worker syncs the {catalog} catalog, not {command.catalog}", field="catalog")
    repo = SyncRepository(session, catalog)
    queued = await repo.request("refresh", command.opportunity_id, command.reason)
    await repo.wake_driver()
    return sync.RefreshQueued(opportunity_id=command.opportunity_id, queued=queued)


async def refresh_invitations(session: AsyncSession, command: sync.RefreshAceInvitations) -> sync.InvitationsQueued:
    catalog = get_aws_settings().catalog
    if command.catalog != catalog:
        raise Invalid(f"this worker syncs the {catalog} catalog, not {command.catalog}", field="catalog")
    repo = SyncRepository(session, catalog)
    queued = await repo.request("invitations", PASS_KEY, "EventBridge")
    await repo.wake_driver()
    return sync.InvitationsQueued(queued=queued)


def invitation_view(i: Invitation) -> sync.InvitationView:
    return sync.InvitationView(
        invitation_id=i.invitation_id, title=i.title, sender=i.sender, status=i.status, invited_at=i.invited_at,
        expires_at=i.expires_at, decision=i.decision, decided_by=i.decided_by, reason=i.reason,
        decision_state=i.decision_state, decision_error=i.decision_error, opportunity_id=i.opportunity_id)


async def decide_invitation(session: AsyncSession, command: sync.DecideAceInvitation) -> sync.InvitationView:
    """Record an answer to an invitation (who gave it comes from the gateway's verified principal)."""
    repo = SyncRepository(session, get_aws_settings().catalog)
    invitation = await repo.invitation(command.invitation_id, lock=True)
    if invitation is None:
        raise NotFound(f"no engagement invitation {command.invitation_id}")
    if invitation.status != "PENDING" or invitation.decision_state in ("queued", "sent"):
        raise Conflict(f"invitation {command.invitation_id} is {invitation.status.lower()}"
                       + (f" and was answered ({invitation.decision})" if invitation.decision else "")
                       + ": it cannot be answered now")
    if invitation.expires_at is not None and invitation.expires_at <= datetime.now(UTC):
        raise Conflict(f"invitation {command.invitation_id} expired at {invitation.expires_at.isoformat()}")
    invitation.decision, invitation.reason = command.decision, command.reason
    invitation.decided_by, invitation.decision_state, invitation.decision_error = command.actor, "queued", None
    await repo.request("decide", command.invitation_id, f"{command.decision} by {command.actor}")
    await repo.wake_driver()
    return invitation_view(invitation)


def share_view(s: Share) -> sync.ShareView:
    return sync.ShareView(deal_id=s.deal_id, name=(s.request.get("Project") or {}).get("Title"),
                          opportunity_id=s.opportunity_id, solution_id=s.solution_id,
                          state=s.state, error=s.error, requested_by=s.requested_by,  # type: ignore[arg-type]
                          requested_at=s.requested_at, updated_at=s.updated_at)


async def share_deal(session: AsyncSession, command: sync.ShareDealToAce) -> sync.ShareView:
    """Record a deal to share to ACE; the driver sends it. A deal shared already is refused, one whose
    share AWS refused may be shared again (from the step that failed)."""
    settings = get_aws_settings()
    solution = command.solution_id or settings.solution_id
    if not solution:
        raise Invalid("name the Partner Central solution to associate (S- and digits), or set "
                      "AWS_PARTNER_CENTRAL_SOLUTION_ID for the worker", field="solution_id")
    request = share_rules.create_request(command)
    refused = share_rules.refusals("CreateOpportunity", {"Catalog": settings.catalog, "ClientToken": "t", **request})
    if refused:
        where, why = refused[0]
        raise Invalid(f"AWS would refuse {where}: {why}", field=share_rules.FIELD_OF.get(where, where))
    repo = SyncRepository(session, settings.catalog)
    share = await repo.share(command.deal_id, lock=True)
    actor = command.actor or "unknown"
    if share is None:
        share = Share(catalog=settings.catalog, deal_id=command.deal_id, client_token=share_rules.client_token(
            command.deal_id), request=request, solution_id=solution, state="queued", requested_by=actor)
        await repo.add_share(share)
    elif share.state != "failed":
        raise Conflict(f"deal {command.deal_id} is shared to ACE already"
                       + (f" as {share.opportunity_id}" if share.opportunity_id else "") + f" ({share.state})")
    else:
        # Asked again after AWS refused it: from the step that failed. A create that failed is a new try
        # (a new token: AWS would take the old one for the first request, with its old fields).
        attempt = int(share.client_token.rsplit("-", 1)[1]) + 1 if share.client_token.count("-") > 5 else 1
        if share.opportunity_id is None:
            share.client_token = share_rules.client_token(command.deal_id, attempt)
        share.request, share.solution_id, share.requested_by = request, solution, actor
        share.state, share.error = ("created" if share.opportunity_id else "queued"), None
        await session.flush()
    await repo.request("share", str(command.deal_id), f"shared by {actor}")
    await repo.wake_driver()
    await session.refresh(share)
    return share_view(share)


async def status(session: AsyncSession, command: sync.GetSyncStatus) -> sync.SyncStatus:
    catalog = get_aws_settings().catalog
    repo = SyncRepository(session, catalog)
    now = datetime.now(UTC)
    cursor = await repo.cursor()
    last_success = await repo.last_success()
    return sync.SyncStatus(
        source="aws", catalog=catalog,
        watermark=cursor.watermark if cursor else None,
        last_success_at=last_success,
        lag_seconds=int((now - last_success).total_seconds()) if last_success else None,
        published_24h=await repo.published_since(now - timedelta(hours=24)),
        sent_24h=await repo.sent_since(now - timedelta(hours=24)),
        queued_edits=await repo.waiting_edits(),
        pending_refreshes=await repo.pending("refresh"),
        last_reconciliation_due_at=cursor.reconcile_due_at if cursor else None,
        schedule=schedule_in_words(),
        runs=[sync.SyncRunView(kind=r.kind, started_at=r.started_at, finished_at=r.finished_at, ok=r.ok, seen=r.seen,
                               published=r.published, unchanged=r.unchanged, failed=r.failed, error=r.error)
              for r in await repo.runs()],
        problems=[sync.SyncProblemView(external_id=p.opportunity_id, reason=p.reason, at=p.at)
                  for p in await repo.problems()],
        edits=[sync.OutboundEditView(external_id=e.opportunity_id, deal_id=e.deal_id, fields=e.fields, status=e.status,
                                     reason=e.reason, edited_at=e.edited_at, sent_at=e.sent_at)
               for e in await repo.edits()],
        invitations=[invitation_view(i) for i in await repo.invitations()],
        shares=[share_view(x) for x in await repo.shares()],
    )


definition = ServiceDefinition(
    name=NAME,
    db_schema=SCHEMA,
    publishes=(sync.STREAM,),
    subscriptions=(
        Subscription(consumer=CONSUMER, models=(schedules.AwsPullDueV1,), handle=on_pull_due),
        Subscription(consumer=CONSUMER, models=(schedules.AwsReconciliationDueV1,), handle=on_reconciliation_due),
        Subscription(consumer=CONSUMER, models=(pc.OpportunityUpdatedV1,), handle=on_deal_changed),
        Subscription(consumer=CONSUMER, models=(pc.OpportunityStageChangedV1,), handle=on_deal_changed),
    ),
    commands=(
        (sync.RefreshAceOpportunity, refresh_opportunity),
        (sync.GetSyncStatus, status),
        (sync.RefreshAceInvitations, refresh_invitations),
        (sync.DecideAceInvitation, decide_invitation),
        (sync.ShareDealToAce, share_deal),
    ),
    workers=(driver(),),
)
