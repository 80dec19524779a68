"""Pipeline KPIs kept ready per scope (gateway/read_models/kpi_snapshots.py): what a change invalidates and
who refreshes it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.read_models import kpi_snapshots
from gateway.read_models.pipeline.reading import kpis

SNAPSHOT_TOP = 10


_refresher = kpi_snapshots.Refresher()


async def kpis_json(session: AsyncSession, *, as_of: date, owner: str | None) -> str:
    return (await kpis(session, as_of=as_of, owner=owner, top=SNAPSHOT_TOP)).model_dump_json()


def kpi_scope(owner: str | None) -> str:
    return kpi_snapshots.DEPARTMENT if owner is None else kpi_snapshots.owner_scope(owner)


async def kpis_changed(session: AsyncSession, owners: Iterable[str]) -> None:
    """A batch changed these owners' deals (and so the department's figures): mark their snapshots
    out of date (last in the consumer's transaction: it holds the generation rows only until commit)
    and, once the batch has committed, compute the department's afresh (at most once a second)."""
    await kpi_snapshots.changed(session, [kpi_snapshots.DEPARTMENT, *(kpi_scope(o) for o in owners)])
    _refresher.after_commit(session, kpi_snapshots.DEPARTMENT,
                            lambda day: lambda s: kpis_json(s, as_of=day, owner=None))
