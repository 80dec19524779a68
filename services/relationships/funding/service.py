"""Funding use cases: programs, fund requests on AWS's stages, milestones and their claims, the deadlines
they carry and the roll-ups. Each change stores the request and its events in one transaction (the
command boundary commits). Never commits."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contracts import deadlines as d
from contracts import funding as f
from contracts.base import utc_now
from contracts.quarters import Quarter
from runtime.errors import Conflict, Invalid, NotFound
from runtime.outbox import add_events
from services.relationships.deadlines import service as deadline_service
from services.relationships.funding import domain
from services.relationships.funding.models import FundingProgram, FundMilestone, FundRequest, FundRequestMove
from services.relationships.funding.repository import FundRequestRepository, ProgramRepository, deals

SCHEMA = "relationships"

# ---------------------------------------------------------------------------------------- programs


async def programs(session: AsyncSession) -> dict[str, f.Program]:
    """Built-in programs as configured, then those added, by key."""
    stored = await ProgramRepository(session).stored()
    out = dict(domain.BUILTIN)
    for key, row in stored.items():
        out[key] = f.Program.model_validate({**row.definition, "version": row.version})
    return out


async def program(session: AsyncSession, key: str) -> f.Program:
    found = (await programs(session)).get(key)
    if found is None:
        raise Invalid(f"no funding program {key!r}", field="program")
    return found


async def list_programs(session: AsyncSession, c: f.ListPrograms) -> f.ProgramList:
    items = sorted((await programs(session)).values(), key=lambda p: (p.hyperscaler.value, p.name))
    return f.ProgramList(items=[p for p in items if c.include_inactive or p.active])


async def define_program(session: AsyncSession, c: f.DefineProgram) -> f.Program:
    repo = ProgramRepository(session)
    row = await repo.lock(c.program.key)
    body = c.program.model_dump(mode="json", exclude={"version"})
    if row is None:
        row = FundingProgram(key=c.program.key, definition=body, version=1)
        session.add(row)
    else:
        row.definition, row.version, row.updated_at = body, row.version + 1, utc_now()
    await session.flush()
    return f.Program.model_validate({**body, "version": row.version})


# ---------------------------------------------------------------------------------- fund requests


def _claims(milestones: list[FundMilestone]) -> list[domain.ClaimView]:
    return [domain.ClaimView(amount=m.amount, status=f.ClaimStatus(m.claim_status), received=m.received)
            for m in milestones]


def _snapshot(r: FundRequest, prog: f.Program, moves: list[FundRequestMove], milestones: list[FundMilestone],
              deadlines: list[d.Deadline]) -> f.FundRequest:
    stage = f.FundStage(r.stage)
    claimed, received = domain.amounts(_claims(milestones))
    return f.FundRequest(
        id=r.id, version=r.version, program=r.program, program_name=prog.name, hyperscaler=prog.hyperscaler,
        title=r.title, phase=r.phase, stage=stage, stage_label=f.STAGE_LABELS[stage],
        next_stages=domain.next_stages(stage, prog), partner_id=r.partner_id, owner=r.owner,
        aws_fund_request_id=r.aws_fund_request_id, currency=r.currency, requested=r.requested, approved=r.approved,
        claimed=claimed, received=received, activity_start=r.activity_start, activity_end=r.activity_end,
        opportunities=[f.OpportunityLink.model_validate(x) for x in r.opportunities], description=r.description,
        milestones=[f.Milestone(id=m.id, name=m.name, end_date=m.end_date, amount=m.amount,
                                claim_due_date=m.claim_due_date, claim_status=f.ClaimStatus(m.claim_status),
                                received=m.received, claim_reference=m.claim_reference, updated_at=m.updated_at,
                                next_claim_statuses=domain.next_claims(stage, f.ClaimStatus(m.claim_status)))
                    for m in milestones],
        history=[f.StageMove(from_stage=f.FundStage(m.from_stage) if m.from_stage else None,
                             to_stage=f.FundStage(m.to_stage), moved_by=m.moved_by, moved_at=m.moved_at, note=m.note)
                 for m in moves],
        deadlines=deadlines, created_at=r.created_at, updated_at=r.updated_at, stage_entered_at=r.stage_entered_at)


async def _sync_deadlines(session: AsyncSession, r: FundRequest, prog: f.Program,
                          milestones: list[FundMilestone]) -> list[d.Deadline]:
    specs = domain.deadlines(str(r.id), r.title, f.FundStage(r.stage), prog, r.activity_end, r.approved, [
        domain.MilestoneView(id=str(m.id), name=m.name, claim_due_date=m.claim_due_date,
                             claim=domain.ClaimView(amount=m.amount, status=f.ClaimStatus(m.claim_status),
                                                    received=m.received)) for m in milestones])
    return await deadline_service.sync(
        session, regarding=d.Regarding.fund_request, regarding_id=r.id, link=f"/funding/{r.id}", owner=r.owner,
        currency=r.currency, time_zone=prog.time_zone,
        wanted=[deadline_service.Wanted(key=s.key, kind=s.kind, status=s.status, title=s.title, due_date=s.due_date,
                                        amount_at_stake=s.amount_at_stake) for s in specs])


async def _publish(session: AsyncSession, r: FundRequest, prog: f.Program, event: type[f._FundRequestEvent],
                   **extra: Any) -> f.FundRequest:
    """Recompute the request's deadlines, build its snapshot, and put its event in the outbox."""
    repo = FundRequestRepository(session)
    await session.flush()
    milestones = (await repo.milestones([r.id]))[r.id]
    deadlines = await _sync_deadlines(session, r, prog, milestones)
    snapshot = _snapshot(r, prog, (await repo.moves([r.id]))[r.id], milestones, deadlines)
    await add_events(session, SCHEMA, [event(fund_request=snapshot, **extra)])
    return snapshot


async def _unique_aws_id(repo: FundRequestRepository, aws_id: str | None, own: uuid.UUID | None) -> None:
    if aws_id is None:
        return
    other = await repo.by_aws_id(aws_id)
    if other is not None and other.id != own:
        raise Conflict(f"another fund request already has AWS id {aws_id}", field="aws_fund_request_id")


def _check_phase(prog: f.Program, phase: str | None) -> None:
    if phase is not None and prog.phases and phase not in prog.phases:
        raise Invalid(f"{prog.name} has the phases {', '.join(prog.phases)}", field="phase")


async def create_request(session: AsyncSession, c: f.CreateFundRequest) -> f.FundRequest:
    prog = await program(session, c.program)
    if not prog.active:
        raise Invalid(f"{prog.name} takes no new requests (inactive)", field="program")
    domain.check_dates(c.activity_start, c.activity_end)
    _check_phase(prog, c.phase)
    repo = FundRequestRepository(session)
    await _unique_aws_id(repo, c.aws_fund_request_id, None)
    now = utc_now()
    r = FundRequest(id=uuid.uuid4(), version=1, program=prog.key, title=c.title, phase=c.phase,
                    stage=f.FundStage.draft.value, partner_id=c.partner_id, owner=c.owner,
                    aws_fund_request_id=c.aws_fund_request_id, currency=prog.currency, requested=c.requested,
                    approved=None, activity_start=c.activity_start, activity_end=c.activity_end,
                    opportunities=[x.model_dump(mode="json") for x in c.opportunities], description=c.description,
                    created_at=now, updated_at=now, stage_entered_at=now)
    session.add(r)
    await session.flush()
    session.add(FundRequestMove(request_id=r.id, from_stage=None, to_stage=r.stage, moved_by=c.actor, moved_at=now))
    return await _publish(session, r, prog, f.FundRequestCreatedV1)


async def _locked(session: AsyncSession, request_id: uuid.UUID, expected_version: int | None) -> FundRequest:
    r = await FundRequestRepository(session).get(request_id, lock=True)
    if r is None:
        raise NotFound(f"no fund request {request_id}", field="request_id")
    if expected_version is not None and r.version != expected_version:
        raise Conflict(f"the fund request changed since version {expected_version} (now {r.version}); reload it",
                       field="expected_version")
    return r


LOCKED_AFTER_SUBMIT = frozenset({"requested", "activity_start", "activity_end", "phase"})


async def update_request(session: AsyncSession, c: f.UpdateFundRequest) -> f.FundRequest:
    r = await _locked(session, c.request_id, c.expected_version)
    prog = await program(session, r.program)
    fields = c.model_dump(exclude_unset=True, exclude={"request_id", "expected_version", "actor"})
    for required in ("title", "requested", "activity_start", "activity_end"):
        if required in fields and fields[required] is None:
            raise Invalid("cannot be cleared", field=required)
    changed = tuple(k for k, v in fields.items() if (getattr(r, k) if k != "opportunities" else r.opportunities)
                    != (v if k != "opportunities" else [x.model_dump(mode="json") for x in c.opportunities or []]))
    if not changed:
        return await get_request(session, f.GetFundRequest(request_id=r.id))
    locked = [k for k in changed if k in LOCKED_AFTER_SUBMIT]
    if locked and r.stage not in (f.FundStage.draft, f.FundStage.rejected):
        raise Invalid(f"{locked[0]} cannot change once the request is submitted (it is in "
                      f"{f.STAGE_LABELS[f.FundStage(r.stage)]}); AWS locks it", field=locked[0])
    if "aws_fund_request_id" in changed:
        await _unique_aws_id(FundRequestRepository(session), c.aws_fund_request_id, r.id)
    if "phase" in changed:
        _check_phase(prog, c.phase)
    for k in changed:
        value = getattr(c, k)
        if k == "opportunities":
            value = [x.model_dump(mode="json") for x in value or []]
        setattr(r, k, value)
    domain.check_dates(r.activity_start, r.activity_end)
    if "requested" in changed:
        milestones = (await FundRequestRepository(session).milestones([r.id]))[r.id]
        domain.check_milestone_total(_claims(milestones), r.requested, r.approved)
    r.version += 1
    r.updated_at = utc_now()
    return await _publish(session, r, prog, f.FundRequestUpdatedV1, changed=changed)


async def _move(session: AsyncSession, r: FundRequest, to: f.FundStage, actor: str | None, note: str | None,
                prog: f.Program) -> f.FundRequest:
    now = utc_now()
    before = f.FundStage(r.stage)
    r.stage, r.version, r.updated_at, r.stage_entered_at = to.value, r.version + 1, now, now
    session.add(FundRequestMove(request_id=r.id, from_stage=before.value, to_stage=to.value, moved_by=actor,
                                moved_at=now, note=note))
    return await _publish(session, r, prog, f.FundRequestStageChangedV1, from_stage=before, to_stage=to)


async def move_request(session: AsyncSession, c: f.MoveFundRequest) -> f.FundRequest:
    r = await _locked(session, c.request_id, c.expected_version)
    prog = await program(session, r.program)
    milestones = (await FundRequestRepository(session).milestones([r.id]))[r.id]
    domain.check_move(f.FundStage(r.stage), c.to_stage, prog, _claims(milestones))
    if c.approved is not None and c.to_stage != f.FundStage.pre_approved:
        raise Invalid("an approved amount is given when the request enters Pre-Approval", field="approved")
    if c.to_stage == f.FundStage.pre_approved:
        approved = c.approved if c.approved is not None else r.requested
        if approved > r.requested:
            raise Invalid(f"cannot approve {approved}, more than the {r.requested} requested", field="approved")
        domain.check_milestone_total(_claims(milestones), r.requested, approved)
        r.approved = approved
    if c.to_stage == f.FundStage.draft:
        r.approved = None  # resumed after a rejection: approval starts over
    return await _move(session, r, c.to_stage, c.actor, c.note, prog)


async def add_milestone(session: AsyncSession, c: f.AddMilestone) -> f.FundRequest:
    r = await _locked(session, c.request_id, None)
    prog = await program(session, r.program)
    if r.stage in domain.CLOSED:
        raise Invalid(f"the request is {f.STAGE_LABELS[f.FundStage(r.stage)]}; it takes no new milestones",
                      field="request_id")
    if c.end_date < r.activity_start:
        raise Invalid("a milestone cannot end before the activity starts", field="end_date")
    repo = FundRequestRepository(session)
    milestones = (await repo.milestones([r.id]))[r.id]
    if len(milestones) >= 50:
        raise Invalid("a request has at most 50 milestones", field="name")
    due = domain.milestone_claim_due(c.end_date, prog, c.claim_due_date)
    domain.check_milestone_total([*_claims(milestones), domain.ClaimView(c.amount, f.ClaimStatus.planned)],
                                 r.requested, r.approved)
    now = utc_now()
    session.add(FundMilestone(id=uuid.uuid4(), request_id=r.id, position=len(milestones) + 1, name=c.name,
                              end_date=c.end_date, amount=c.amount, claim_due_date=due,
                              claim_status=f.ClaimStatus.planned.value, received=Decimal(0), updated_at=now))
    r.version, r.updated_at = r.version + 1, now
    return await _publish(session, r, prog, f.FundRequestUpdatedV1, changed=("milestones",))


async def update_claim(session: AsyncSession, c: f.UpdateMilestoneClaim) -> f.FundRequest:
    r = await _locked(session, c.request_id, None)
    prog = await program(session, r.program)
    m = await FundRequestRepository(session).milestone(r.id, c.milestone_id)
    if m is None:
        raise NotFound(f"no milestone {c.milestone_id} on this request", field="milestone_id")
    domain.check_claim(f.FundStage(r.stage), f.ClaimStatus(m.claim_status), c.claim_status)
    if c.received is not None and c.claim_status != f.ClaimStatus.paid:
        raise Invalid("a received amount is given when the claim is paid", field="received")
    now = utc_now()
    if c.claim_status == f.ClaimStatus.paid:
        received = c.received if c.received is not None else m.amount
        if received > m.amount:
            raise Invalid(f"cannot receive {received} on a claim of {m.amount}", field="received")
        m.received = received
    m.claim_status, m.updated_at = c.claim_status.value, now
    if c.claim_reference is not None:
        m.claim_reference = c.claim_reference
    r.version, r.updated_at = r.version + 1, now
    if c.claim_status == f.ClaimStatus.submitted and r.stage == f.FundStage.pre_approved:
        # AWS's request enters Cash Claim with its first claim.
        await session.flush()
        return await _move(session, r, f.FundStage.cash_claim, c.actor, f"claim for {m.name} submitted", prog)
    return await _publish(session, r, prog, f.FundRequestUpdatedV1, changed=("milestones",))


async def _snapshots(session: AsyncSession, rows: list[FundRequest]) -> list[f.FundRequest]:
    repo = FundRequestRepository(session)
    ids = [r.id for r in rows]
    progs = await programs(session)
    moves, milestones = await repo.moves(ids), await repo.milestones(ids)
    deadlines = await deadline_service.of(session, ids)
    out = []
    for r in rows:
        prog = progs[r.program]
        out.append(_snapshot(r, prog, moves[r.id], milestones[r.id], deadlines[r.id]))
    return out


async def get_request(session: AsyncSession, c: f.GetFundRequest) -> f.FundRequest:
    r = await FundRequestRepository(session).get(c.request_id)
    if r is None:
        raise NotFound(f"no fund request {c.request_id}", field="request_id")
    return (await _snapshots(session, [r]))[0]


async def list_requests(session: AsyncSession, c: f.ListFundRequests) -> f.FundRequestList:
    repo = FundRequestRepository(session)
    now = datetime.now(UTC)
    today = {zone: d.today_in(zone, now) for zone in await repo.zones_in_use()}
    rows, total = await repo.list(c, today)
    return f.FundRequestList(items=await _snapshots(session, rows), total=total, offset=c.offset, limit=c.limit)


# ------------------------------------------------------------------------------------------ roll-ups


def _quarter(at: datetime) -> str:
    return Quarter.calendar_of(at.astimezone(UTC).date()).label


async def rollup(session: AsyncSession, c: f.GetFundingRollup) -> f.FundingRollup:
    rows = await FundRequestRepository(session).rollup_rows(c.year)
    progs = await programs(session)
    zero = Decimal(0)

    def group(key_of: Any, label_of: Any) -> list[f.RollupRow]:
        acc: dict[tuple[str, str], dict[str, Any]] = {}
        for r in rows:
            key = key_of(r)
            if key is None:
                continue
            a = acc.setdefault((key, r["currency"]), {"requests": 0, "requested": zero, "approved": zero,
                                                      "claimed": zero, "received": zero})
            a["requests"] += 1
            for k in ("requested", "approved", "claimed", "received"):
                a[k] += r[k] or zero
        return [f.RollupRow(group=k, label=label_of(k), currency=cur, **v) for (k, cur), v in sorted(acc.items())]

    by_program = group(lambda r: r["program"], lambda k: progs[k].name if k in progs else k)
    by_partner = group(lambda r: str(r["partner_id"]) if r["partner_id"] else None, lambda k: k)
    by_quarter = group(lambda r: _quarter(r["created_at"]), lambda k: f"calendar {k}")
    roi = await _roi(session, rows)
    scope = (f.COUNTED_SCOPE + (f", created in calendar {c.year}" if c.year else "")
             + "; quarters are calendar quarters of creation (UTC); each currency on its own, nothing converted")
    return f.FundingRollup(scope=scope, by_program=by_program, by_partner=by_partner, by_quarter=by_quarter, roi=roi)


async def _roi(session: AsyncSession, rows: list[dict[str, Any]]) -> list[f.RoiRow]:
    """Per partner and currency: funding received against the won revenue of the deals its requests link
    (each deal once, however many requests link it)."""
    ids: set[uuid.UUID] = set()
    refs: set[str] = set()
    for r in rows:
        for link in r["opportunities"] or []:
            if link.get("opportunity_id"):
                ids.add(uuid.UUID(link["opportunity_id"]))
            if link.get("ace_id"):
                refs.add(link["ace_id"])
    found = await deals(session, sorted(ids), sorted(refs))
    by_id = {o.id: o for o in found}
    by_ref = {o.external_id: o for o in found if o.external_id}
    received: dict[tuple[uuid.UUID, str], Decimal] = defaultdict(Decimal)
    linked: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
    for r in rows:
        if r["partner_id"] is None:
            continue
        received[(r["partner_id"], r["currency"])] += r["received"] or Decimal(0)
        for link in r["opportunities"] or []:
            o = by_id.get(uuid.UUID(link["opportunity_id"])) if link.get("opportunity_id") else None
            o = o or by_ref.get(link.get("ace_id") or "")
            if o is not None and o.outcome == "won":
                linked[r["partner_id"]].add(o.id)
    won: dict[tuple[uuid.UUID, str], tuple[Decimal, int]] = {}
    for partner_id, deal_ids in linked.items():
        for deal_id in deal_ids:
            o = by_id[deal_id] if deal_id in by_id else next(x for x in found if x.id == deal_id)
            total, count = won.get((partner_id, o.currency), (Decimal(0), 0))
            won[(partner_id, o.currency)] = (total + o.amount, count + 1)
    out = []
    for key in sorted(set(received) | set(won), key=lambda k: (str(k[0]), k[1])):
        got = received.get(key, Decimal(0))
        revenue, count = won.get(key, (Decimal(0), 0))
        out.append(f.RoiRow(partner_id=key[0], currency=key[1], received=got, won_revenue=revenue, won_deals=count,
                            roi=(revenue / got).quantize(Decimal("0.01")) if got > 0 else None))
    return out
