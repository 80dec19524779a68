"""The partner page's activity and quality section: its figures (asked of the relationships service,
which counts them; the page still renders without them) and the form that enters a month's quality."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from contracts import activity as ac
from gateway.auth import Principal
from gateway.routes import activity as api
from gateway.web.common import Member, field_errors
from runtime.errors import CommandFailed

router = APIRouter(include_in_schema=False)
MONTHS_SHOWN = 6


@dataclass(frozen=True)
class ActivityView:
    months: list[ac.MonthFigures]

    def series(self, field: str) -> list[tuple[str, int | Decimal]]:
        """(month, figure) for a bar chart (gateway/web/charts.py); a month without the figure counts 0."""
        return [(m.month[2:], getattr(m, field) or 0) for m in self.months]


async def section(request: Request, principal: Principal, partner_id: UUID) -> ActivityView | None:
    try:
        found = await api.activity_of(request, principal, partner_id, months=MONTHS_SHOWN)
    except (CommandFailed, TimeoutError):
        return None  # the relationships service is away or has not heard of the partner yet
    return ActivityView(months=found.months)


@router.post("/partners/{partner_id}/quality")
async def quality_form(partner_id: UUID, request: Request, principal: Member,
                       month: Annotated[str, Form(max_length=20)] = "",
                       lead_quality: Annotated[str, Form(max_length=20)] = "",
                       customer_satisfaction: Annotated[str, Form(max_length=20)] = "",
                       implementation_success: Annotated[str, Form(max_length=20)] = "") -> Response:
    body = {k: v.strip() for k, v in (("lead_quality", lead_quality), ("customer_satisfaction", customer_satisfaction),
                                      ("implementation_success", implementation_success)) if v.strip()}
    try:
        ac.GetPartnerActivity(partner_id=partner_id, until=month.strip())  # the month's form
        await api.set_quality(request, principal, partner_id, month.strip(), api.QualityIn.model_validate(body))
    except (ValidationError, CommandFailed) as exc:
        if isinstance(exc, CommandFailed) and exc.error.kind not in ("invalid", "not_found"):
            raise
        message = next(iter(field_errors(exc).values()), "check the figures")
        return RedirectResponse(f"/partners/{partner_id}?error=Quality+not+saved:+{message}#activity-title",
                                status_code=303)
    return RedirectResponse(f"/partners/{partner_id}?notice=Quality+saved.#activity-title", status_code=303)
