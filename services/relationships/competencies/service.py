"""Competency use cases: track one, renew it, keep its checklist; every change recomputes its deadlines
(the renewal, each open item with a due date) and publishes its snapshot. Never commits."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import competencies as k
from contracts import deadlines as d
from contracts.base import utc_now
from runtime.errors import Conflict, Invalid, NotFound
from runtime.outbox import add_events
from services.relationships.competencies.models import CompetencyRow, RequirementRow
from services.relationships.deadlines import service as deadline_service

SCHEMA = "relationships"
MAX_ITEMS = 100


def wanted(c: CompetencyRow, items: list[RequirementRow]) -> list[deadline_service.Wanted]:
    """The renewal (while there is a renewal date) and every item with a due date: met once complete."""
    base = f"competency:{c.id}"
    out = []
    if c.renewal_date is not None:
        out.append(deadline_service.Wanted(
            key=f"{base}:renewal", kind=d.DeadlineKind.competency_renewal, status=d.DeadlineStatus.open,
            title=f"{c.name} ({c.hyperscaler.upper()}) renewal", due_date=c.renewal_date))
    for item in items:
        if item.due_date is None:
            continue
        out.append(deadline_service.Wanted(
            key=f"{base}:requirement:{item.id}", kind=d.DeadlineKind.competency_requirement_due,
            status=d.DeadlineStatus.met if item.done >= item.required else d.DeadlineStatus.open,
            title=f"{c.name}: {item.title}", due_date=item.due_date))
    return out


async def _items(session: AsyncSession, ids: list[uuid.UUID]) -> dict[uuid.UUID, list[RequirementRow]]:
    out: dict[uuid.UUID, list[RequirementRow]] = {i: [] for i in ids}
    if ids:
        for r in await session.scalars(select(RequirementRow).where(RequirementRow.competency_id.in_(ids))
                                       .order_by(RequirementRow.position)):
            out[r.competency_id].append(r)
    return out


def _snapshot(c: CompetencyRow, items: list[RequirementRow], deadlines: list[d.Deadline]) -> k.Competency:
    today = datetime.now(UTC).date()
    reqs = [k.Requirement(id=i.id, kind=k.RequirementKind(i.kind), title=i.title, required=i.required, done=i.done,
                          complete=i.done >= i.required, owner=i.owner, due_date=i.due_date) for i in items]
    return k.Competency(
        id=c.id, version=c.version, hyperscaler=c.hyperscaler, name=c.name, kind=k.CompetencyKind(c.kind),
        status=k.competency_status(c.achieved_on, c.renewal_date, today), achieved_on=c.achieved_on,
        renewal_date=c.renewal_date, time_zone=c.time_zone, owner=c.owner, notes=c.notes, requirements=reqs,
        complete_items=sum(1 for r in reqs if r.complete), total_items=len(reqs), deadlines=deadlines,
        created_at=c.created_at, updated_at=c.updated_at)


async def _publish(session: AsyncSession, c: CompetencyRow) -> k.Competency:
    await session.flush()
    items = (await _items(session, [c.id]))[c.id]
    deadlines = await deadline_service.sync(
        session, regarding=d.Regarding.competency, regarding_id=c.id, link=f"/competencies/{c.id}", owner=c.owner,
        currency=None, time_zone=c.time_zone, wanted=wanted(c, items))
    snapshot = _snapshot(c, items, deadlines)
    await add_events(session, SCHEMA, [k.CompetencyChangedV1(competency=snapshot)])
    return snapshot


def _check(c: CompetencyRow) -> None:
    if c.achieved_on is not None and c.renewal_date is not None and c.renewal_date <= c.achieved_on:
        raise Invalid("the renewal date must come after the date it was achieved", field="renewal_date")


async def create(session: AsyncSession, cmd: k.CreateCompetency) -> k.Competency:
    now = utc_now()
    c = CompetencyRow(id=uuid.uuid4(), version=1, hyperscaler=cmd.hyperscaler.value, name=cmd.name,
                      kind=cmd.kind.value, achieved_on=cmd.achieved_on, renewal_date=cmd.renewal_date,
                      time_zone=cmd.time_zone, owner=cmd.owner, notes=cmd.notes, created_at=now, updated_at=now)
    _check(c)
    session.add(c)
    return await _publish(session, c)


async def _locked(session: AsyncSession, competency_id: uuid.UUID) -> CompetencyRow:
    c = await session.get(CompetencyRow, competency_id, with_for_update=True)
    if c is None:
        raise NotFound(f"no competency {competency_id}", field="competency_id")
    return c


def _touch(c: CompetencyRow) -> None:
    c.version += 1
    c.updated_at = utc_now()


async def update(session: AsyncSession, cmd: k.UpdateCompetency) -> k.Competency:
    c = await _locked(session, cmd.competency_id)
    if cmd.expected_version is not None and cmd.expected_version != c.version:
        raise Conflict(f"the competency changed since version {cmd.expected_version}; reload it",
                       field="expected_version")
    fields = cmd.model_dump(exclude_unset=True, exclude={"competency_id", "expected_version", "actor"})
    for required in ("name", "kind", "time_zone"):
        if required in fields and fields[required] is None:
            raise Invalid("cannot be cleared", field=required)
    changed = {key: v for key, v in fields.items() if getattr(c, key) != (v.value if hasattr(v, "value") else v)}
    if not changed:
        return await get(session, k.GetCompetency(competency_id=c.id))
    for key, v in changed.items():
        setattr(c, key, v.value if hasattr(v, "value") else v)
    _check(c)
    _touch(c)
    return await _publish(session, c)


async def add_requirement(session: AsyncSession, cmd: k.AddRequirement) -> k.Competency:
    c = await _locked(session, cmd.competency_id)
    count = await session.scalar(select(func.count()).where(RequirementRow.competency_id == c.id)) or 0
    if count >= MAX_ITEMS:
        raise Invalid(f"a checklist has at most {MAX_ITEMS} items", field="title")
    session.add(RequirementRow(id=uuid.uuid4(), competency_id=c.id, position=count + 1, kind=cmd.kind.value,
                               title=cmd.title, required=cmd.required, done=min(cmd.done, cmd.required),
                               owner=cmd.owner, due_date=cmd.due_date))
    _touch(c)
    return await _publish(session, c)


async def update_requirement(session: AsyncSession, cmd: k.UpdateRequirement) -> k.Competency:
    c = await _locked(session, cmd.competency_id)
    item = await session.scalar(select(RequirementRow).where(RequirementRow.id == cmd.requirement_id,
                                                             RequirementRow.competency_id == c.id).with_for_update())
    if item is None:
        raise NotFound(f"no checklist item {cmd.requirement_id} on this competency", field="requirement_id")
    fields = cmd.model_dump(exclude_unset=True, exclude={"competency_id", "requirement_id", "actor"})
    if fields.get("removed"):
        await session.delete(item)
    else:
        for required in ("title", "required", "done"):
            if required in fields and fields[required] is None:
                raise Invalid("cannot be cleared", field=required)
        fields.pop("removed", None)
        for key, v in fields.items():
            setattr(item, key, v)
        if item.done > item.required:
            raise Invalid(f"{item.done} done of {item.required} required", field="done")
    _touch(c)
    return await _publish(session, c)


async def get(session: AsyncSession, cmd: k.GetCompetency) -> k.Competency:
    c = await session.get(CompetencyRow, cmd.competency_id)
    if c is None:
        raise NotFound(f"no competency {cmd.competency_id}", field="competency_id")
    items = (await _items(session, [c.id]))[c.id]
    return _snapshot(c, items, (await deadline_service.of(session, [c.id]))[c.id])


async def listing(session: AsyncSession, cmd: k.ListCompetencies) -> k.CompetencyList:
    query = select(CompetencyRow)
    if cmd.hyperscaler is not None:
        query = query.where(CompetencyRow.hyperscaler == cmd.hyperscaler.value)
    rows = list((await session.scalars(query.order_by(CompetencyRow.renewal_date.asc().nulls_last(),
                                                      CompetencyRow.name).limit(1000))).all())
    ids = [r.id for r in rows]
    items, deadlines = await _items(session, ids), await deadline_service.of(session, ids)
    return k.CompetencyList(items=[_snapshot(r, items[r.id], deadlines[r.id]) for r in rows])
