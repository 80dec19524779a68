"""Deal registration use cases: submit (with the conflict check), read, list, decide. Never commits.

An approval creates the opportunity in the same transaction as the decision, through the
opportunities' own planning (`plan_create`), so the deal exists exactly when the registration says
approved.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from contracts import pipeline as c
from contracts import registrations as r
from runtime.errors import Conflict, Invalid, NotFound
from runtime.outbox import add_events
from services.pipeline.config.repository import ConfigRepository
from services.pipeline.models import SCHEMA, DealRegistration
from services.pipeline.opportunities import service as opportunities
from services.pipeline.registrations.repository import RegistrationRepository


def to_contract(row: DealRegistration) -> r.Registration:
    return r.Registration(
        id=row.id, version=row.version, partner_id=row.partner_id, name=row.name, customer=row.customer,
        amount=row.amount, currency=row.currency, expected_close_date=row.expected_close_date,
        deal_model=c.DealModel(row.deal_model), notes=row.notes, status=r.RegistrationStatus(row.status),
        conflicts=[r.Conflict.model_validate(x) for x in row.conflicts], submitted_by=row.submitted_by,
        submitted_at=row.submitted_at, decided_by=row.decided_by, decided_at=row.decided_at, reason=row.reason,
        opportunity_id=row.opportunity_id)


def _dump(conflicts: list[r.Conflict]) -> list[dict[str, object]]:
    return [x.model_dump(mode="json") for x in conflicts]


async def register_deal(session: AsyncSession, cmd: r.RegisterDeal) -> r.Registration:
    await opportunities.check_partners(session, {cmd.partner_id})
    key = r.customer_key(cmd.customer)
    if not key:
        raise Invalid("name the customer (letters or digits, not only a legal form like 'Inc.')", field="customer")
    repo = RegistrationRepository(session)
    row = DealRegistration(
        version=1, partner_id=cmd.partner_id, name=cmd.name, customer=cmd.customer, customer_key=key,
        amount=cmd.amount, currency=cmd.currency, expected_close_date=cmd.expected_close_date,
        deal_model=cmd.deal_model.value, notes=cmd.notes, status=r.RegistrationStatus.pending.value,
        conflicts=_dump(await repo.conflicts(key, exclude=None)), submitted_by=cmd.actor or "unknown",
        submitted_at=datetime.now(UTC))
    await repo.add(row)
    result = to_contract(row)
    await add_events(session, SCHEMA, [r.DealRegistrationSubmittedV1(registration=result, correlation_id=cmd.actor)])
    return result


async def get_registration(session: AsyncSession, cmd: r.GetRegistration) -> r.Registration:
    row = await RegistrationRepository(session).get(cmd.registration_id)
    if row is None:
        raise NotFound(f"no registration with id {cmd.registration_id}", field="registration_id")
    return to_contract(row)


async def list_registrations(session: AsyncSession, cmd: r.ListRegistrations) -> r.RegistrationList:
    rows, total = await RegistrationRepository(session).list(cmd)
    return r.RegistrationList(items=[to_contract(x) for x in rows], total=total, offset=cmd.offset, limit=cmd.limit)


async def decide_registration(session: AsyncSession, cmd: r.DecideRegistration) -> r.Registration:
    repo = RegistrationRepository(session)
    row = await repo.get(cmd.registration_id, for_update=True)
    if row is None:
        raise NotFound(f"no registration with id {cmd.registration_id}", field="registration_id")
    if cmd.expected_version is not None and cmd.expected_version != row.version:
        raise Conflict(f"the registration changed since version {cmd.expected_version} (now {row.version})",
                       field="expected_version")
    if row.status != r.RegistrationStatus.pending.value:
        raise Conflict(f"the registration was already {row.status}", field="registration_id")
    if not cmd.approve and not (cmd.reason or "").strip():
        # The partner reads the reason in the portal: a decline without one leaves them guessing.
        raise Invalid("say why you decline: the partner reads the reason in the portal", field="reason")
    now = datetime.now(UTC)
    if cmd.approve:
        # Checked again: a deal for the customer may have appeared since the partner registered.
        conflicts = await repo.conflicts(row.customer_key, exclude=row.id)
        row.conflicts = _dump(conflicts)
        if conflicts and not cmd.acknowledge_conflicts:
            raise Conflict(f"{len(conflicts)} other deal(s) or registration(s) for this customer; look at them and "
                           "approve with acknowledge_conflicts", field="acknowledge_conflicts")
        stage_sets = await ConfigRepository(session).stage_sets()
        work = opportunities.Work(actor=cmd.actor)
        draft = opportunities.Draft(name=row.name, customer=row.customer, amount=row.amount, currency=row.currency,
                                    partner_id=row.partner_id, expected_close_date=row.expected_close_date,
                                    owner=cmd.owner, deal_model=c.DealModel(row.deal_model))
        try:
            o = opportunities.plan_create(draft, stage_sets=stage_sets, pipeline=None, stage=None, work=work,
                                          origin=opportunities.Origin(actor=cmd.actor, at=now,
                                                                      correlation_id=cmd.actor))
        except Invalid as exc:  # e.g. the expected close date is now too far in the past
            raise Invalid(f"cannot become a deal: {exc.message}", field=exc.field) from exc
        await work.write(session)
        row.opportunity_id = o.id
    row.status = (r.RegistrationStatus.approved if cmd.approve else r.RegistrationStatus.rejected).value
    row.decided_by, row.decided_at, row.reason = cmd.actor, now, cmd.reason
    row.version += 1
    await session.flush()
    result = to_contract(row)
    await add_events(session, SCHEMA, [r.DealRegistrationDecidedV1(registration=result, correlation_id=cmd.actor)])
    return result
