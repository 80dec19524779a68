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
