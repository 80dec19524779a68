"""Tasks: create, change (done, dropped with a reason, reopened), list. Never commits."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from contracts import week as w
from runtime.errors import Conflict, Forbidden, Invalid, NotFound
from runtime.outbox import add_event
from services.relationships.week import service, views
from services.relationships.week.models import SCHEMA, TaskRow
from services.relationships.week.repository import WeekRepository


async def check_link(repo: WeekRepository, link: w.TaskLink | None, field: str = "link.id") -> None:
    """Links to deals and partners must name ones the pipeline told us about; contacts and fund requests
    belong to other areas of this service and are taken as given."""
    if link is None:
        return
    if link.kind == w.LinkKind.opportunity and not await repo.deals([link.id]):
        raise Invalid(f"no deal {link.id}", field=field)
    if link.kind == w.LinkKind.partner and not await repo.partners([link.id]):
        raise Invalid(f"no partner {link.id}", field=field)


async def new_task(session: AsyncSession, *, owner: str, title: str, due_date: date, link: w.TaskLink | None,
                   week: date, actor: str | None, from_update_id: uuid.UUID | None = None,
                   from_line_key: str | None = None) -> TaskRow:
    row = await WeekRepository(session).add_task(TaskRow(
        id=uuid.uuid4(), owner=owner, title=title, due_date=due_date,
        link_kind=link.kind.value if link else None, link_id=link.id if link else None,
        link_label=link.label if link else None, status="open", week=week, first_week=week, carried=0,
        from_update_id=from_update_id, from_line_key=from_line_key, created_by=actor, created_at=service.now(),
        version=1))
    await add_event(session, SCHEMA, w.TaskCreatedV1(task=views.task(row), actor=actor))
    return row


async def create_task(session: AsyncSession, cmd: w.CreateTask) -> w.Task:
    repo = WeekRepository(session)
    await check_link(repo, cmd.link)
    week = service.monday(cmd.week) if cmd.week else (await service.current_week(session))[0]
    row = await new_task(session, owner=cmd.owner, title=cmd.title, due_date=cmd.due_date, link=cmd.link,
                         week=week, actor=cmd.actor)
    return views.task(row)


async def change_task(session: AsyncSession, cmd: w.ChangeTask) -> w.Task:
    repo = WeekRepository(session)
    row = await repo.task(cmd.task_id, lock=True)
    if row is None:
        raise NotFound(f"no task {cmd.task_id}", field="task_id")
    if cmd.as_owner is not None and row.owner != cmd.as_owner:
        raise Forbidden("members change their own tasks; managers anyone's", field="task_id")
    if row.version != cmd.version:
        raise Conflict(f"the task changed since version {cmd.version} (now {row.version}); reload it",
                       field="version")
    changed = False
    for field in ("title", "owner", "due_date"):
        value = getattr(cmd, field)
        if value is not None and value != getattr(row, field):
            setattr(row, field, value)
            changed = True
    if cmd.status is not None and cmd.status.value != row.status:
        row.status = cmd.status.value
        row.closed_at = None if cmd.status == w.TaskStatus.open else (cmd.at or service.now())
        row.reason = cmd.reason if cmd.status == w.TaskStatus.dropped else None
        changed = True
    if changed:
        row.version += 1
        await session.flush()
        await add_event(session, SCHEMA, w.TaskChangedV1(task=views.task(row), actor=cmd.actor))
    return views.task(row)


async def list_tasks(session: AsyncSession, cmd: w.ListTasks) -> w.TaskList:
    rows, total = await WeekRepository(session).tasks(
        owner=cmd.owner, status=cmd.status.value if cmd.status else None, week=cmd.week, link_id=cmd.link_id,
        offset=cmd.offset, limit=cmd.limit)
    return w.TaskList(items=[views.task(r) for r in rows], total=total)


async def complete_from_update(session: AsyncSession, task_id: uuid.UUID, member: str, actor: str | None) -> None:
    """A task line marked done in a submitted update closes the task (if it is the member's and open)."""
    repo = WeekRepository(session)
    row = await repo.task(task_id, lock=True)
    if row is None or row.owner != member or row.status != "open":
        return
    row.status, row.closed_at, row.version = "done", service.now(), row.version + 1
    await session.flush()
    await add_event(session, SCHEMA, w.TaskChangedV1(task=views.task(row), actor=actor))
