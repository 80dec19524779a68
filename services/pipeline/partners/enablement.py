"""The scorecard's feasibility criterion from the relationships service's enablement score
(contracts/enablement.py), where the setting `feasibility_from_enablement` is on: the score's 0-100 as
the criterion's 0-10. Each partner's latest score is kept (highest version wins: events may come twice
or out of order); a partner this service does not know is kept too, and applied if it appears."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import enablement as e
from contracts import pipeline as c
from runtime.outbox import add_events
from services.pipeline.config.repository import ConfigRepository
from services.pipeline.models import SCHEMA, Partner, PartnerEnablement
from services.pipeline.partners import domain
from services.pipeline.partners.service import scorecard_of, to_contract

PLACES = Decimal("0.01")


def feasibility_of(score: Decimal) -> Decimal:
    return (score / 10).quantize(PLACES, rounding=ROUND_HALF_UP)


async def _apply(session: AsyncSession, scores: dict, settings: c.PipelineSettings, actor: str | None) -> None:
    """Set the feasibility of each partner (id -> enablement score) that has a score and moved."""
    if not scores:
        return
    events = []
    for partner in await session.scalars(select(Partner).where(Partner.id.in_(sorted(scores)),
                                                               Partner.archived_at.is_(None))
                                         .order_by(Partner.id).with_for_update()):
        feasibility = feasibility_of(scores[partner.id])
        if partner.feasibility == feasibility:
            continue
        partner.feasibility = feasibility
        card = scorecard_of(partner)
        partner.score = domain.weighted_score(card, settings.scorecard_weights) if card else None
        partner.version += 1
        partner.updated_at = datetime.now(UTC)
        events.append(c.PartnerUpdatedV1(partner=to_contract(partner), changed=("scorecard",), correlation_id=actor))
    await session.flush()
    await add_events(session, SCHEMA, events)


async def on_scores(session: AsyncSession, events: Sequence[e.EnablementScoreChangedV1]) -> None:
    latest: dict = {}
    for ev in events:
        if ev.partner_id not in latest or ev.version > latest[ev.partner_id].version:
            latest[ev.partner_id] = ev
    applied: dict = {}
    for pid in sorted(latest):
        ev = latest[pid]
        stmt = insert(PartnerEnablement).values(partner_id=pid, score=ev.score, version=ev.version, as_of=ev.as_of)
        stmt = stmt.on_conflict_do_update(
            index_elements=[PartnerEnablement.partner_id],
            set_={"score": stmt.excluded.score, "version": stmt.excluded.version, "as_of": stmt.excluded.as_of},
            where=PartnerEnablement.version < stmt.excluded.version)
        if await session.scalar(stmt.returning(PartnerEnablement.partner_id)) is not None and ev.score is not None:
            applied[pid] = ev.score
    settings = await ConfigRepository(session).settings()
    if settings.feasibility_from_enablement:
        await _apply(session, applied, settings, actor=None)


async def apply_all(session: AsyncSession, settings: c.PipelineSettings, *, actor: str | None) -> None:
    """The setting was just turned on: every known score to its partner's feasibility."""
    rows = await session.execute(select(PartnerEnablement.partner_id, PartnerEnablement.score)
                                 .where(PartnerEnablement.score.is_not(None)))
    await _apply(session, {pid: score for pid, score in rows}, settings, actor=actor)
