"""Hostile events on every service consumer's subjects (the pipeline's sync subject, the gateway's
read models, the commissions service), against the real services on a NATS and Postgres of their own:
a ~1 MB invalid event, a 50,000-deep nested one and NUL characters are parked at once with their
reason, the consumer keeps going, and a valid canary sent afterwards is applied."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import AsyncIterator

import pytest

from contracts import billing as b
from contracts import deadletters as dl
from contracts import pipeline as p
from contracts import sync
from contracts.base import Event
from runtime import bus, deadletter
from runtime.service import RunningService, ServiceDefinition, shutdown, start
from runtime.settings import Settings
from runtime.testing import eventually
from tests.commissions.helpers import sample
from tests.pipeline.helpers import external
from tests.support.bus import bus_goes_too

pytestmark = pytest.mark.timeout(240)


def settings_for(db_url: str, nats_url: str) -> Settings:
    return Settings(environment="test", database_url=db_url, nats_url=nats_url, log_format="text",
                    bus_ack_wait_seconds=5, bus_backoff_seconds=(0.1, 0.2, 0.5), bus_max_deliver=4,
                    outbox_poll_seconds=0.2, bus_fetch_batch=64)


def _definitions() -> dict[str, ServiceDefinition]:
    from gateway.app import definition as gateway
    from services.commissions.handlers import definition as commissions
    from services.pipeline.handlers import definition as pipeline

    return {"pipeline": pipeline, "commissions": commissions, "gateway": gateway}


@pytest.fixture(scope="module")
async def services(private_db: dict[str, str], private_nats: str) -> AsyncIterator[dict[str, RunningService]]:
    running = {name: await start(d, settings_for(private_db[name], private_nats), asyncio.Event())
               for name, d in _definitions().items()}
    yield running
    bus_goes_too(*running.values())
    await asyncio.gather(*(shutdown(r) for r in running.values()))  # side by side


@pytest.fixture
async def client(private_nats: str) -> AsyncIterator:
    conn = await bus.connect(private_nats, name="hostile-test")
    yield conn
    await conn.close()


def canary(model: type[Event]) -> Event:
    if model is sync.OpportunityExternalUpsertedV1:
        return external()
    return sample(model, uuid.uuid4())


CASES = [
    ("pipeline", sync.OpportunityExternalUpsertedV1),
    ("gateway", p.OpportunityCreatedV1),
    ("gateway", p.PartnerCreatedV1),
    ("commissions", b.InvoicePaidV1),
    ("commissions", p.OpportunityWonV1),
]


async def _publish(js, subject: str, data: bytes) -> None:
    await js.publish(subject, data, headers={"Nats-Msg-Id": str(uuid.uuid4())})


@pytest.mark.parametrize(("service", "model"), CASES, ids=[f"{s}-{m.subject}" for s, m in CASES])
async def test_huge_deep_and_nul_events_are_parked_and_the_canary_is_applied(services, client, service, model):
    running = services[service]
    consumer = running.consumer_of(model.subject)
    key = next(s.inbox_key for s in consumer.subs if s.subject == model.subject)
    js = client.jetstream()
    good = json.loads(canary(model).model_dump_json())
    # ~1 MB, just under the server's max payload: with the dead-letter headers it no longer fits.
    shell = json.dumps({**good, "event_id": str(uuid.uuid4()), "schema_version": ""}).encode()
    huge = shell.replace(b'"schema_version": ""', b'"schema_version": "' + b"x" * (client.max_payload - 300
                                                                                    - len(shell)) + b'"')
    assert 1_000_000 < len(huge) < client.max_payload - 200
    deep = b"[" * 50_000 + b"]" * 50_000
    deep_object = b'{"schema_version": 1, "x": ' + b'{"":' * 40_000 + b"1" + b"}" * 40_000 + b"}"  # < 256 KiB
    nul = _with_nul(good)
    before = len(await deadletter.list_all(js, consumer=key))
    applied = consumer.applied_by[key]
    retried = consumer.stats.retried
    for body in (huge, deep, deep_object, nul):
        await _publish(js, model.subject, body)
    the_canary = canary(model)
    await _publish(js, model.subject, the_canary.model_dump_json().encode())

    async def settled() -> bool:
        return (len(await deadletter.list_all(js, consumer=key)) - before == 4
                and consumer.applied_by[key] > applied)

    await eventually(settled, timeout=60, what=f"{key}: four parked, the canary applied")
    letters = (await deadletter.list_all(js, consumer=key))[before:]
    reasons = [letter.reason for letter in letters]
    assert "body too large" in reasons[0]
    assert "nested too deep" in reasons[1] and "nested too deep" in reasons[2]
    assert all(letter.deliveries == 1 for letter in letters), reasons  # at once, never retried
    assert consumer.stats.retried == retried
    assert reasons[3], reasons
    # The 1 MB original did not fit beside the dead-letter headers: a reference and a digest instead.
    too_large = letters[0]
    assert dl.H_OMITTED in too_large.headers and too_large.data == b""
    assert too_large.headers[dl.H_SHA256] == hashlib.sha256(huge).hexdigest()
    original = await js.get_msg(too_large.headers[dl.H_STREAM], seq=int(too_large.headers[dl.H_SEQ]))
    assert original.data == huge
    assert consumer.alive() and running.fatal is None


def _with_nul(good: dict) -> bytes:
    """The valid event with a NUL in every string that is not an id, date or enum-like code."""
    def poison(value):
        if isinstance(value, dict):
            return {k: poison(v) if k not in ("event_id", "schema_version", "currency") else v
                    for k, v in value.items()}
        if isinstance(value, list):
            return [poison(v) for v in value]
        if isinstance(value, str) and not _looks_structured(value):
            return value + "\u0000"
        return value

    out = poison(good)
    out["event_id"] = str(uuid.uuid4())
    return json.dumps(out).encode()


def _looks_structured(value: str) -> bool:
    try:
        uuid.UUID(value)
        return True
    except ValueError:
        pass
    return value[:4].isdigit() or value.isupper() or (value.islower() and value.isidentifier())


async def test_health_reports_each_consumer_task_alive_with_its_lag(services):
    for running in services.values():
        report = await running.health()
        assert report["consumers"], running.definition.name
        for durable, c in report["consumers"].items():
            assert durable.startswith(f"{running.definition.name}__") and durable.split("__")[1].isupper()
            assert c["alive"] is True and c["lag"] == 0 and c["paused_seconds"] is None, (durable, c)
        assert report["status"] == "ok", report


async def test_a_nats_connection_closed_for_good_ends_the_service(services):
    """(Last in this module: it takes the pipeline service down.) `main` then exits 1."""
    running = services["pipeline"]
    await running.nc.close()
    await eventually(lambda: _true(running.fatal is not None), what="the service to give up")
    assert "closed for good" in running.fatal and running.stop.is_set()
    assert (await running.health())["status"] == "degraded"


async def _true(value: bool) -> bool:
    return value
