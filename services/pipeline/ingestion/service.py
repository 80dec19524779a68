"""External opportunities from sync workers: an idempotent upsert keyed by (source, external id),
newer-wins by the source's last-modified time.

A batch of events is applied together: its opportunities are read (and locked) in one statement,
every event is applied in order in memory (so several versions of one opportunity in a batch end in
the newest), and everything is written at once. One bad event fails the batch; the consumer then
retries the events one by one and dead-letters the bad one with its reason.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contracts import pipeline as c
from contracts import sync
from runtime.errors import Invalid
from services.pipeline.config.repository import ConfigRepository
from services.pipeline.opportunities import domain
from services.pipeline.opportunities import service as opportunities
from services.pipeline.opportunities.domain import OpportunityState
from services.pipeline.opportunities.repository import OpportunityRepository


async def apply_external(session: AsyncSession, events: list[sync.OpportunityExternalUpsertedV1]) -> Counter[str]:
    """Apply external upserts in order; counts what happened: created, updated, unchanged, stale."""
    now = datetime.now(UTC)
    for event in events:
        domain.check_not_future(event.last_modified, now)
    await opportunities.check_partners(session, {e.partner_id for e in events})
    repo = OpportunityRepository(session)
    keys = sorted({(e.source.value, e.external_id) for e in events})
    stored = await repo.by_external_ids(keys)
    missing = [k for k in keys if k not in stored]
    if missing:
        # Another consumer may be creating the same records: wait for it, then look again.
        await repo.lock_external_keys(missing)
        stored.update(await repo.by_external_ids(missing))
    linking = await _shared_deals(repo, events, stored)
    stage_sets = await ConfigRepository(session).stage_sets()
    work = opportunities.Work(actor="sync")
    outcomes: Counter[str] = Counter()
    for event in events:
        key = (event.source.value, event.external_id)
        source = c.Source(event.source.value)
        origin = opportunities.Origin(
            actor=f"sync:{source.value}", at=event.last_modified, source=source, external_id=event.external_id,
            source_modified_at=event.last_modified, source_created_at=event.created_at,
            correlation_id=str(event.event_id))
        fields: dict[str, Any] = dict(
            name=event.name, customer=event.customer, amount=event.amount, currency=event.currency,
            expected_close_date=event.expected_close_date, deal_model=event.deal_model,
            hyperscaler=domain.hyperscaler_of(source), ace=event.ace, gcp=event.gcp)
        # Our own fields are kept when the worker does not know them.
        for name in ("partner_id", "owner"):
            if getattr(event, name) is not None:
                fields[name] = getattr(event, name)
        if key in linking and linking[key] is stored.get(key):
            # The first version of a record made from one of our deals: the deal becomes that record.
            fields.update(source=source, external_id=event.external_id)
            del linking[key]
        state = stored.get(key)
        if state is None:
            stored[key] = opportunities.plan_create(opportunities.Draft(**fields), stage_sets=stage_sets,
                                                    pipeline=event.pipeline, stage=event.stage, origin=origin,
                                                    work=work)
            outcomes["created"] += 1
        elif not domain.newer(state.source_modified_at, event.last_modified):
            outcomes["stale"] += 1
        else:
            if event.pipeline != state.pipeline:
                raise Invalid(f"{source.value} {event.external_id} is in pipeline {state.pipeline!r}; "
                              f"it cannot move to {event.pipeline!r}", field="pipeline")
            changed = opportunities.plan_change(state, fields, stage_sets=stage_sets, to_stage=event.stage,
                                                origin=origin, work=work)
            outcomes["updated" if changed else "unchanged"] += 1
    await work.write(session)
    return outcomes


async def _shared_deals(repo: OpportunityRepository, events: list[sync.OpportunityExternalUpsertedV1],
                        stored: dict[tuple[str, str], OpportunityState]) -> dict[tuple[str, str], OpportunityState]:
    """Deals shared from PartnerOps whose external record is not stored yet: each is put in `stored` under
    the record's key (so its versions update the deal, never make a second one) and returned by key. A
    deal deleted since is no link (the record becomes a deal of its own); one linked to another record
    already is refused."""
    wanted = {(e.source.value, e.external_id): e.deal_id for e in events
              if e.deal_id is not None and (e.source.value, e.external_id) not in stored}
    if not wanted:
        return {}
    deals = await repo.get_many(sorted(set(wanted.values())), for_update=True)
    linking: dict[tuple[str, str], OpportunityState] = {}
    for key, deal_id in wanted.items():
        deal = deals.get(deal_id)  # type: ignore[arg-type]
        if deal is None:
            continue
        if deal.external_id is not None and (deal.source, deal.external_id) != key:
            raise Invalid(f"deal {deal_id} is {deal.source} {deal.external_id} already; it cannot also be "
                          f"{key[0]} {key[1]}", field="deal_id")
        stored[key] = linking[key] = deal
    return linking
