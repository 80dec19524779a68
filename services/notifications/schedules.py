"""The schedule plans on the bus (contracts/schedules.py): published when the service starts, so a
changed plan (another hour, a new job) replaces the stored one. Every replica publishes the same
plans; the server keeps one message per plan subject and fires each once."""

from __future__ import annotations

import logging

from contracts.schedules import PLANS
from runtime.service import RunningService

logger = logging.getLogger(__name__)


async def publish_plans(running: RunningService) -> None:
    js = running.nc.jetstream()
    for plan in PLANS:
        await js.publish(plan.subject, plan.body(), headers=plan.headers())
    logger.info("schedule plans in place: %s", ", ".join(f"{p.job} ({p.cron})" for p in PLANS))
    await running.stop.wait()
