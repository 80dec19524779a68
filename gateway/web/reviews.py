"""Business review pages: a partner's reviews with the form that plans one, a review (its agenda from
the partner's figures, attendees, notes, decisions, follow-up tasks, held), and its print view to send
to the partner. Writes go through the REST API's functions (gateway/routes/reviews.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import select

from contracts import contacts as cc
from contracts import reviews as rc
from gateway.read_models.partners import PartnerView
from gateway.routes import reviews as api
from gateway.state import bus, sessions
from gateway.web.common import Member, Viewer, field_errors, not_found, render
from gateway.web.pipeline import team_handles
from runtime.commands import send
from runtime.errors import CommandFailed

router = APIRouter(include_in_schema=False)


async def _partner_name(request: Request, partner_id: UUID) -> str | None:
    async with sessions(request)() as session:
        return await session.scalar(select(PartnerView.name).where(PartnerView.id == partner_id))


async def _people(request: Request, partner_id: UUID) -> list[cc.Contact]:
    try:
        found = await send(bus(request), cc.ListContacts(partner_id=partner_id, limit=200,
                                                         actor=request.state.principal.name))
    except (CommandFailed, TimeoutError):
        return []
    return found.items


async def _list_page(request: Request, partner_id: UUID, *, form: dict[str, object] | None = None,
                     errors: dict[str, str] | None = None, status_code: int = 200) -> Response:
    name = await _partner_name(request, partner_id)
    if name is None:
        return not_found(request, "partner")
    reviews, people = await asyncio.gather(
        send(bus(request), rc.ListReviews(partner_id=partner_id, limit=100, actor=request.state.principal.name)),
        _people(request, partner_id))
    today = datetime.now(UTC).date()
    return render(request, "reviews.html", {
        "partner_id": partner_id, "partner_name": name, "reviews": reviews, "people": people,
        "form": form or {"kind": "monthly", "scheduled_on": today.isoformat(),
                         "period": rc.default_period(rc.ReviewKind.monthly, today), "attendees": []},
        "errors": errors or {}, "notice": request.query_params.get("notice")}, status_code=status_code)


@router.get("/partners/{partner_id}/reviews", response_class=HTMLResponse)
async def list_page(partner_id: UUID, request: Request, _: Viewer) -> Response:
    return await _list_page(request, partner_id)


@router.post("/partners/{partner_id}/reviews")
async def create_form(partner_id: UUID, request: Request, principal: Member) -> Response:
    data = await request.form()
    attendees = [str(x) for x in data.getlist("attendees")][:rc.MAX_ATTENDEES]
    form: dict[str, object] = {k: str(data.get(k) or "")[:100] for k in ("kind", "scheduled_on", "period")}
    form["attendees"] = attendees
    try:
        body = api.ReviewIn.model_validate({"kind": form["kind"], "scheduled_on": form["scheduled_on"] or None,
                                            "period": form["period"] or None, "attendees": attendees})
        made = await api.create(request, principal, partner_id, body)
    except (ValidationError, CommandFailed) as exc:
        if isinstance(exc, CommandFailed) and exc.error.kind not in ("invalid", "conflict"):
            raise
        return await _list_page(request, partner_id, form=form, errors=field_errors(exc), status_code=422)
    return RedirectResponse(f"/reviews/{made.id}?notice=Review+planned.+Its+agenda+holds+the+figures+of+today.",
                            status_code=303)


async def _review(request: Request, review_id: UUID) -> rc.Review | None:
    try:
        return await send(bus(request), rc.GetReview(review_id=review_id, actor=request.state.principal.name))
    except CommandFailed as exc:
        if exc.error.kind == "not_found":
            return None
        raise


async def _review_page(request: Request, review_id: UUID, *, errors: dict[str, str] | None = None,
                       form: dict[str, str] | None = None, status_code: int = 200) -> Response:
    review = await _review(request, review_id)
    if review is None:
        return not_found(request, "business review")
    team, people = await asyncio.gather(team_handles(request), _people(request, review.partner_id))
    return render(request, "review.html", {
        "review": review, "team": team, "people": people, "errors": errors or {}, "form": form or {},
        "notice": request.query_params.get("notice")}, status_code=status_code)


@router.get("/reviews/{review_id}", response_class=HTMLResponse)
async def review_page(review_id: UUID, request: Request, _: Viewer) -> Response:
    return await _review_page(request, review_id)


@router.get("/reviews/{review_id}/print", response_class=HTMLResponse)
async def print_page(review_id: UUID, request: Request, _: Viewer) -> Response:
    review = await _review(request, review_id)
    if review is None:
        return not_found(request, "business review")
    return render(request, "review_print.html", {"review": review})


async def _write(request: Request, review_id: UUID, action, form: dict[str, str]) -> Response:  # type: ignore[no-untyped-def]
    try:
        await action()
    except (ValidationError, CommandFailed) as exc:
        if isinstance(exc, CommandFailed) and exc.error.kind not in ("invalid", "conflict", "not_found"):
            raise
        if isinstance(exc, CommandFailed) and exc.error.kind == "not_found" and exc.error.field == "review_id":
            return not_found(request, "business review")
        return await _review_page(request, review_id, errors=field_errors(exc), form=form, status_code=422)
    return RedirectResponse(f"/reviews/{review_id}?notice=Saved.", status_code=303)


@router.post("/reviews/{review_id}")
async def update_form(review_id: UUID, request: Request, principal: Member,
                      notes: Annotated[str | None, Form(max_length=20_000)] = None,
                      held: Annotated[str, Form(max_length=10)] = "",
                      refresh: Annotated[str, Form(max_length=10)] = "") -> Response:
    fields: dict[str, object] = {}
    if notes is not None:
        fields["notes"] = notes
    if held in ("true", "false"):
        fields["held"] = held == "true"
    if refresh == "true":
        fields["refresh_agenda"] = True
    return await _write(request, review_id, lambda: api.change(
        request, principal, review_id, api.ReviewPatch.model_validate(fields)), {"notes": notes or ""})


@router.post("/reviews/{review_id}/decisions")
async def decision_form(review_id: UUID, request: Request, principal: Member,
                        text: Annotated[str, Form(max_length=4000)] = "") -> Response:
    return await _write(request, review_id, lambda: api.decide(
        request, principal, review_id, api.DecisionIn.model_validate({"text": text})), {"decision": text})


@router.post("/reviews/{review_id}/follow-ups")
async def follow_up_form(review_id: UUID, request: Request, principal: Member,
                         title: Annotated[str, Form(max_length=1000)] = "",
                         owner: Annotated[str, Form(max_length=200)] = "",
                         due_date: Annotated[str, Form(max_length=40)] = "") -> Response:
    form = {"title": title, "owner": owner, "due_date": due_date}
    return await _write(request, review_id, lambda: api.follow_up(
        request, principal, review_id, api.FollowUpIn.model_validate(
            {"title": title, "owner": owner or None, "due_date": due_date or None})), form)
