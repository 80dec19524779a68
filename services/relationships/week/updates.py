"""Each member's weekly update: read (pre-filled while a draft), save as a draft at every change,
submit, amend until the meeting closes, with the history of submissions. Never commits."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contracts import week as w
from runtime.errors import Conflict, Invalid
from runtime.outbox import add_event
from services.relationships.week import domain, prefill, service, tasks, views
from services.relationships.week.models import SCHEMA, LineRow, MeetingRow, UpdateRow
from services.relationships.week.repository import WeekRepository

LINK_OF_KIND = {w.LineKind.deal: w.LinkKind.opportunity, w.LineKind.partner: w.LinkKind.partner,
                w.LineKind.contact: w.LinkKind.contact, w.LineKind.funding: w.LinkKind.fund_request}


async def window_of(session: AsyncSession, meeting: MeetingRow) -> domain.Window:
    fiscal_start, stuck_days = await WeekRepository(session).pipeline_settings()
    return domain.window(meeting.week, domain.zone(meeting.time_zone), service.now(), fiscal_start, stuck_days)


async def decorate(session: AsyncSession, lines: list[w.UpdateLine]) -> list[w.UpdateLine]:
    """Stored lines with what the pipeline knows now: the deal's partner and amount, the partner's name."""
    repo = WeekRepository(session)
    deals = await repo.deals([ln.ref_id for ln in lines if ln.kind == w.LineKind.deal and ln.ref_id])
    partners = await repo.partners([ln.ref_id for ln in lines if ln.kind == w.LineKind.partner and ln.ref_id])
    out = []
    for ln in lines:
        found = deals.get(ln.ref_id) if ln.ref_id else None
        partner = partners.get(ln.ref_id) if ln.ref_id and ln.kind == w.LineKind.partner else None
        if partner is not None:
            ln = ln.model_copy(update={"partner_id": partner.id, "partner_name": partner.name})
        if found is not None:
            deal, partner_name = found
            ln = ln.model_copy(update={"partner_id": deal.partner_id, "partner_name": partner_name,
                                       "amount": str(deal.amount), "currency": deal.currency})
        out.append(ln)
    return out


async def compose(session: AsyncSession, meeting: MeetingRow, member: str, row: UpdateRow | None) -> w.Update:
    repo = WeekRepository(session)
    stored = [views.line(r) for r in await repo.lines([row.id])] if row else []
    lines = await decorate(session, stored)
    if (row is None or row.status == "draft") and meeting.status == "open":
        have = {ln.key for ln in lines}
        lines += [s for s in await prefill.suggestions(session, member, await window_of(session, meeting))
                  if s.key not in have]
    return w.Update(
        id=row.id if row else None, week=meeting.week, member=member,
        status=w.UpdateStatus(row.status) if row else w.UpdateStatus.draft, lines=lines,
        anything_else=row.anything_else if row else "", submitted_at=row.submitted_at if row else None,
        on_time=row.on_time if row else None, amendments=row.amendments if row else 0,
        updated_at=row.updated_at if row else None, version=row.version if row else 0,
        meeting_status=w.MeetingStatus(meeting.status),
    )


async def get_update(session: AsyncSession, cmd: w.GetUpdate) -> w.Update:
    meeting = await service.meeting_of(session, cmd.week)
    return await compose(session, meeting, cmd.member, await WeekRepository(session).update_row(meeting.id, cmd.member))


async def _check_refs(repo: WeekRepository, member: str, lines: list[w.UpdateLineIn]) -> None:
    deal_ids = [ln.ref_id for ln in lines if ln.kind == w.LineKind.deal and ln.ref_id]
    partner_ids = [ln.ref_id for ln in lines if ln.kind == w.LineKind.partner and ln.ref_id]
    deals, partners = await repo.deals(deal_ids), await repo.partners(partner_ids)
    task_rows = await repo.tasks_by_ids([ln.ref_id for ln in lines if ln.kind == w.LineKind.task and ln.ref_id])
    for i, ln in enumerate(lines):
        if ln.kind in (w.LineKind.deal, w.LineKind.partner, w.LineKind.task) and ln.ref_id is None:
            raise Invalid(f"a {ln.kind.value} line names the {ln.kind.value} it is about", field=f"lines.{i}.ref_id")
        if ln.kind == w.LineKind.deal and ln.ref_id not in deals:
            raise Invalid(f"no deal {ln.ref_id}", field=f"lines.{i}.ref_id")
        if ln.kind == w.LineKind.partner and ln.ref_id not in partners:
            raise Invalid(f"no partner {ln.ref_id}", field=f"lines.{i}.ref_id")
        if ln.kind == w.LineKind.task:
            t = task_rows.get(ln.ref_id)  # type: ignore[arg-type]
            if t is None or t.owner != member:
                raise Invalid(f"no task {ln.ref_id} of this member", field=f"lines.{i}.ref_id")


async def save_update(session: AsyncSession, cmd: w.SaveUpdate) -> w.Update:
    repo = WeekRepository(session)
    meeting = await repo.meeting(service.monday(cmd.week), share=True)
    if meeting is None:
        raise Invalid(f"there is no meeting for the week of {cmd.week.isoformat()}", field="week")
    if meeting.status == "closed":
        raise Conflict(f"the meeting of {meeting.week.isoformat()} is closed; its updates can no longer change",
                       field="week")
    await _check_refs(repo, cmd.member, cmd.lines)
    row = await repo.update_row(meeting.id, cmd.member, lock=True)
    if row is None and cmd.version == 0:
        row = await repo.insert_update(meeting.id, cmd.member)
    current = row.version if row is not None else 0
    if row is None or row.version != cmd.version:
        raise Conflict(f"the update changed since version {cmd.version} (now {current}); reload it "
                       "(another tab or device saved it)", field="version")

    old = {r.key: r for r in await repo.lines([row.id])}
    suggested = {s.key: s for s in await prefill.suggestions(session, cmd.member, await window_of(session, meeting))}
    rows = [_line_row(row.id, i, ln, old.get(ln.key), suggested.get(ln.key)) for i, ln in enumerate(cmd.lines)]
    at = cmd.at or service.now()
    row.anything_else, row.version, row.updated_at = cmd.anything_else, row.version + 1, at
    if cmd.submit:
        await _submit(session, meeting, row, cmd, rows, at)
    await repo.replace_lines(row.id, rows)
    await session.flush()
    return await compose(session, meeting, cmd.member, row)


def _line_row(update_id: uuid.UUID, position: int, ln: w.UpdateLineIn, old: LineRow | None,
              suggestion: w.UpdateLine | None) -> dict[str, Any]:
    reasons = list(old.reasons) if old is not None else (suggestion.reasons if suggestion else [])
    return {"update_id": update_id, "key": ln.key, "position": position, "kind": ln.kind.value, "ref_id": ln.ref_id,
            "label": ln.label, "status": ln.status.value if ln.status else None, "note": ln.note,
            "next_step": ln.next_step, "next_step_due": ln.next_step_due,
            "task_id": old.task_id if old is not None else None, "reasons": reasons}


async def _submit(session: AsyncSession, meeting: MeetingRow, row: UpdateRow, cmd: w.SaveUpdate,
                  rows: list[dict[str, Any]], at: Any) -> None:
    """Submitting (or amending): next steps become tasks (or update the task they became), task lines marked
    done close their task, and the submission is kept in the update's history."""
    repo = WeekRepository(session)
    first = row.status == "draft"
    if first:
        row.status, row.submitted_at, row.on_time = "submitted", at, at <= meeting.updates_due_at
    else:
        row.amendments += 1
    default_due = meeting.week + timedelta(days=4)  # the Friday of the meeting's week
    for ln, stored in zip(cmd.lines, rows, strict=True):
        if ln.kind == w.LineKind.task and ln.status == w.LineStatus.done and ln.ref_id:
            await tasks.complete_from_update(session, ln.ref_id, cmd.member, cmd.actor)
        if not ln.next_step:
            continue
        existing = await repo.task_from_line(row.id, ln.key)
        due = ln.next_step_due or default_due
        if existing is None:
            kind = LINK_OF_KIND.get(ln.kind)
            link = w.TaskLink(kind=kind, id=ln.ref_id, label=ln.label[:200] or None) if kind and ln.ref_id else None
            task = await tasks.new_task(session, owner=cmd.member, title=ln.next_step, due_date=due, link=link,
                                        week=meeting.week, actor=cmd.actor, from_update_id=row.id,
                                        from_line_key=ln.key)
            stored["task_id"] = task.id
        else:
            stored["task_id"] = existing.id
            if existing.status == "open" and (existing.title, existing.due_date) != (ln.next_step, due):
                existing.title, existing.due_date, existing.version = ln.next_step, due, existing.version + 1
                await session.flush()
                await add_event(session, SCHEMA, w.TaskChangedV1(task=views.task(existing), actor=cmd.actor))
    body = {"lines": [{k: (str(v) if v is not None and k in ("ref_id", "task_id", "next_step_due") else v)
                       for k, v in r.items() if k not in ("update_id", "position")} for r in rows],
            "anything_else": cmd.anything_else}
    await repo.add_revision(row.id, "submitted" if first else "amended", cmd.actor, at, body)
    assert row.submitted_at is not None and row.on_time is not None
    await add_event(session, SCHEMA, w.UpdateSubmittedV1(
        week=meeting.week, member=cmd.member, submitted_at=row.submitted_at, on_time=row.on_time,
        amendments=row.amendments, lines=len(rows)))


async def history(session: AsyncSession, cmd: w.GetUpdateHistory) -> w.UpdateHistory:
    repo = WeekRepository(session)
    meeting = await service.meeting_of(session, cmd.week)
    row = await repo.update_row(meeting.id, cmd.member)
    if row is None:
        return w.UpdateHistory(items=[])
    items = []
    for r in await repo.revisions(row.id):
        items.append(w.UpdateRevision(
            revision=r.revision, action=r.action, by=r.by, at=r.at, anything_else=r.body.get("anything_else", ""),
            lines=[w.UpdateLine.model_validate({k: v for k, v in ln.items() if k != "position"})
                   for ln in r.body.get("lines", [])]))
    return w.UpdateHistory(items=items)
