"""Partner activity per month, counted from the service's copy of the pipeline (deal changes) and the
interactions logged with the partner's contacts, beside the quality figures entered per month. Never
commits."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import activity as a
from contracts import pipeline as pc
from contracts.quarters import add_months
from runtime.errors import NotFound
from services.relationships.activity.models import QualityRow
from services.relationships.contacts.models import Interaction
from services.relationships.pipeline_copy import DealChangeRow, DealRow, PartnerRow


def _label(day: date) -> str:
    return day.strftime("%Y-%m")


async def _known(session: AsyncSession, partner_id) -> None:  # type: ignore[no-untyped-def]
    if await session.get(PartnerRow, partner_id) is None:
        raise NotFound(f"no partner with id {partner_id}", field="partner_id")


async def activity(session: AsyncSession, cmd: a.GetPartnerActivity) -> a.PartnerActivity:
    await _known(session, cmd.partner_id)
    end = add_months(a.first_day(cmd.until), 1)
    start = add_months(end, -cmd.months)
    counts: dict[str, dict[str, int]] = {}
    month = func.date_trunc("month", DealChangeRow.at)
    changes = (select(month, DealChangeRow.kind, DealChangeRow.to_stage, func.count())
               .join(DealRow, DealRow.id == DealChangeRow.opportunity_id)
               .where(DealRow.partner_id == cmd.partner_id, DealChangeRow.at >= start, DealChangeRow.at < end,
                      DealChangeRow.kind.in_(("created", "moved")), DealRow.outcome != pc.DELETED_OUTCOME)
               .group_by(month, DealChangeRow.kind, DealChangeRow.to_stage))
    for at, kind, to_stage, n in await session.execute(changes):
        row = counts.setdefault(_label(at), {})
        if kind == "created":
            row["leads"] = row.get("leads", 0) + n
            continue
        for field, stages in a.STAGES.items():
            if to_stage in stages:
                row[field] = row.get(field, 0) + n
    met = func.date_trunc("month", Interaction.occurred_at)
    for at, n in await session.execute(
            select(met, func.count()).where(Interaction.partner_id == cmd.partner_id, Interaction.kind == "meeting",
                                            Interaction.occurred_at >= start, Interaction.occurred_at < end)
            .group_by(met)):
        counts.setdefault(_label(at), {})["meetings"] = n
    quality = {_label(q.month): q for q in await session.scalars(select(QualityRow).where(
        QualityRow.partner_id == cmd.partner_id, QualityRow.month >= start, QualityRow.month < end))}
    months = []
    for i in range(cmd.months):
        label = _label(add_months(start, i))
        c, q = counts.get(label, {}), quality.get(label)
        months.append(a.MonthFigures(
            month=label, leads=c.get("leads", 0), opportunities=c.get("opportunities", 0), demos=c.get("demos", 0),
            proposals=c.get("proposals", 0), meetings=c.get("meetings", 0),
            lead_quality=q.lead_quality if q else None,
            customer_satisfaction=q.customer_satisfaction if q else None,
            implementation_success=q.implementation_success if q else None))
    return a.PartnerActivity(partner_id=cmd.partner_id, months=months)


FIELDS = ("lead_quality", "customer_satisfaction", "implementation_success")


async def set_quality(session: AsyncSession, cmd: a.SetPartnerQuality) -> a.MonthFigures:
    await _known(session, cmd.partner_id)
    sent = {f: getattr(cmd, f) for f in FIELDS if f in cmd.model_fields_set}
    values = {"partner_id": cmd.partner_id, "month": a.first_day(cmd.month), "version": 1,
              "updated_by": cmd.actor, "updated_at": datetime.now(UTC), **sent}
    stmt = insert(QualityRow).values(**values)
    await session.execute(stmt.on_conflict_do_update(
        index_elements=[QualityRow.partner_id, QualityRow.month],
        set_={**{f: getattr(stmt.excluded, f) for f in sent}, "version": QualityRow.version + 1,
              "updated_by": stmt.excluded.updated_by, "updated_at": stmt.excluded.updated_at}))
    found = await activity(session, a.GetPartnerActivity(partner_id=cmd.partner_id, until=cmd.month, months=1))
    return found.months[0]
