"""External opportunities from sync workers: an idempotent upsert keyed by (source, external id),
newer-wins by the source's last-modified time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import pipeline as c
from contracts import sync
from runtime.errors import Invalid
from runtime.outbox import add_events
from services.pipeline.models import SCHEMA
from services.pipeline.opportunities import domain
from services.pipeline.opportunities import service as opportunities
from services.pipeline.opportunities.repository import OpportunityRepository


async def apply_external(session: AsyncSession, event: sync.OpportunityExternalUpsertedV1) -> str:
    """Apply one external upsert; returns what happened: created, updated, unchanged or stale."""
    domain.check_not_future(event.last_modified, datetime.now(UTC))
    source = c.Source(event.source.value)
    repo = OpportunityRepository(session)
    stored = await repo.by_external_id(source.value, event.external_id)
    if stored is None:
        # Two consumers creating the same record at once: the second waits here, then finds it.
        await session.execute(select(func.pg_advisory_xact_lock(
            func.hashtext(f"external:{source.value}:{event.external_id}"))))
        stored = await repo.by_external_id(source.value, event.external_id)
    origin = opportunities.Origin(
        actor=f"sync:{source.value}", at=event.last_modified, source=source, external_id=event.external_id,
        source_modified_at=event.last_modified, source_created_at=event.created_at,
        correlation_id=str(event.event_id),
    )
    fields: dict[str, Any] = dict(
        name=event.name, customer=event.customer, amount=event.amount, currency=event.currency,
        expected_close_date=event.expected_close_date, deal_model=event.deal_model,
        hyperscaler=domain.hyperscaler_of(source), ace=event.ace, gcp=event.gcp,
    )
    # Our own fields are kept when the worker does not know them.
    for name in ("partner_id", "owner"):
        if getattr(event, name) is not None:
            fields[name] = getattr(event, name)
    if stored is None:
        draft = opportunities.Draft(**fields)
        await opportunities.create(session, draft, pipeline=event.pipeline, stage=event.stage, origin=origin)
        outcome = "created"
    elif not domain.newer(stored.source_modified_at, event.last_modified):
        return "stale"
    else:
        if event.pipeline != stored.pipeline:
            raise Invalid(f"{source.value} {event.external_id} is in pipeline {stored.pipeline!r}; "
                          f"it cannot move to {event.pipeline!r}", field="pipeline")
        changed = await opportunities.change(session, stored, fields, to_stage=event.stage, origin=origin)
        outcome = "updated" if changed else "unchanged"
    await add_events(session, SCHEMA, origin.events)
    return outcome
