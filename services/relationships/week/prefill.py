"""What the platform already knows about a member's week, as suggested update lines: the deals they own
that moved, close this quarter, are stuck or wait on an ACE Action Required answer, and their tasks due
this week or overdue. Other areas of the service add their own sources (funding deadlines, cooling
contacts) to SOURCES: each is `async (session, member, window) -> list[UpdateLine]`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from contracts import week as w
from services.relationships.week import domain
from services.relationships.week.repository import WeekRepository

Source = Callable[[AsyncSession, str, domain.Window], Awaitable[list[w.UpdateLine]]]


async def deals(session: AsyncSession, member: str, window: domain.Window) -> list[w.UpdateLine]:
    out = []
    # Deals that are only stuck are many in a quiet quarter; one line per partner keeps the form short.
    stuck: dict[tuple[str, object], list[str]] = {}
    for deal, partner_name in await WeekRepository(session).deals_of(member, window.since):
        reasons = domain.deal_reasons(domain.DealFacts(
            owner=deal.owner, outcome=deal.outcome, stage_entered_at=deal.stage_entered_at,
            created_at=deal.created_at, expected_close_date=deal.expected_close_date,
            ace_review_status=deal.ace_review_status, ace_action_due_date=deal.ace_action_due_date), window)
        if not reasons:
            continue
        if reasons == ["stuck"] and deal.partner_id is not None:
            stuck.setdefault((partner_name or "", deal.partner_id), []).append(deal.name)
            continue
        label = f"{deal.name} — {deal.stage_name}"
        if "action_required" in reasons and deal.ace_action_due_date:
            label += f" (ACE answer due {deal.ace_action_due_date.isoformat()})"
        out.append(w.UpdateLine(
            key=f"deal:{deal.id}", kind=w.LineKind.deal, ref_id=deal.id, label=label[:300],
            partner_id=deal.partner_id, partner_name=partner_name, reasons=reasons, suggested=True,
            amount=str(deal.amount), currency=deal.currency,
            status=w.LineStatus.done if deal.outcome == "won" else None,
        ))
    for (partner_name, partner_id), names in sorted(stuck.items()):
        label = f"{len(names)} stuck deal{'s' if len(names) > 1 else ''}: {', '.join(names)}"
        out.append(w.UpdateLine(
            key=f"partner:{partner_id}", kind=w.LineKind.partner, ref_id=partner_id, label=label[:300],  # type: ignore[arg-type]
            partner_id=partner_id, partner_name=partner_name, reasons=["stuck"], suggested=True))  # type: ignore[arg-type]
    return out


async def tasks(session: AsyncSession, member: str, window: domain.Window) -> list[w.UpdateLine]:
    end_of_week = window.week + timedelta(days=7)
    out = []
    for t in await WeekRepository(session).open_tasks_due(member, end_of_week):
        out.append(w.UpdateLine(
            key=f"task:{t.id}", kind=w.LineKind.task, ref_id=t.id, label=t.title[:300],
            reasons=["task_overdue" if t.due_date < window.today else "task_due"], suggested=True,
        ))
    return out


# How far ahead a fund request's deadline puts it on the update: money is lost when one is missed.
FUNDING_HORIZON = timedelta(days=21)


async def funding(session: AsyncSession, member: str, window: domain.Window) -> list[w.UpdateLine]:
    """One line per fund request of the member with an open deadline within three weeks of the week's end
    (or already past), named by its earliest one."""
    first: dict[object, w.UpdateLine] = {}
    horizon = window.week + timedelta(days=7) + FUNDING_HORIZON
    for d in await WeekRepository(session).fund_request_deadlines(member, horizon):
        if d.regarding_id in first:
            continue
        label = f"{d.title} — due {d.due_date.isoformat()}"
        first[d.regarding_id] = w.UpdateLine(
            key=f"funding:{d.regarding_id}", kind=w.LineKind.funding, ref_id=d.regarding_id, label=label[:300],
            reasons=["funding_deadline"], suggested=True,
            amount=str(d.amount_at_stake) if d.amount_at_stake is not None else None, currency=d.currency)
    return list(first.values())


SOURCES: tuple[Source, ...] = (deals, tasks, funding)
# What needs the member first: deadlines, then money this quarter, then news, then the rest.
PRIORITY = ("action_required", "task_overdue", "past_close_date", "funding_deadline", "closing_this_quarter",
            "moved", "task_due", "cooling_contact", "created", "stuck")


def _rank(line: w.UpdateLine) -> tuple[int, str, str]:
    best = min((PRIORITY.index(r) if r in PRIORITY else len(PRIORITY) for r in line.reasons), default=len(PRIORITY))
    return best, (line.partner_name or "~").lower(), line.label.lower()


async def suggestions(session: AsyncSession, member: str, window: domain.Window) -> list[w.UpdateLine]:
    out: list[w.UpdateLine] = []
    for source in SOURCES:
        out.extend(await source(session, member, window))
    return sorted(out, key=_rank)
