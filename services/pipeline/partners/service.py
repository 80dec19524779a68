"""Partner use cases. Never commits: the command or message boundary does."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from contracts import pipeline as c
from runtime import formatting
from runtime.errors import Conflict, NotFound
from runtime.outbox import add_event, add_events
from services.pipeline.config import domain as config_domain
from services.pipeline.config.repository import ConfigRepository
from services.pipeline.models import SCHEMA, Partner
from services.pipeline.opportunities.repository import OpportunityRepository
from services.pipeline.partners import domain
from services.pipeline.partners.repository import PartnerRepository

_FIELDS = ("name", "type", "tier", "tier_auto", "status", "owner", "scorecard")


def scorecard_of(p: Partner) -> c.Scorecard | None:
    if p.strategic_fit is None or p.revenue_potential is None or p.feasibility is None or p.risk is None:
        return None
    return c.Scorecard(strategic_fit=p.strategic_fit, revenue_potential=p.revenue_potential,
                       feasibility=p.feasibility, risk=p.risk)


def to_contract(p: Partner, rank: int | None = None) -> c.Partner:
    return c.Partner(
        id=p.id, name=p.name, type=c.PartnerType(p.type), tier=c.PartnerTier(p.tier), tier_auto=p.tier_auto,
        status=c.PartnerStatus(p.status), owner=p.owner, scorecard=scorecard_of(p), score=p.score, rank=rank,
        trailing_revenue=p.trailing_revenue, archived=p.archived_at is not None, deleted_at=p.deleted_at,
        version=p.version,
        created_at=p.created_at, updated_at=p.updated_at,
    )


def _set_scorecard(p: Partner, card: c.Scorecard | None, weights: c.ScorecardWeights) -> None:
    p.strategic_fit = card.strategic_fit if card else None
    p.revenue_potential = card.revenue_potential if card else None
    p.feasibility = card.feasibility if card else None
    p.risk = card.risk if card else None
    p.score = domain.weighted_score(card, weights) if card else None


async def create_partner(session: AsyncSession, cmd: c.CreatePartner) -> c.Partner:
    repo = PartnerRepository(session)
    if await repo.name_taken(cmd.name):
        raise Conflict(f"a partner named {cmd.name!r} already exists", field="name")
    settings = await ConfigRepository(session).settings()
    now = datetime.now(UTC)
    partner = Partner(id=uuid.uuid4(), name=cmd.name, type=cmd.type.value,
                      tier=(cmd.tier or c.PartnerTier.bronze).value, tier_auto=cmd.tier is None,
                      status=cmd.status.value, owner=cmd.owner, version=1, created_at=now, updated_at=now)
    _set_scorecard(partner, cmd.scorecard, settings.scorecard_weights)
    partner = await repo.add(partner)
    await add_event(session, SCHEMA, c.PartnerCreatedV1(
        partner_id=partner.id, name=partner.name, type=cmd.type, tier=c.PartnerTier(partner.tier),
        status=cmd.status, owner=partner.owner, version=partner.version, correlation_id=cmd.actor,
    ))
    return to_contract(partner, await repo.rank_of(partner.id))


async def _locked(repo: PartnerRepository, partner_id: uuid.UUID, expected_version: int | None = None) -> Partner:
    partner = await repo.get(partner_id, for_update=True)
    if partner is None:
        raise NotFound(f"no partner with id {partner_id}", field="partner_id")
    if expected_version is not None and expected_version != partner.version:
        raise Conflict(f"the partner changed since version {expected_version} (now {partner.version})",
                       field="expected_version")
    return partner


async def update_partner(session: AsyncSession, cmd: c.UpdatePartner) -> c.Partner:
    repo = PartnerRepository(session)
    partner = await _locked(repo, cmd.partner_id, cmd.expected_version)
    if partner.deleted_at is not None:
        raise Conflict(f"the partner {partner.name!r} is deleted; restore it first", field="partner_id")
    if partner.archived_at is not None:
        raise Conflict("the partner is archived", field="partner_id")
    settings = await ConfigRepository(session).settings()
    sent = cmd.model_fields_set & set(_FIELDS)
    changed: list[str] = []
    if "name" in sent and cmd.name is not None and cmd.name != partner.name:
        if await repo.name_taken(cmd.name, other_than=partner.id):
            raise Conflict(f"a partner named {cmd.name!r} already exists", field="name")
        partner.name = cmd.name
        changed.append("name")
    for field in ("type", "status"):
        value = getattr(cmd, field)
        if field in sent and value is not None and value.value != getattr(partner, field):
            setattr(partner, field, value.value)
            changed.append(field)
    if "owner" in sent and cmd.owner != partner.owner:
        partner.owner = cmd.owner
        changed.append("owner")
    if "scorecard" in sent and cmd.scorecard != scorecard_of(partner):
        _set_scorecard(partner, cmd.scorecard, settings.scorecard_weights)
        changed.append("scorecard")
    if "tier" in sent and cmd.tier is not None and (cmd.tier.value != partner.tier or partner.tier_auto):
        partner.tier, partner.tier_auto = cmd.tier.value, False
        changed.append("tier")
    release = "tier_auto" in sent and cmd.tier_auto and not partner.tier_auto and "tier" not in sent
    if release:
        partner.tier_auto = True
        changed.append("tier_auto")
    if changed:
        partner.version += 1
        partner.updated_at = datetime.now(UTC)
        await session.flush()
        await add_event(session, SCHEMA, c.PartnerUpdatedV1(
            partner=to_contract(partner), changed=tuple(changed), correlation_id=cmd.actor))
    if release:
        await recompute(session, [partner.id], settings, actor=cmd.actor)
    return to_contract(partner, await repo.rank_of(partner.id))


async def archive_partner(session: AsyncSession, cmd: c.ArchivePartner) -> c.Partner:
    repo = PartnerRepository(session)
    partner = await _locked(repo, cmd.partner_id)
    if partner.deleted_at is not None:
        raise Conflict(f"the partner {partner.name!r} is deleted; restore it first", field="partner_id")
    if partner.archived_at is None:
        partner.archived_at = partner.updated_at = datetime.now(UTC)
        partner.version += 1
        await session.flush()
        await add_event(session, SCHEMA, c.PartnerArchivedV1(partner=to_contract(partner),
                                                             correlation_id=cmd.actor))
    return to_contract(partner)


async def delete_partner(session: AsyncSession, cmd: c.DeletePartner) -> c.Partner:
    """Soft delete, refused while money is on the commission ledger (as the commissions service's events
    told this service: no call across services) or while deals of the partner are not deleted."""
    repo = PartnerRepository(session)
    partner = await _locked(repo, cmd.partner_id)
    if partner.deleted_at is not None:
        return to_contract(partner)
    if await repo.on_ledger(partner.id):
        raise Conflict(f"{partner.name} has money on the commission ledger (entries accrued, approved or paid); "
                       "a partner with commission history cannot be deleted: archive it instead", field="partner_id")
    deals = await OpportunityRepository(session).live_of_partner(partner.id)
    if deals:
        raise Conflict(f"{partner.name} has {formatting.count(deals, 'deal')} not deleted; delete or move them "
                       "first, or archive the partner instead", field="partner_id")
    partner.deleted_at = partner.updated_at = datetime.now(UTC)
    partner.version += 1
    await session.flush()
    await add_event(session, SCHEMA, c.PartnerDeletedV1(partner=to_contract(partner), correlation_id=cmd.actor))
    return to_contract(partner)


async def restore_partner(session: AsyncSession, cmd: c.RestorePartner) -> c.Partner:
    """Undo an archive (at any time) or a delete (within the restore window)."""
    repo = PartnerRepository(session)
    partner = await _locked(repo, cmd.partner_id)
    now = datetime.now(UTC)
    if partner.deleted_at is None and partner.archived_at is None:
        return to_contract(partner, await repo.rank_of(partner.id))
    if partner.deleted_at is not None and now - partner.deleted_at > timedelta(days=c.RESTORE_DAYS):
        raise Conflict(f"{partner.name} was deleted more than {c.RESTORE_DAYS} days ago and can no longer be "
                       "restored", field="partner_id")
    partner.deleted_at = partner.archived_at = None
    partner.updated_at = now
    partner.version += 1
    await session.flush()
    await add_event(session, SCHEMA, c.PartnerRestoredV1(partner=to_contract(partner), correlation_id=cmd.actor))
    return to_contract(partner, await repo.rank_of(partner.id))


async def on_entries_posted(session: AsyncSession, partner_ids: set[uuid.UUID], at: datetime) -> None:
    """The commissions service posted ledger entries for these partners: they are never deleted."""
    await PartnerRepository(session).add_ledger_partners(partner_ids, at)


async def get_partner(session: AsyncSession, cmd: c.GetPartner) -> c.Partner:
    repo = PartnerRepository(session)
    partner = await repo.get(cmd.partner_id)
    if partner is None:
        raise NotFound(f"no partner with id {cmd.partner_id}", field="partner_id")
    return to_contract(partner, await repo.rank_of(partner.id))


async def list_partners(session: AsyncSession, cmd: c.ListPartners) -> c.PartnerList:
    rows, total = await PartnerRepository(session).list(cmd)
    return c.PartnerList(items=[to_contract(p, r) for p, r in rows], total=total, offset=cmd.offset,
                         limit=cmd.limit)


async def recompute_tiers(session: AsyncSession, cmd: c.RecomputeTiers) -> c.TierRecomputation:
    repo = PartnerRepository(session)
    settings = await ConfigRepository(session).settings()
    if cmd.partner_id is not None:
        if await repo.get(cmd.partner_id) is None:
            raise NotFound(f"no partner with id {cmd.partner_id}", field="partner_id")
        ids = [cmd.partner_id]
    else:
        ids = await repo.active_ids()
    changes = await recompute(session, ids, settings, actor=cmd.actor)
    return c.TierRecomputation(partners_checked=len(ids), changed=changes)


async def recompute(session: AsyncSession, partner_ids: Iterable[uuid.UUID], settings: c.PipelineSettings,
                    *, actor: str | None = None, now: datetime | None = None) -> list[c.PartnerTierChange]:
    """Keep each active partner's trailing won revenue (every partner's page and export shows it, a
    pinned tier's too: hyperscalers are usually pinned) and set each auto-tier partner's tier from it;
    emit an event per real tier change."""
    repo = PartnerRepository(session)
    ids = sorted(set(partner_ids))
    since = (now or datetime.now(UTC)) - timedelta(days=settings.tier_window_days)
    changes: list[c.PartnerTierChange] = []
    events = []
    await session.flush()  # the statements below read the partners as stored
    for start in range(0, len(ids), 1000):
        chunk = ids[start:start + 1000]
        won = await repo.won_since(chunk, since)
        revenues: dict[uuid.UUID, Decimal] = {}
        new_tiers: dict[uuid.UUID, tuple[Decimal, c.PartnerTier]] = {}
        for state in await repo.tier_states(chunk):
            if state.archived_at is not None:
                continue
            revenue = config_domain.total_in_reporting(won.get(state.id, {}), settings)
            tier = domain.tier_for(revenue, settings.tier_thresholds) if state.tier_auto else None
            if tier is not None and tier.value != state.tier:
                new_tiers[state.id] = (revenue, tier)
            elif revenue != state.trailing_revenue:
                revenues[state.id] = revenue
        # Most partners' revenue moves without their tier: a plain update. The few whose tier changes are
        # loaded whole, for their event.
        await repo.set_trailing_revenues(revenues)
        for partner in await repo.get_many(sorted(new_tiers), for_update=True) if new_tiers else ():
            revenue, tier = new_tiers[partner.id]
            partner.trailing_revenue = revenue
            before = c.PartnerTier(partner.tier)
            partner.tier = tier.value
            partner.version += 1
            partner.updated_at = datetime.now(UTC)
            changes.append(c.PartnerTierChange(partner_id=partner.id, from_tier=before, to_tier=tier,
                                               trailing_revenue=revenue))
            events.append(c.PartnerTierChangedV1(
                partner=to_contract(partner), from_tier=before, to_tier=tier, trailing_revenue=revenue,
                currency=settings.reporting_currency, correlation_id=actor))
    await session.flush()
    await add_events(session, SCHEMA, events)
    return changes


async def rescore_all(session: AsyncSession, weights: c.ScorecardWeights, *, actor: str | None) -> int:
    """New weights: every scored partner's score again; an update event for each that moved."""
    repo = PartnerRepository(session)
    events = []
    for partner in await repo.scored():
        card = scorecard_of(partner)
        score = domain.weighted_score(card, weights) if card else None
        if score != partner.score:
            partner.score = score
            partner.version += 1
            partner.updated_at = datetime.now(UTC)
            events.append(c.PartnerUpdatedV1(partner=to_contract(partner), changed=("score",), correlation_id=actor))
    await session.flush()
    await add_events(session, SCHEMA, events)
    return len(events)
