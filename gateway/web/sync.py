"""The sync health page: each sync worker's state, last good pass, lag, counts, schedule, its recent
runs, the edits going out, the engagement invitations to answer and the records it could not sync,
with their reasons (gateway/routes/sync.py assesses them)."""

from __future__ import annotations

import re
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from gateway.routes.sync import STALE_AFTER, InvitationDecision, ShareToAws, aws_health, decide, share
from gateway.web.common import Manager, Viewer, field_errors, render
from gateway.web.pipeline import _opportunity_page
from runtime.errors import CommandFailed

router = APIRouter(include_in_schema=False)


async def _page(request: Request, *, error: str | None = None, status_code: int = 200) -> Response:
    syncs = [await aws_health(request)]
    return render(request, "sync.html", {"syncs": syncs, "stale_minutes": int(STALE_AFTER.total_seconds() // 60),
                                         "error": error, "notice": request.query_params.get("notice")},
                  status_code=status_code)


@router.get("/sync", response_class=HTMLResponse)
async def sync_page(request: Request, _: Viewer) -> Response:
    return await _page(request)


@router.post("/sync/invitations/{invitation_id}")
async def invitation_form(
    invitation_id: str,
    request: Request,
    principal: Manager,
    decision: Annotated[str, Form(max_length=10)] = "",
    reason: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    try:
        body = InvitationDecision(decision=decision, reason=reason.strip() or None)  # type: ignore[arg-type]
        view = await decide(request, principal, invitation_id, body)
    except ValidationError as exc:
        message = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        return await _page(request, error=f"{invitation_id}: {message}", status_code=422)
    except CommandFailed as exc:
        status = {"not_found": 404, "conflict": 409, "invalid": 422}.get(exc.error.kind.value, 503)
        return await _page(request, error=f"{invitation_id}: {exc.error.message}", status_code=status)
    verb = "accepted" if view.decision == "accept" else "rejected"
    return RedirectResponse(f"/sync?notice=Invitation+{invitation_id}+{verb}:+sent+to+AWS+shortly", status_code=303)


@router.post("/opportunities/{opportunity_id}/share")
async def share_form(opportunity_id: UUID, request: Request, principal: Manager) -> Response:
    raw = await request.form()
    form = {k: str(raw.get(k, "")).strip()[:2100] for k in ("solution_id", "website", "country_code",
                                                             "business_problem")}
    try:
        body = ShareToAws(**{k: v for k, v in form.items() if v})
        view = await share(request, principal, opportunity_id, body)
    except (ValidationError, CommandFailed) as exc:
        if isinstance(exc, CommandFailed) and exc.error.kind.value not in ("invalid", "conflict"):
            raise
        status = 409 if isinstance(exc, CommandFailed) and exc.error.kind.value == "conflict" else 422
        # A refusal of something not on this form (the deal's stage, its currency) is said above it.
        # Beside its own field the message needs no path into AWS's record.
        errors = {(k if k in form else "form"): (re.sub(r"^AWS would refuse [\w.\[\]]+: ", "", v)
                                                 if k in form else v)
                  for k, v in field_errors(exc, "form").items()}
        return await _opportunity_page(request, opportunity_id, share_errors=errors, share_form=form,
                                       status_code=status)
    return RedirectResponse(f"/opportunities/{opportunity_id}?notice=Shared+to+AWS+(solution+{view.solution_id}):"
                            "+the+sync+creates+it+in+ACE+and+links+this+deal+to+it", status_code=303)
