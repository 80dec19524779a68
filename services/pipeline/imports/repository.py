"""SQL for CSV import staging: checked rows wait here until the commit stores them all at once."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.pipeline.models import ImportBatchRow, ImportRowRow


class ImportRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def begin(self, kind: str, columns: list[str], actor: str | None) -> ImportBatchRow:
        batch = ImportBatchRow(id=uuid.uuid4(), kind=kind, columns=columns, actor=actor)
        self.session.add(batch)
        await self.session.flush()
        return batch

    async def get(self, batch_id: uuid.UUID, *, for_update: bool = False) -> ImportBatchRow | None:
        query = select(ImportBatchRow).where(ImportBatchRow.id == batch_id)
        if for_update:
            query = query.with_for_update()
        return await self.session.scalar(query)

    async def add_rows(self, batch_id: uuid.UUID, rows: list[dict[str, Any]]) -> None:
        if rows:
            stmt = insert(ImportRowRow).values([{"batch_id": batch_id, **r} for r in rows])
            # A chunk sent twice (a retry after a timeout) replaces itself.
            await self.session.execute(stmt.on_conflict_do_update(
                index_elements=[ImportRowRow.batch_id, ImportRowRow.row],
                set_={"data": stmt.excluded.data, "errors": stmt.excluded.errors}))

    async def count(self, batch_id: uuid.UUID) -> int:
        return int(await self.session.scalar(
            select(func.count()).select_from(ImportRowRow).where(ImportRowRow.batch_id == batch_id)) or 0)

    async def rows(self, batch_id: uuid.UUID) -> list[ImportRowRow]:
        return list(await self.session.scalars(
            select(ImportRowRow).where(ImportRowRow.batch_id == batch_id).order_by(ImportRowRow.row)))

    async def delete(self, batch_id: uuid.UUID) -> None:
        await self.session.execute(delete(ImportBatchRow).where(ImportBatchRow.id == batch_id))

    async def purge_older_than(self, moment: datetime) -> None:
        await self.session.execute(delete(ImportBatchRow).where(ImportBatchRow.created_at < moment))
