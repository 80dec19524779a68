"""Business reviews with a partner: monthly or quarterly meetings with its contacts, the agenda
pre-filled from the partner's figures (gateway/review_agenda.py), notes, decisions and follow-up
tasks that land on the team's week (the relationships service keeps them; contracts/reviews.py)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from contracts import reviews as rc
from contracts.base import CommandError, ErrorKind
from contracts.fields import Day, Offset, Person, line, text
from gateway import audit, people, review_agenda
from gateway.auth import Principal, Role, require
from gateway.known_partner import known_partner
from gateway.state import bus
from runtime.commands import send
from runtime.errors import CommandFailed

router = APIRouter(prefix="/api", tags=["reviews"])

Reader = Annotated[Principal, Depends(require(Role.viewer, scope="relationships:read"))]
Writer = Annotated[Principal, Depends(require(Role.member, scope="relationships:write"))]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ReviewIn(_In):
    kind: rc.ReviewKind
    scheduled_on: Day
    period: rc.Period | None = Field(default=None, description="The month (2026-11) or calendar quarter (2026-Q4) "
                                     "reviewed; by default the last whole one before the meeting.")
    owner: Person | None = Field(default=None, description="Email or user id; by default the partner's owner.")
    attendees: tuple[UUID, ...] = Field(default=(), max_length=rc.MAX_ATTENDEES,
                                        description="The partner's contacts who attend.")


class ReviewPatch(_In):
    """Only the fields sent change. `refresh_agenda` reassembles the figures as of now."""

    expected_version: int | None = Field(default=None, ge=1, le=2_147_483_647)
    scheduled_on: Day | None = None
    notes: text(20_000) | None = None
    attendees: tuple[UUID, ...] | None = Field(default=None, max_length=rc.MAX_ATTENDEES)
    held: bool | None = None
    refresh_agenda: bool = False


class DecisionIn(_In):
    text: text(2000, 1)


class FollowUpIn(_In):
    title: line(300, 1)
    owner: Person = Field(description="A team member's email or user id.")
    due_date: Day


async def create(request: Request, principal: Principal, partner_id: UUID, body: ReviewIn) -> rc.Review:
    try:
        await known_partner(request, partner_id, principal.name)
    except CommandFailed as exc:  # a partner named in the path: not found, not a bad field
        if exc.error.kind != ErrorKind.invalid:
            raise
        raise CommandFailed(CommandError(kind=ErrorKind.not_found, message=exc.error.message,
                                         field="partner_id")) from None
    period = body.period or rc.default_period(body.kind, body.scheduled_on)
    try:
        rc.period_range(body.kind, period)
    except ValueError as exc:
        raise CommandFailed(CommandError(kind=ErrorKind.invalid, message=str(exc), field="period")) from None
    agenda = await review_agenda.assemble(request, partner_id, body.kind, period, body.scheduled_on)
    made: rc.Review = await send(bus(request), rc.CreateReview(
        partner_id=partner_id, kind=body.kind, period=period, scheduled_on=body.scheduled_on,
        owner=await people.owner_id(request, body.owner), attendees=body.attendees, agenda=agenda,
        actor=principal.name))
    await audit.record_change(request, principal.name, "review.created", entity="business_review", entity_id=made.id,
                              after={"partner_id": str(partner_id), "kind": body.kind.value, "period": period})
    return made


@router.post("/partners/{partner_id}/reviews", status_code=201, response_model=rc.Review)
async def create_review(partner_id: UUID, body: ReviewIn, request: Request, principal: Writer) -> rc.Review:
    """Plan a monthly or quarterly review: its agenda is pre-filled from the partner's figures now."""
    return await create(request, principal, partner_id, body)


@router.get("/partners/{partner_id}/reviews", response_model=rc.ReviewList)
async def list_reviews(partner_id: UUID, request: Request, principal: Reader,
                       offset: Annotated[Offset, Query()] = 0,
                       limit: Annotated[int, Query(ge=1, le=500)] = 50) -> rc.ReviewList:
    return await send(bus(request), rc.ListReviews(partner_id=partner_id, offset=offset, limit=limit,
                                                   actor=principal.name))


@router.get("/reviews/{review_id}", response_model=rc.Review)
async def get_review(review_id: UUID, request: Request, principal: Reader) -> rc.Review:
    return await send(bus(request), rc.GetReview(review_id=review_id, actor=principal.name))


async def change(request: Request, principal: Principal, review_id: UUID, body: ReviewPatch) -> rc.Review:
    changes = body.model_dump(exclude_unset=True, exclude={"refresh_agenda"})
    if body.refresh_agenda:
        current: rc.Review = await send(bus(request), rc.GetReview(review_id=review_id, actor=principal.name))
        changes["agenda"] = await review_agenda.assemble(request, current.partner_id, current.kind, current.period,
                                                         body.scheduled_on or current.scheduled_on)
    changed: rc.Review = await send(bus(request), rc.UpdateReview(review_id=review_id, actor=principal.name,
                                                                  **changes))
    await audit.record_change(request, principal.name, "review.changed", entity="business_review",
                              entity_id=review_id, after=body.model_dump(mode="json", exclude_unset=True))
    return changed


@router.patch("/reviews/{review_id}", response_model=rc.Review)
async def update_review(review_id: UUID, body: ReviewPatch, request: Request, principal: Writer) -> rc.Review:
    """Notes, attendees, the date; `held: true` logs the meeting as a touch with each attendee."""
    return await change(request, principal, review_id, body)


async def decide(request: Request, principal: Principal, review_id: UUID, body: DecisionIn) -> rc.Review:
    made: rc.Review = await send(bus(request), rc.AddReviewDecision(review_id=review_id, text=body.text,
                                                                    actor=principal.name))
    await audit.record_change(request, principal.name, "review.decision_recorded", entity="business_review",
                              entity_id=review_id, after={"text": body.text})
    return made


@router.post("/reviews/{review_id}/decisions", response_model=rc.Review)
async def add_decision(review_id: UUID, body: DecisionIn, request: Request, principal: Writer) -> rc.Review:
    return await decide(request, principal, review_id, body)


async def follow_up(request: Request, principal: Principal, review_id: UUID, body: FollowUpIn) -> rc.Review:
    owner = await people.owner_id(request, body.owner)
    assert owner is not None
    made: rc.Review = await send(bus(request), rc.AddFollowUp(review_id=review_id, title=body.title, owner=owner,
                                                              due_date=body.due_date, actor=principal.name))
    await audit.record_change(request, principal.name, "review.follow_up_added", entity="business_review",
                              entity_id=review_id, after=body.model_dump(mode="json"))
    return made


@router.post("/reviews/{review_id}/follow-ups", response_model=rc.Review)
async def add_follow_up(review_id: UUID, body: FollowUpIn, request: Request, principal: Writer) -> rc.Review:
    """A follow-up task on the owner's week (linked to the partner), listed on the review."""
    return await follow_up(request, principal, review_id, body)
