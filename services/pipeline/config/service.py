"""Stage sets and pipeline settings. Never commits."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from contracts import pipeline as c
from runtime.errors import Conflict
from runtime.outbox import add_event
from services.pipeline.config import domain
from services.pipeline.config.repository import ConfigRepository
from services.pipeline.models import SCHEMA
from services.pipeline.partners import enablement
from services.pipeline.partners import service as partners
from services.pipeline.partners.repository import PartnerRepository

SETTING_FIELDS = ("fiscal_year_start_month", "reporting_currency", "quarterly_target", "forecast_pipelines",
                  "stuck_after_days", "tier_window_days", "tier_thresholds", "tier_benefits", "scorecard_weights",
                  "fx_rates", "feasibility_from_enablement")


async def list_stage_sets(session: AsyncSession, _cmd: c.ListStageSets) -> c.StageSetList:
    found = await ConfigRepository(session).stage_sets()
    return c.StageSetList(items=[found[k] for k in sorted(found)])


async def define_stage_set(session: AsyncSession, cmd: c.DefineStageSet) -> c.StageSet:
    repo = ConfigRepository(session)
    await repo.lock_stage_set(cmd.key)
    current = (await repo.stage_sets()).get(cmd.key)
    new = domain.redefine(current, cmd.key, cmd.name, cmd.stages, await repo.stages_in_use(cmd.key))
    if current is not None and current.stages == new.stages and current.name == new.name:
        return current
    await repo.save_stage_set(new)
    await add_event(session, SCHEMA, c.StageSetDefinedV1(stage_set=new, correlation_id=cmd.actor))
    return new


async def get_settings(session: AsyncSession, _cmd: c.GetPipelineSettings) -> c.PipelineSettings:
    return await ConfigRepository(session).settings()


async def update_settings(session: AsyncSession, cmd: c.UpdatePipelineSettings) -> c.PipelineSettings:
    repo = ConfigRepository(session)
    current = await repo.settings(for_update=True)
    if cmd.expected_version is not None and cmd.expected_version != current.version:
        raise Conflict(f"the settings changed since version {cmd.expected_version} (now {current.version})",
                       field="expected_version")
    sent = {name: getattr(cmd, name) for name in SETTING_FIELDS if name in cmd.model_fields_set}
    sent = {k: v for k, v in sent.items() if v is not None}
    new = domain.merge_settings(current, {k: (v.model_dump() if hasattr(v, "model_dump") else v)
                                          for k, v in sent.items()})
    domain.check_forecast_pipelines(new, (await repo.stage_sets()).keys())
    if new.model_dump(exclude={"version"}) == current.model_dump(exclude={"version"}):
        return current
    await repo.save_settings(new)
    await add_event(session, SCHEMA, c.PipelineSettingsChangedV1(settings=new, correlation_id=cmd.actor))
    if new.scorecard_weights != current.scorecard_weights:
        await partners.rescore_all(session, new.scorecard_weights, actor=cmd.actor)
    if new.feasibility_from_enablement and not current.feasibility_from_enablement:
        await enablement.apply_all(session, new, actor=cmd.actor)
    if domain.tier_settings_changed(current, new):
        ids = await PartnerRepository(session).active_ids()
        await partners.recompute(session, ids, new, actor=cmd.actor)
    return new
