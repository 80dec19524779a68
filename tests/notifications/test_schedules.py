"""Schedules on the bus, against the embedded nats-server: the service puts its plans in the SCHEDULES
stream; the server fires them (here a test plan every second, as the real ones fire hourly and daily);
the ticks are consumed through the inbox, fire each alert once however many arrive, and keep coming
after the NATS server is killed and restarted; the pipeline recomputes tiers on its daily tick."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from contracts import pipeline as p
from contracts import schedules as s
from runtime import bus
from runtime.service import shutdown, start
from runtime.settings import Settings
from runtime.testing import eventually
from services.pipeline.handlers import definition as pipeline_definition
from tests.notifications.conftest import OWNER, deal, feed, publish, settled

TEST_PLAN = "schedule.plan.test_every_second"


async def _fire_every_second(nc, tick: type[s.HourlyTickV1 | s.TierRecomputationDueV1]) -> None:
    body = tick(job=tick.subject.split(".")[1]).model_dump_json(include={"schema_version", "job"}).encode()
    await nc.jetstream().publish(TEST_PLAN, body,
                                 headers={"Nats-Schedule": "@every 1s", "Nats-Schedule-Target": tick.subject})


async def _stop_firing(nc) -> None:
    await nc.jetstream().purge_stream(s.STREAM.name, subject=TEST_PLAN)


async def test_the_service_puts_its_plans_on_the_bus(service, bus_client):
    js = bus_client.jetstream()
    for plan in s.PLANS:
        msg = await eventually(lambda plan=plan: _last(js, plan.subject), f"the plan {plan.subject}")
        assert msg.headers["Nats-Schedule"] == plan.cron
        assert msg.headers["Nats-Schedule-Target"] == plan.tick.subject


async def _last(js, subject):
    try:
        return await js.get_last_msg(s.STREAM.name, subject)
    except Exception:
        return None


async def test_server_fired_ticks_alert_once_and_keep_coming_after_a_nats_restart(service, bus_client,
                                                                                   private_bus, private_nats):
    stuck = deal(entered=datetime.now(UTC) - timedelta(days=60), name="Stuck through a restart")
    await publish(bus_client, p.OpportunityCreatedV1(opportunity=stuck))
    await settled(bus_client, service)
    ticks = service.consumer_of(s.HourlyTickV1.subject)
    key = next(sub.inbox_key for sub in ticks.subs if sub.subject == s.HourlyTickV1.subject)
    before = ticks.applied_by[key]
    await _fire_every_second(bus_client, s.HourlyTickV1)
    try:
        await eventually(lambda: _more(ticks, key, before + 2), "two ticks fired by the server")
        alerts = [a for a in (await feed(bus_client, OWNER)).items if a.link == f"/opportunities/{stuck.id}"]
        assert len(alerts) == 1

        private_bus.stop(kill=True)
        private_bus.start()
        after_restart = ticks.applied_by[key]
        await eventually(lambda: _more(ticks, key, after_restart + 2), "ticks after the NATS restart", timeout=60)
    finally:
        conn = await bus.connect(private_nats, name="test-cleanup")
        await _stop_firing(conn)
        await conn.close()
    conn = await bus.connect(private_nats, name="test-after")
    try:
        alerts = [a for a in (await feed(conn, OWNER)).items if a.link == f"/opportunities/{stuck.id}"]
        assert len(alerts) == 1
    finally:
        await conn.close()


async def _more(consumer, key, wanted):
    return consumer.applied_by[key] >= wanted


async def test_the_pipeline_recomputes_tiers_on_its_tick(private_db, private_bus, private_nats, service):
    stop = asyncio.Event()
    pipeline = await start(pipeline_definition, Settings(
        database_url=private_db["pipeline"], nats_url=private_bus.url_for("pipeline"), bus_ack_wait_seconds=5,
        outbox_poll_seconds=0.2), stop)
    conn = await bus.connect(private_nats, name="test-tiers")
    try:
        consumer = pipeline.consumer_of(s.TierRecomputationDueV1.subject)
        key = next(sub.inbox_key for sub in consumer.subs if sub.subject == s.TierRecomputationDueV1.subject)
        await _fire_every_second(conn, s.TierRecomputationDueV1)
        await eventually(lambda: _more(consumer, key, 1), "a tier recomputation tick applied")
        assert consumer.stats.dead_lettered == 0
    finally:
        await _stop_firing(conn)
        await conn.close()
        stop.set()
        await shutdown(pipeline)
