"""What the weekly digest says: the week's wins, where open deals moved, co-sell opportunities waiting
on AWS, deals stuck, and the alerts of the week by rule. Gathered once per tick for every recipient;
rendered per person (their time zone) by emails.digest_email."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contracts import deadlines as dl
from runtime.formatting import money
from services.notifications import charts
from services.notifications.repository import AlertRepository, PipelineCopyRepository
from services.notifications.rules import RULES_BY_KEY, ScanInput, deal_stuck

WEEK = timedelta(days=7)
# Deadlines (funding, competencies) shown when due within this many days, or already late.
DEADLINE_HORIZON_DAYS = 30


async def gather(session: AsyncSession, at: datetime) -> dict[str, Any]:
    since = at - WEEK
    copy = PipelineCopyRepository(session)
    week = await copy.week(since)
    settings = await copy.settings()
    stuck = deal_stuck(ScanInput(now=at, open_deals=await copy.open_deals(), settings=settings))
    won_totals: dict[str, Decimal] = {}
    for row in week["won"]:
        won_totals[row.currency] = won_totals.get(row.currency, Decimal(0)) + row.amount
    moved = [{"stage": r[0], "count": r[1], "currency": r[2], "amount": r[3], "text": money(r[3], r[2])}
             for r in week["moved"]]
    images = {}
    if moved:
        images["moved"] = base64.b64encode(charts.bars([float(m["amount"]) for m in moved])).decode()
    deadlines = []
    for d in await copy.open_deadlines():
        left = dl.days_left(d.due_date, d.time_zone, at)
        if left <= DEADLINE_HORIZON_DAYS:
            deadlines.append({"title": d.title, "due": d.due_date.isoformat(), "left": left, "link": d.link,
                              "stake": money(d.amount_at_stake, d.currency) if d.amount_at_stake and d.currency
                              else None})
    alerts = [{"rule": RULES_BY_KEY[rule].title if rule in RULES_BY_KEY else rule, "count": count}
              for rule, count in await AlertRepository(session).counts_since(since)]
    return {
        "since": since, "at": at,
        "won": [{"id": r.id, "name": r.name, "customer": r.customer, "pipeline": r.pipeline,
                 "text": money(r.amount, r.currency)} for r in week["won"]],
        "won_totals": [money(v, c) + f" ({c})" for c, v in sorted(won_totals.items())],
        "moved": moved,
        "ace": [{"id": r.id, "name": r.name, "customer": r.customer, "status": r.ace_status,
                 "due": r.ace_due.isoformat() if r.ace_due else None} for r in week["ace"]],
        "stuck": [{"title": f.title, "why": f.why, "link": f.link} for f in stuck[:10]],
        "stuck_total": len(stuck),
        "deadlines": deadlines,
        "alerts": alerts,
        "images": images,
    }
