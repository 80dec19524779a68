"""A business review's agenda: the partner's figures for the period, assembled from the gateway's read
models where it has them (won revenue per month, open deals and their stages: fed by the pipeline's
events) and asked of the owning service where it has none for one partner (the commission statement,
fund requests, certifications). A source that does not answer leaves its section empty and is named in
`unavailable`: the review is still made."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from fastapi import Request
from sqlalchemy import func, select

from contracts import commissions as cc
from contracts import enablement as ec
from contracts import funding as fc
from contracts import pipeline as pc
from contracts import reviews as rc
from gateway.read_models.pipeline.tables import OpportunityView, PartnerWonAgg, StageView
from gateway.state import bus, sessions
from runtime.commands import send
from runtime.errors import CommandFailed

MAX_DEALS = 25
ZERO = Decimal("0.00")
# Certifications a review should mention: not passed, or lapsing within this many days of the meeting.
LAPSING_DAYS = 90


async def _answer(call: Awaitable[Any]) -> Any:
    try:
        return await call
    except (CommandFailed, TimeoutError):
        return None


async def _read_models(request: Request, partner_id: uuid.UUID, start, end, prev_start) -> dict[str, Any]:
    async with sessions(request)() as session:
        won: dict[str, dict[str, Any]] = {}
        for month, currency, deals, amount in await session.execute(
                select(PartnerWonAgg.month, PartnerWonAgg.currency, PartnerWonAgg.deals, PartnerWonAgg.amount)
                .where(PartnerWonAgg.partner_id == partner_id, PartnerWonAgg.month >= prev_start,
                       PartnerWonAgg.month < end)):
            line = won.setdefault(currency, {"currency": currency, "amount": ZERO, "previous": ZERO,
                                             "deals": 0})
            if month >= start:
                line["amount"] += amount
                line["deals"] += deals
            else:
                line["previous"] += amount
        open_ = OpportunityView.outcome == "open"
        pipeline = [rc.MoneyFigure(currency=cur, amount=amount, deals=n) for cur, n, amount in await session.execute(
            select(OpportunityView.currency, func.count(), func.sum(OpportunityView.amount))
            .where(OpportunityView.partner_id == partner_id, open_).group_by(OpportunityView.currency)
            .order_by(OpportunityView.currency))]
        # Built-in stage sets are named in the contract until (unless) a StageSetDefinedV1 renames them.
        names = {(p, st.key): st.name for p, ss in pc.BUILTIN_STAGE_SETS.items() for st in ss.stages}
        names.update({(p, s): n for p, s, n in await session.execute(select(StageView.pipeline, StageView.stage,
                                                                           StageView.name))})
        deals = [rc.DealLine(id=o.id, name=o.name, stage=names.get((o.pipeline, o.stage), o.stage), amount=o.amount,
                             currency=o.currency, expected_close_date=o.expected_close_date)
                 for o in await session.scalars(select(OpportunityView).where(
                     OpportunityView.partner_id == partner_id, open_)
                     .order_by(OpportunityView.amount.desc(), OpportunityView.id).limit(MAX_DEALS))]
    return {"revenue": [rc.MoneyFigure(**v) for _, v in sorted(won.items())], "pipeline": pipeline,
            "open_deals": sum(p.deals for p in pipeline), "deals": deals}


def _commissions(statement: cc.Statement | None) -> list[rc.CommissionLine] | None:
    if statement is None:
        return None
    return [rc.CommissionLine(direction=s.direction.value, currency=s.currency,
                              accrued=s.accruals - s.clawbacks + s.adjustments, paid=s.payments,
                              owed=s.closing_balance) for s in statement.sections]


def _funding(found: fc.FundRequestList | None) -> list[rc.FundingLine] | None:
    if found is None:
        return None
    return [rc.FundingLine(id=f.id, title=f.title[:200], stage=f.stage_label[:100], currency=f.currency,
                           requested=f.requested, approved=f.approved, received=f.received) for f in found.items]


def _certifications(found: ec.CertificationList | None, until) -> list[rc.CertificationLine] | None:
    if found is None:
        return None
    out = []
    for c in found.items:
        lapsing = c.status is ec.CertificationStatus.passed and c.expires_on is not None and c.expires_on <= until
        if c.status is not ec.CertificationStatus.passed or lapsing:
            out.append(rc.CertificationLine(person=c.contact_name[:200], module=c.module_name[:200],
                                            status="lapsing" if lapsing else c.status.value,
                                            on=c.expires_on if c.expires_on else c.due_on))
    return out[:rc.MAX_LINES * 4]


async def assemble(request: Request, partner_id: uuid.UUID, kind: rc.ReviewKind, period: str,
                   scheduled_on) -> rc.Agenda:
    """The agenda of a review of `period` (a month or a calendar quarter) held on `scheduled_on`."""
    start, end = rc.period_range(kind, period)
    previous = rc.previous_period(kind, period)
    prev_start, _ = rc.period_range(kind, previous)
    actor = request.state.principal.name
    figures, statement, funding, certifications = await asyncio.gather(
        _read_models(request, partner_id, start, end, prev_start),
        _answer(send(bus(request), cc.GetStatement(partner_id=partner_id, period=period, actor=actor))),
        _answer(send(bus(request), fc.ListFundRequests(partner_id=partner_id, limit=rc.MAX_LINES, actor=actor))),
        _answer(send(bus(request), ec.ListCertifications(partner_id=partner_id, limit=200, actor=actor))))
    unavailable = [name for name, got in (("commissions", statement), ("funding", funding),
                                          ("certifications", certifications)) if got is None]
    return rc.Agenda(period=period, previous_period=previous, period_start=start, period_end=end,
                     as_of=datetime.now(UTC), **figures, commissions=_commissions(statement),
                     funding=_funding(funding),
                     certifications=_certifications(certifications, scheduled_on + timedelta(days=LAPSING_DAYS)),
                     unavailable=unavailable)

