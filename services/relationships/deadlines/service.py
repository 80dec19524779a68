"""Keep the published deadlines of one thing (a fund request, a competency) equal to what its rules say
now: each deadline that changed is stored and published (`DeadlineChangedV1`, version + 1); one it no
longer has is cancelled. Never commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import deadlines as d
from runtime.outbox import add_events
from services.relationships.deadlines.models import Deadline

SCHEMA = "relationships"


@dataclass(frozen=True)
class Wanted:
    """A deadline as an area's rules computed it."""

    key: str
    kind: d.DeadlineKind
    status: d.DeadlineStatus
    title: str
    due_date: date
    amount_at_stake: Decimal | None = None


def to_contract(row: Deadline) -> d.Deadline:
    return d.Deadline(key=row.key, kind=d.DeadlineKind(row.kind), status=d.DeadlineStatus(row.status),
                      title=row.title, due_date=row.due_date, time_zone=row.time_zone, due_at=row.due_at,
                      regarding=d.Regarding(row.regarding), regarding_id=row.regarding_id, link=row.link,
                      owner=row.owner, amount_at_stake=row.amount_at_stake, currency=row.currency,
                      version=row.version)


def ordered(items: Sequence[d.Deadline]) -> list[d.Deadline]:
    """Open ones first, soonest first; then the rest by date."""
    return sorted(items, key=lambda x: (x.status != d.DeadlineStatus.open, x.due_date, x.key))


async def sync(session: AsyncSession, *, regarding: d.Regarding, regarding_id: uuid.UUID, link: str,
               owner: str | None, currency: str | None, time_zone: str, wanted: Sequence[Wanted],
               correlation_id: str | None = None) -> list[d.Deadline]:
    rows = {r.key: r for r in (await session.scalars(
        select(Deadline).where(Deadline.regarding_id == regarding_id).with_for_update())).all()}
    changed: list[Deadline] = []
    for w in wanted:
        values = {"kind": w.kind.value, "status": w.status.value, "title": w.title, "due_date": w.due_date,
                  "time_zone": time_zone, "due_at": d.end_of_day(w.due_date, time_zone),
                  "regarding": regarding.value, "regarding_id": regarding_id, "link": link, "owner": owner,
                  "amount_at_stake": w.amount_at_stake, "currency": currency if w.amount_at_stake is not None else None}
        row = rows.get(w.key)
        if row is None:
            row = Deadline(key=w.key, version=1, **values)
            session.add(row)
            rows[w.key] = row
            changed.append(row)
        elif any(_differs(getattr(row, k), v) for k, v in values.items()):
            for k, v in values.items():
                setattr(row, k, v)
            row.version += 1
            changed.append(row)
    keys = {w.key for w in wanted}
    for key, row in rows.items():
        if key not in keys and row.status != d.DeadlineStatus.cancelled:
            row.status = d.DeadlineStatus.cancelled.value
            row.version += 1
            changed.append(row)
    if changed:
        await session.flush()
        await add_events(session, SCHEMA, [d.DeadlineChangedV1(deadline=to_contract(r), correlation_id=correlation_id)
                                           for r in changed])
    return ordered([to_contract(r) for r in rows.values() if r.status != d.DeadlineStatus.cancelled])


def _differs(stored: object, new: object) -> bool:
    if isinstance(stored, datetime) and isinstance(new, datetime):
        return stored != new
    if isinstance(stored, Decimal) or isinstance(new, Decimal):
        return (None if stored is None else Decimal(stored)) != (None if new is None else Decimal(new))
    return stored != new


async def of(session: AsyncSession, regarding_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[d.Deadline]]:
    """The deadlines (not cancelled) of several things, each list ordered."""
    out: dict[uuid.UUID, list[d.Deadline]] = {i: [] for i in regarding_ids}
    if not regarding_ids:
        return out
    rows = (await session.scalars(select(Deadline).where(Deadline.regarding_id.in_(list(regarding_ids)),
                                                         Deadline.status != d.DeadlineStatus.cancelled.value))).all()
    for r in rows:
        out[r.regarding_id].append(to_contract(r))
    return {k: ordered(v) for k, v in out.items()}
