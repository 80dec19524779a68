"""Opportunity use cases: create, change, move through stages, read. Never commits.

Every change bumps the opportunity's version and emits one snapshot event (created, updated or
stage changed) plus the outcome facts other services act on (won, lost, launched, reopened).

Changes are planned in memory on plain states (`plan_create`, `plan_change`) and collected in a
`Work`, which writes them all at once: a command is a batch of one, an import or a batch of
ingested events is one `Work` with many.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contracts import pipeline as c
from contracts.base import Event, new_id
from contracts.quarters import Quarter
from runtime.errors import Conflict, Invalid, NotFound
from runtime.outbox import add_events
from services.pipeline.config.repository import ConfigRepository
from services.pipeline.models import SCHEMA
from services.pipeline.opportunities import domain
from services.pipeline.opportunities.domain import OpportunityState
from services.pipeline.opportunities.repository import OpportunityRepository
from services.pipeline.partners import service as partners
from services.pipeline.partners.repository import PartnerRepository

# The fields a person (or an import, or a sync worker) may set; stage moves separately.
EDITABLE = ("name", "customer", "partner_id", "amount", "currency", "expected_close_date", "owner",
            "deal_model", "hyperscaler", "ace", "gcp")


@dataclass
class Draft:
    """An opportunity's editable fields."""

    name: str
    customer: str
    amount: Decimal
    currency: str = "USD"
    partner_id: uuid.UUID | None = None
    expected_close_date: date | None = None
    owner: str | None = None
    deal_model: c.DealModel = c.DealModel.resale
    hyperscaler: c.Hyperscaler | None = None
    ace: c.AceState | None = None
    gcp: c.GcpState | None = None


@dataclass
class Origin:
    """Where a change comes from: who, when, and for external records their source's identity."""

    actor: str | None
    at: datetime
    source: c.Source = c.Source.manual
    external_id: str | None = None
    source_modified_at: datetime | None = None
    source_created_at: datetime | None = None
    correlation_id: str | None = None


@dataclass
class Work:
    """Everything a batch of planned changes writes, in one go."""

    new: dict[uuid.UUID, OpportunityState] = field(default_factory=dict)
    changed: dict[uuid.UUID, OpportunityState] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    next_steps: list[dict[str, Any]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    # Partners whose trailing won revenue moved: their tiers are recomputed.
    partners: set[uuid.UUID] = field(default_factory=set)
    actor: str | None = None

    def touch(self, state: OpportunityState) -> None:
        if state.id not in self.new:
            self.changed[state.id] = state

    async def write(self, session: AsyncSession) -> None:
        await OpportunityRepository(session).write(list(self.new.values()), list(self.changed.values()),
                                                   self.history, self.next_steps)
        await add_events(session, SCHEMA, self.events)
        if self.partners:
            settings = await ConfigRepository(session).settings()
            await partners.recompute(session, self.partners, settings, actor=self.actor)


def _json(model: Any) -> dict[str, Any] | None:
    return model.model_dump(mode="json", exclude_none=True) if model is not None else None


def ace_of(o: OpportunityState) -> c.AceState | None:
    return c.AceState.model_validate(o.ace) if o.ace else None


def gcp_of(o: OpportunityState) -> c.GcpState | None:
    return c.GcpState.model_validate(o.gcp) if o.gcp else None


def to_contract(o: OpportunityState, stage_set: c.StageSet, *, ace: c.AceState | None = None,
                gcp: c.GcpState | None = None) -> c.Opportunity:
    """The snapshot of a stored (or planned) opportunity. `ace`/`gcp`: its ACE and GCP parts as models, when
    the caller has them (so they are not validated again from the state's JSON)."""
    stage = stage_set.stage(o.stage)
    return c.Opportunity(
        id=o.id, version=o.version, name=o.name, pipeline=o.pipeline, stage=o.stage,
        stage_name=stage.name if stage else o.stage, probability=stage.probability if stage else 0,
        outcome=c.Outcome(o.outcome), partner_id=o.partner_id, customer=o.customer, amount=o.amount,
        currency=o.currency, expected_close_date=o.expected_close_date, owner=o.owner,
        deal_model=c.DealModel(o.deal_model), source=c.Source(o.source), external_id=o.external_id,
        source_modified_at=o.source_modified_at,
        hyperscaler=c.Hyperscaler(o.hyperscaler) if o.hyperscaler else None,
        ace=(ace or ace_of(o)) if o.ace else None, gcp=(gcp or gcp_of(o)) if o.gcp else None,
        created_at=o.created_at, updated_at=o.updated_at, stage_entered_at=o.stage_entered_at,
        closed_at=o.closed_at, launched_at=o.launched_at, deleted_at=o.deleted_at,
    )


async def check_partners(session: AsyncSession, partner_ids: set[uuid.UUID | None]) -> None:
    wanted = {p for p in partner_ids if p is not None}
    missing = wanted - await PartnerRepository(session).existing(wanted)
    if missing:
        raise Invalid(f"no partner with id {sorted(missing)[0]}", field="partner_id")


def _outcome_events(o: OpportunityState, entry: domain.StageEntry, origin: Origin,
                    lost_reason: str | None) -> list[Event]:
    common = dict(opportunity_id=o.id, partner_id=o.partner_id, amount=o.amount, currency=o.currency,
                  deal_model=c.DealModel(o.deal_model), customer=o.customer, owner=o.owner, pipeline=o.pipeline,
                  source=c.Source(o.source), correlation_id=origin.correlation_id)
    events: list[Event] = []
    if entry.won:
        events.append(c.OpportunityWonV1(**common, won_at=o.closed_at))
    if entry.lost:
        events.append(c.OpportunityLostV1(**common, lost_at=o.closed_at, reason=lost_reason))
    if entry.launched:
        hyperscaler = c.Hyperscaler(o.hyperscaler) if o.hyperscaler else None
        events.append(c.OpportunityLaunchedV1(**common, hyperscaler=hyperscaler, launched_at=o.launched_at))
    if entry.reopened and entry.previous_outcome is not None:
        events.append(c.OpportunityReopenedV1(**common, previous_outcome=entry.previous_outcome,
                                              reopened_at=origin.at))
    return events


def plan_create(draft: Draft, *, stage_sets: dict[str, c.StageSet], pipeline: str | None, stage: str | None,
                origin: Origin, work: Work) -> OpportunityState:
    """A new opportunity in its first (or given) stage. Partners must have been checked."""
    domain.check_close_date(draft.expected_close_date)
    stage_set = domain.stage_set_of(stage_sets, pipeline or domain.default_pipeline(draft.deal_model))
    to = domain.resolve_stage(stage_set, stage)
    entry = domain.enter_stage(None, to, origin.at)
    hyperscaler = draft.hyperscaler or domain.hyperscaler_of(origin.source)
    o = OpportunityState(
        id=new_id(), version=1, name=draft.name, pipeline=stage_set.key, stage=to.key,
        outcome=entry.outcome.value, partner_id=draft.partner_id, customer=draft.customer, amount=draft.amount,
        currency=draft.currency, expected_close_date=draft.expected_close_date, owner=draft.owner,
        deal_model=c.DealModel(draft.deal_model).value, source=origin.source.value, external_id=origin.external_id,
        source_modified_at=origin.source_modified_at, hyperscaler=hyperscaler.value if hyperscaler else None,
        ace=_json(draft.ace), gcp=_json(draft.gcp), created_at=origin.source_created_at or origin.at,
        updated_at=origin.at, stage_entered_at=origin.at, closed_at=entry.closed_at, launched_at=entry.launched_at,
    )
    work.new[o.id] = o
    work.history.append(dict(opportunity_id=o.id, from_stage=None, to_stage=to.key, changed_by=origin.actor,
                             changed_at=origin.at))
    if draft.ace and draft.ace.next_steps:
        work.next_steps.append(dict(opportunity_id=o.id, text=draft.ace.next_steps, recorded_by=origin.actor,
                                    recorded_at=origin.at))
    work.events.append(c.OpportunityCreatedV1(
        opportunity=to_contract(o, stage_set, ace=draft.ace, gcp=draft.gcp), correlation_id=origin.correlation_id))
    work.events += _outcome_events(o, entry, origin, draft.ace.closed_lost_reason if draft.ace else None)
    if entry.won and o.partner_id is not None:
        work.partners.add(o.partner_id)
    return o


def plan_change(o: OpportunityState, changes: dict[str, Any], *, stage_sets: dict[str, c.StageSet],
                to_stage: str | None, origin: Origin, work: Work, lost_reason: str | None = None) -> list[str]:
    """Field changes and/or a stage move, applied to `o`; one snapshot event if anything changed.
    Partners must have been checked. Returns the names of what changed."""
    stage_set = domain.stage_set_of(stage_sets, o.pipeline)
    before_won = o.won_part()
    changed: list[str] = []
    parts: dict[str, Any] = {}  # the ACE and GCP parts as models, once read or set: for the snapshot
    for name, value in changes.items():
        if name in ("ace", "gcp"):
            stored = ace_of(o) if name == "ace" else gcp_of(o)
            parts[name] = stored
            if value != stored:
                if name == "ace" and (text := domain.next_steps_changed(stored, value)):
                    work.next_steps.append(dict(opportunity_id=o.id, text=text, recorded_by=origin.actor,
                                                recorded_at=origin.at))
                setattr(o, name, _json(value))
                parts[name] = value
                changed.append(name)
            continue
        if name == "expected_close_date":
            domain.check_close_date(value)
        new_value = value.value if hasattr(value, "value") else value
        if new_value != getattr(o, name):
            setattr(o, name, new_value)
            changed.append(name)
    from_stage = o.stage
    entry: domain.StageEntry | None = None
    if to_stage is not None:
        to = domain.resolve_stage(stage_set, to_stage)
        if to.key != o.stage:
            entry = domain.enter_stage(stage_set.stage(o.stage), to, origin.at, closed_at=o.closed_at,
                                       launched_at=o.launched_at)
            o.stage, o.outcome = to.key, entry.outcome.value
            o.closed_at, o.launched_at, o.stage_entered_at = entry.closed_at, entry.launched_at, origin.at
            work.history.append(dict(opportunity_id=o.id, from_stage=from_stage, to_stage=to.key,
                                     changed_by=origin.actor, changed_at=origin.at))
            changed.append("stage")
            if lost_reason and entry.lost:
                o.ace = _json((ace_of(o) or c.AceState()).model_copy(update={"closed_lost_reason": lost_reason}))
                parts.pop("ace", None)  # read again from the state
    if origin.source_modified_at is not None and origin.source_modified_at != o.source_modified_at:
        o.source_modified_at = origin.source_modified_at
        work.touch(o)
    if not changed:
        return changed
    o.version += 1
    o.updated_at = origin.at
    work.touch(o)
    snapshot = to_contract(o, stage_set, ace=parts.get("ace"), gcp=parts.get("gcp"))
    if entry is not None:
        work.events.append(c.OpportunityStageChangedV1(
            opportunity=snapshot, from_stage=from_stage, to_stage=o.stage, changed_by=origin.actor,
            changed_at=origin.at, correlation_id=origin.correlation_id))
        reason = lost_reason or (snapshot.ace.closed_lost_reason if snapshot.ace else None)
        work.events += _outcome_events(o, entry, origin, reason)
    else:
        work.events.append(c.OpportunityUpdatedV1(opportunity=snapshot, changed=tuple(changed),
                                                  correlation_id=origin.correlation_id))
    after_won = o.won_part()
    if before_won != after_won:
        work.partners |= {p[0] for p in (before_won, after_won) if p}
    return changed


async def _locked(session: AsyncSession, opportunity_id: uuid.UUID, expected_version: int | None
                  ) -> OpportunityState:
    o = await OpportunityRepository(session).get(opportunity_id, for_update=True)
    if o is None:
        raise NotFound(f"no opportunity with id {opportunity_id}", field="opportunity_id")
    if expected_version is not None and expected_version != o.version:
        raise Conflict(f"the opportunity changed since version {expected_version} (now {o.version})",
                       field="expected_version")
    return o


async def _live(session: AsyncSession, opportunity_id: uuid.UUID, expected_version: int | None
                ) -> OpportunityState:
    """The opportunity, locked, for a change a person asks for: a deleted one is restored first."""
    o = await _locked(session, opportunity_id, expected_version)
    if o.deleted_at is not None:
        raise Conflict(f"the deal {o.name!r} is deleted; restore it first", field="opportunity_id")
    return o


# ------------------------------------------------------------------------------- command handlers


async def create_opportunity(session: AsyncSession, cmd: c.CreateOpportunity) -> c.Opportunity:
    draft = Draft(**{name: getattr(cmd, name) for name in EDITABLE})
    now = datetime.now(UTC)
    if cmd.created_at is not None:
        try:
            domain.check_recorded_time(cmd.created_at, now)
        except Invalid as exc:
            raise Invalid(exc.message, field="created_at") from exc
    await check_partners(session, {draft.partner_id})
    stage_sets = await ConfigRepository(session).stage_sets()
    work = Work(actor=cmd.actor)
    o = plan_create(draft, stage_sets=stage_sets, pipeline=cmd.pipeline, stage=cmd.stage, work=work,
                    origin=Origin(actor=cmd.actor, at=cmd.created_at or now, correlation_id=cmd.actor))
    await work.write(session)
    return to_contract(o, stage_sets[o.pipeline])


async def update_opportunity(session: AsyncSession, cmd: c.UpdateOpportunity) -> c.Opportunity:
    o = await _live(session, cmd.opportunity_id, cmd.expected_version)
    sent = {name: getattr(cmd, name) for name in EDITABLE if name in cmd.model_fields_set}
    for required in ("name", "customer", "amount", "currency", "deal_model"):
        if required in sent and sent[required] is None:
            raise Invalid(f"{required} cannot be empty", field=required)
    if sent.get("partner_id") not in (None, o.partner_id):
        await check_partners(session, {sent["partner_id"]})
    stage_sets = await ConfigRepository(session).stage_sets()
    work = Work(actor=cmd.actor)
    plan_change(o, sent, stage_sets=stage_sets, to_stage=None, work=work,
                origin=Origin(actor=cmd.actor, at=datetime.now(UTC), correlation_id=cmd.actor))
    await work.write(session)
    return to_contract(o, stage_sets[o.pipeline])


async def move_opportunity(session: AsyncSession, cmd: c.MoveOpportunity) -> c.Opportunity:
    o = await _live(session, cmd.opportunity_id, cmd.expected_version)
    now = datetime.now(UTC)
    if cmd.occurred_at is not None:
        domain.check_recorded_time(cmd.occurred_at, now, not_before=o.stage_entered_at)
    stage_sets = await ConfigRepository(session).stage_sets()
    work = Work(actor=cmd.actor)
    plan_change(o, {}, stage_sets=stage_sets, to_stage=cmd.stage, work=work, lost_reason=cmd.closed_lost_reason,
                origin=Origin(actor=cmd.actor, at=cmd.occurred_at or now, correlation_id=cmd.actor))
    await work.write(session)
    return to_contract(o, stage_sets[o.pipeline])


async def delete_opportunity(session: AsyncSession, cmd: c.DeleteOpportunity) -> c.Opportunity:
    """Soft delete: hidden from every list, KPI, search, export and the portal until restored."""
    o = await _locked(session, cmd.opportunity_id, None)
    stage_sets = await ConfigRepository(session).stage_sets()
    stage_set = domain.stage_set_of(stage_sets, o.pipeline)
    if o.deleted_at is not None:
        return to_contract(o, stage_set)
    if o.outcome == c.Outcome.won.value:
        raise Conflict(f"the deal {o.name!r} is won: it counts as revenue and earns commission; reopen it or "
                       "mark it lost before deleting it", field="opportunity_id")
    now = datetime.now(UTC)
    o.deleted_at = o.updated_at = now
    o.version += 1
    await OpportunityRepository(session).update([o])
    await add_events(session, SCHEMA, [c.OpportunityDeletedV1(opportunity=to_contract(o, stage_set),
                                                              correlation_id=cmd.actor)])
    return to_contract(o, stage_set)


async def restore_opportunity(session: AsyncSession, cmd: c.RestoreOpportunity) -> c.Opportunity:
    o = await _locked(session, cmd.opportunity_id, None)
    stage_set = domain.stage_set_of(await ConfigRepository(session).stage_sets(), o.pipeline)
    if o.deleted_at is None:
        return to_contract(o, stage_set)
    now = datetime.now(UTC)
    if now - o.deleted_at > timedelta(days=c.RESTORE_DAYS):
        raise Conflict(f"the deal {o.name!r} was deleted more than {c.RESTORE_DAYS} days ago and can no longer "
                       "be restored", field="opportunity_id")
    if o.partner_id is not None and (partner := await PartnerRepository(session).get(o.partner_id)) is not None \
            and partner.deleted_at is not None:
        raise Conflict(f"the deal's partner {partner.name!r} is deleted; restore the partner first",
                       field="opportunity_id")
    o.deleted_at = None
    o.updated_at = now
    o.version += 1
    await OpportunityRepository(session).update([o])
    await add_events(session, SCHEMA, [c.OpportunityRestoredV1(opportunity=to_contract(o, stage_set),
                                                               correlation_id=cmd.actor)])
    return to_contract(o, stage_set)


async def get_opportunity(session: AsyncSession, cmd: c.GetOpportunity) -> c.OpportunityDetail:
    repo = OpportunityRepository(session)
    o = await repo.get(cmd.opportunity_id)
    if o is None:
        raise NotFound(f"no opportunity with id {cmd.opportunity_id}", field="opportunity_id")
    stage_set = domain.stage_set_of(await ConfigRepository(session).stage_sets(), o.pipeline)
    return c.OpportunityDetail(
        **to_contract(o, stage_set).model_dump(),
        stage_history=[c.StageChange(from_stage=h.from_stage, to_stage=h.to_stage, changed_by=h.changed_by,
                                     changed_at=h.changed_at) for h in await repo.stage_history(o.id)],
        next_steps_history=[c.NextStep(text=n.text, recorded_by=n.recorded_by, recorded_at=n.recorded_at)
                            for n in await repo.next_steps(o.id)],
    )


async def list_opportunities(session: AsyncSession, cmd: c.ListOpportunities) -> c.OpportunityList:
    config = ConfigRepository(session)
    quarter = None
    if cmd.quarter:
        settings = await config.settings()
        quarter = Quarter.parse(cmd.quarter, settings.fiscal_year_start_month).range()
    rows, total = await OpportunityRepository(session).list(cmd, quarter)
    stage_sets = await config.stage_sets()
    items = [to_contract(o, stage_sets.get(o.pipeline) or c.RESALE_STAGE_SET) for o in rows]
    return c.OpportunityList(items=items, total=total, offset=cmd.offset, limit=cmd.limit)
