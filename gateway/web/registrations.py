"""The team's queue of deal registrations: what the conflict check found beside each pending one, and
the approve / decline form (the REST API's own function decides, so it is checked and audited once)."""

from __future__ import annotations

import asyncio
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from contracts import registrations as rc
from gateway.routes.registrations import Decision, decide
from gateway.state import bus
from gateway.web.common import Member, Viewer, field_errors, render
from gateway.web.pipeline import partner_choices
from runtime.commands import send
from runtime.errors import CommandFailed

router = APIRouter(include_in_schema=False)


async def _page(request: Request, status: rc.RegistrationStatus | None, *, errors: dict[str, str] | None = None,
                status_code: int = 200) -> Response:
    actor = request.state.principal.name
    listing, partners = await asyncio.gather(
        send(bus(request), rc.ListRegistrations(status=status, limit=200, actor=actor)),
        partner_choices(request, actor))
    return render(request, "registrations.html", {
        "registrations": listing, "status": status, "statuses": list(rc.RegistrationStatus),
        "partners": {p.id: p for p in partners}, "errors": errors or {},
        "notice": request.query_params.get("notice"),
    }, status_code=status_code)


@router.get("/registrations", response_class=HTMLResponse)
async def registrations_page(
    request: Request, _: Viewer, status: Annotated[str | None, Query(max_length=20)] = "pending",
) -> Response:
    chosen = rc.RegistrationStatus(status) if status in set(rc.RegistrationStatus) else None
    return await _page(request, chosen)


@router.post("/registrations/{registration_id}/decision")
async def decide_form(
    registration_id: UUID,
    request: Request,
    principal: Member,
    approve: Annotated[str, Form(max_length=10)] = "",
    reason: Annotated[str, Form(max_length=5000)] = "",
    acknowledge_conflicts: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    try:
        body = Decision(approve=approve == "true", reason=reason.strip() or None,
                        acknowledge_conflicts=acknowledge_conflicts == "true")
        decided = await decide(request, principal, registration_id, body)
    except (ValidationError, CommandFailed, HTTPException) as exc:
        if isinstance(exc, HTTPException):
            errors = {str(registration_id): str(exc.detail)}
            code = exc.status_code
        elif isinstance(exc, CommandFailed) and exc.error.kind not in ("invalid", "conflict"):
            raise
        else:
            errors = {str(registration_id): next(iter(field_errors(exc).values()))}
            code = 409 if isinstance(exc, CommandFailed) and exc.error.kind == "conflict" else 422
        return await _page(request, rc.RegistrationStatus.pending, errors=errors, status_code=code)
    word = "Approved" if decided.status is rc.RegistrationStatus.approved else "Declined"
    return RedirectResponse(f"/registrations?notice={word}+{decided.name[:80]}", status_code=303)
