"""Business review use cases: a review per partner and period with the agenda the gateway assembled,
notes, decisions, follow-up tasks (tasks of the team's week, linked to the partner), and the meeting
logged as a touch with its attendees once held. Never commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import contacts as c
from contracts import reviews as r
from contracts import week as w
from runtime.errors import Conflict, Invalid, NotFound
from services.relationships.contacts import service as contacts
from services.relationships.contacts.config import settings_of
from services.relationships.contacts.models import Contact
from services.relationships.pipeline_copy import PartnerRow
from services.relationships.reviews.models import ReviewRow, ReviewTaskRow
from services.relationships.week import tasks
from services.relationships.week.models import TaskRow


async def _attendees(session: AsyncSession, partner_id: uuid.UUID, ids: Sequence[uuid.UUID]) -> list[str]:
    """The partner's own, current contacts, in the order given (each once)."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return []
    found = {x.id: x for x in await session.scalars(select(Contact).where(Contact.id.in_(wanted)))}
    for i, cid in enumerate(wanted):
        person = found.get(cid)
        if person is None or person.partner_id != partner_id or person.archived_at is not None:
            raise Invalid(f"{cid} is not a current contact at this partner", field=f"attendees.{i}")
    return [str(x) for x in wanted]


def _check_period(kind: r.ReviewKind, period: str) -> None:
    try:
        r.period_range(kind, period)
    except ValueError as exc:
        raise Invalid(str(exc), field="period") from None


async def _contract(session: AsyncSession, row: ReviewRow) -> r.Review:
    partner = await session.get(PartnerRow, row.partner_id)
    ids = [uuid.UUID(x) for x in row.attendees]
    names = {x.id: x.name for x in await session.scalars(select(Contact).where(Contact.id.in_(ids)))} if ids else {}
    task_ids = [t for t, in await session.execute(select(ReviewTaskRow.task_id).where(
        ReviewTaskRow.review_id == row.id).order_by(ReviewTaskRow.position))]
    found = {t.id: t for t in await session.scalars(select(TaskRow).where(TaskRow.id.in_(task_ids)))} \
        if task_ids else {}
    follow_ups = [r.FollowUp(task_id=t.id, title=t.title, owner=t.owner, due_date=t.due_date, status=t.status)
                  for t in (found.get(i) for i in task_ids) if t is not None]
    return r.Review(
        id=row.id, partner_id=row.partner_id, partner_name=partner.name if partner else "", kind=r.ReviewKind(row.kind),
        period=row.period, scheduled_on=row.scheduled_on, status=r.ReviewStatus(row.status), owner=row.owner,
        attendees=[r.ReviewAttendee(contact_id=i, name=names.get(i, "(removed)")) for i in ids],
        agenda=r.Agenda.model_validate(row.agenda), notes=row.notes,
        decisions=[r.ReviewDecision.model_validate(d) for d in row.decisions], follow_ups=follow_ups,
        held_at=row.held_at, version=row.version, created_at=row.created_at)


async def _row(session: AsyncSession, review_id: uuid.UUID, *, for_update: bool = False) -> ReviewRow:
    row = await session.get(ReviewRow, review_id, with_for_update=for_update)
    if row is None:
        raise NotFound(f"no business review with id {review_id}", field="review_id")
    return row


async def create_review(session: AsyncSession, cmd: r.CreateReview) -> r.Review:
    partner = await session.get(PartnerRow, cmd.partner_id)
    if partner is None or partner.archived:
        raise NotFound(f"no partner with id {cmd.partner_id}", field="partner_id")
    _check_period(cmd.kind, cmd.period)
    if cmd.agenda.period != cmd.period:
        raise Invalid("the agenda is for another period", field="agenda.period")
    row = ReviewRow(id=uuid.uuid4(), partner_id=partner.id, kind=cmd.kind.value, period=cmd.period,
                    scheduled_on=cmd.scheduled_on, status=r.ReviewStatus.planned.value,
                    owner=cmd.owner or partner.owner, attendees=await _attendees(session, partner.id, cmd.attendees),
                    agenda=cmd.agenda.model_dump(mode="json"), notes=None, decisions=[], version=1,
                    created_at=datetime.now(UTC), created_by=cmd.actor)
    session.add(row)
    await session.flush()
    return await _contract(session, row)


async def get_review(session: AsyncSession, cmd: r.GetReview) -> r.Review:
    return await _contract(session, await _row(session, cmd.review_id))


async def list_reviews(session: AsyncSession, cmd: r.ListReviews) -> r.ReviewList:
    query = select(ReviewRow)
    if cmd.partner_id is not None:
        query = query.where(ReviewRow.partner_id == cmd.partner_id)
    total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = await session.scalars(query.order_by(ReviewRow.scheduled_on.desc(), ReviewRow.created_at.desc())
                                 .offset(cmd.offset).limit(cmd.limit))
    return r.ReviewList(items=[await _contract(session, x) for x in rows], total=total, offset=cmd.offset,
                        limit=cmd.limit)


async def update_review(session: AsyncSession, cmd: r.UpdateReview) -> r.Review:
    row = await _row(session, cmd.review_id, for_update=True)
    if cmd.expected_version is not None and cmd.expected_version != row.version:
        raise Conflict(f"the review changed since version {cmd.expected_version} (now {row.version})",
                       field="expected_version")
    sent = cmd.model_fields_set
    if "scheduled_on" in sent and cmd.scheduled_on is not None:
        row.scheduled_on = cmd.scheduled_on
    if "notes" in sent:
        row.notes = cmd.notes or None
    if "attendees" in sent and cmd.attendees is not None:
        row.attendees = await _attendees(session, row.partner_id, cmd.attendees)
    if "agenda" in sent and cmd.agenda is not None:
        if cmd.agenda.period != row.period:
            raise Invalid("the agenda is for another period", field="agenda.period")
        row.agenda = cmd.agenda.model_dump(mode="json")
    if cmd.held and row.status != r.ReviewStatus.held.value:
        now = datetime.now(UTC)
        row.status, row.held_at = r.ReviewStatus.held.value, now
        if row.attendees:
            # The meeting is a touch with everyone who came (once: the review's id is its calendar UID).
            await contacts.record(
                session, kind=c.InteractionKind.meeting, occurred_at=now,
                contact_ids=[uuid.UUID(x) for x in row.attendees], initiated_by=c.Initiator.us,
                partner_id=row.partner_id, opportunity_id=None, note=f"{row.kind.capitalize()} business review "
                f"{row.period}", uid=f"business-review:{row.id}", source=c.InteractionSource.manual,
                actor=cmd.actor, settings=await settings_of(session), now=now)
    elif cmd.held is False and row.status == r.ReviewStatus.held.value:
        row.status, row.held_at = r.ReviewStatus.planned.value, None
    row.version += 1
    await session.flush()
    return await _contract(session, row)


async def add_decision(session: AsyncSession, cmd: r.AddReviewDecision) -> r.Review:
    row = await _row(session, cmd.review_id, for_update=True)
    if len(row.decisions) >= 100:
        raise Invalid("a review holds at most 100 decisions", field="text")
    row.decisions = [*row.decisions, r.ReviewDecision(text=cmd.text, recorded_by=cmd.actor,
                                                      recorded_at=datetime.now(UTC)).model_dump(mode="json")]
    row.version += 1
    await session.flush()
    return await _contract(session, row)


async def add_follow_up(session: AsyncSession, cmd: r.AddFollowUp) -> r.Review:
    row = await _row(session, cmd.review_id, for_update=True)
    count = await session.scalar(select(func.count()).where(ReviewTaskRow.review_id == row.id)) or 0
    if count >= 100:
        raise Invalid("a review holds at most 100 follow-ups", field="title")
    partner = await session.get(PartnerRow, row.partner_id)
    label = f"{partner.name if partner else 'Partner'} review {row.period}"[:200]
    task = await tasks.create_task(session, w.CreateTask(
        owner=cmd.owner, title=cmd.title, due_date=cmd.due_date,
        link=w.TaskLink(kind=w.LinkKind.partner, id=row.partner_id, label=label), actor=cmd.actor))
    session.add(ReviewTaskRow(review_id=row.id, task_id=task.id, position=count))
    row.version += 1
    await session.flush()
    return await _contract(session, row)
