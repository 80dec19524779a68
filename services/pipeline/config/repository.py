"""SQL for stage sets and settings. Both are read often and change rarely: a transaction reads them
once (cached on the session) so a batch of ingested events costs one read."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import pipeline as c
from services.pipeline.models import Opportunity, SettingsRow, StageSetRow

_SETTINGS = "pipeline.settings"
_STAGE_SETS = "pipeline.stage_sets"


class ConfigRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def settings(self, *, for_update: bool = False) -> c.PipelineSettings:
        cached = self.session.info.get(_SETTINGS)
        if cached is not None and not for_update:
            return cached
        query = select(SettingsRow.definition).where(SettingsRow.id == 1)
        if for_update:
            query = query.with_for_update()
        stored = await self.session.scalar(query)
        settings = c.PipelineSettings.model_validate(stored) if stored else c.PipelineSettings()
        self.session.info[_SETTINGS] = settings
        return settings

    async def save_settings(self, settings: c.PipelineSettings) -> None:
        data = settings.model_dump(mode="json")
        stmt = insert(SettingsRow).values(id=1, definition=data, version=settings.version)
        await self.session.execute(stmt.on_conflict_do_update(
            index_elements=[SettingsRow.id],
            set_={"definition": data, "version": settings.version, "updated_at": func.now()},
        ))
        self.session.info[_SETTINGS] = settings

    async def stage_sets(self) -> dict[str, c.StageSet]:
        """Every stage set: built-in ones (as redefined, if they were) and custom ones."""
        cached = self.session.info.get(_STAGE_SETS)
        if cached is not None:
            return cached
        found = dict(c.BUILTIN_STAGE_SETS)
        for definition in await self.session.scalars(select(StageSetRow.definition)):
            stage_set = c.StageSet.model_validate(definition)
            found[stage_set.key] = stage_set
        self.session.info[_STAGE_SETS] = found
        return found

    async def lock_stage_set(self, key: str) -> None:
        # Serialise redefinitions of one pipeline (the row may not exist yet: an advisory lock).
        await self.session.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"stage_set:{key}"))))

    async def save_stage_set(self, stage_set: c.StageSet) -> None:
        data = stage_set.model_dump(mode="json")
        stmt = insert(StageSetRow).values(key=stage_set.key, definition=data, version=stage_set.version)
        await self.session.execute(stmt.on_conflict_do_update(
            index_elements=[StageSetRow.key],
            set_={"definition": data, "version": stage_set.version, "updated_at": func.now()},
        ))
        self.session.info.pop(_STAGE_SETS, None)

    async def stages_in_use(self, pipeline: str) -> dict[str, int]:
        rows = await self.session.execute(
            select(Opportunity.stage, func.count()).where(Opportunity.pipeline == pipeline)
            .group_by(Opportunity.stage)
        )
        return {stage: int(n) for stage, n in rows.tuples()}
