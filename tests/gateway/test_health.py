"""/healthz tells the truth and answers within its bound whatever is down: a service not running, a
service that never answers, NATS stopped, Postgres stopped. The gateway and the pipeline service run
in-process on a NATS and a Postgres of this module's own, so the tests can stop them.

No timing thresholds: "answers" means "before a 10 s client timeout", where the old /healthz waited
for as long as NATS stayed down. What a part reports is waited for, never assumed after a pause: on a
loaded machine an in-process service can miss /healthz's one-second bound now and then, and is then
rightly reported down for that one answer."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from contracts import pipeline as pc
from contracts.base import ErrorKind
from gateway.app import create_app
from runtime import bus, health
from runtime.commands import send
from runtime.embedded import EmbeddedNats, EmbeddedPostgres, free_port
from runtime.errors import CommandFailed
from runtime.service import RunningService, shutdown, start
from runtime.settings import Settings
from runtime.testing import TEST_SECRET, eventually, platform_database, unique
from services.pipeline.handlers import definition as pipeline_definition

CLIENT_TIMEOUT = 10.0
# These tests start a NATS and a Postgres of their own rather than use the run's servers.
pytestmark = pytest.mark.integration


@dataclass
class Platform:
    app: FastAPI
    nats: EmbeddedNats
    postgres: EmbeddedPostgres
    pipeline: RunningService

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://gateway",
                                 timeout=CLIENT_TIMEOUT)


@pytest.fixture(scope="module")
def own_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EmbeddedNats, EmbeddedPostgres]]:
    base = tmp_path_factory.mktemp("health")
    nats_server = EmbeddedNats(store_dir=base / "nats").start()
    postgres = EmbeddedPostgres(base_dir=base / "postgres").start()
    yield nats_server, postgres
    nats_server.stop()
    postgres.stop(mode="immediate")


@pytest.fixture(scope="module")
async def platform(own_servers: tuple[EmbeddedNats, EmbeddedPostgres]) -> AsyncIterator[Platform]:
    nats_server, postgres = own_servers
    urls = await platform_database(postgres.url(), unique("hz_"))
    common = {"environment": "test", "secret_key": TEST_SECRET, "nats_url": nats_server.url,
              "outbox_poll_seconds": 0.2, "bus_ack_wait_seconds": 5.0}
    stop = asyncio.Event()
    pipeline = await start(pipeline_definition, Settings(database_url=urls["pipeline"], **common), stop)
    app = create_app(Settings(database_url=urls["gateway"], **common))
    try:
        async with app.router.lifespan_context(app):
            yield Platform(app=app, nats=nats_server, postgres=postgres, pipeline=pipeline)
    finally:
        stop.set()
        await shutdown(pipeline)


async def healthz(platform: Platform) -> httpx.Response:
    async with platform.client() as client:
        return await client.get("/healthz")


async def healthz_once(platform: Platform, condition) -> dict:
    """The first /healthz body for which `condition(body)` holds; every answer on the way must arrive."""

    async def check() -> dict | None:
        body = (await healthz(platform)).json()
        return body if condition(body) else None

    return await eventually(check, "a /healthz answer that shows it")


def pipeline_ok(body: dict) -> bool:
    return body["services"]["pipeline"]["status"] == "ok" and body["gateway"]["status"] == "ok"


async def test_reports_each_service_as_it_answers_and_names_the_missing_ones(platform: Platform) -> None:
    body = await healthz_once(platform, pipeline_ok)
    # Only the pipeline runs here: the other services are missing, so the platform is not ready.
    assert body["status"] == "degraded"
    assert (await healthz(platform)).status_code == 503
    assert body["gateway"]["status"] == "ok"
    assert body["gateway"]["database"] is True and body["gateway"]["nats"] is True
    pipeline = body["services"]["pipeline"]
    assert pipeline["status"] == "ok"
    # The service's own reply is passed on, consumers with their lag included.
    assert pipeline["consumers"], pipeline
    assert all("pending" in stats for stats in pipeline["consumers"].values())
    assert body["services"]["commissions"]["status"] == "down"
    assert "commissions: no instance is running (no responders)" in body["reasons"]
    assert not any(r.startswith(("gateway", "pipeline")) for r in body["reasons"]), body["reasons"]


async def test_a_service_that_never_answers_is_reported_down_not_waited_for(platform: Platform) -> None:
    conn = await bus.connect(platform.nats.url, name="silent-commissions")
    silent = await conn.subscribe("health.commissions")  # takes the request, never answers
    await conn.flush()  # the server knows of the subscriber before the gateway asks
    try:
        body = await healthz_once(platform, lambda body: pipeline_ok(body) and any(
            r.startswith("commissions: no answer") for r in body["reasons"]))
    finally:
        await silent.unsubscribe()
        await conn.close()
    assert body["status"] == "degraded"
    assert body["services"]["commissions"]["status"] == "down"
    assert any(r.startswith("commissions: no answer") for r in body["reasons"]), body["reasons"]
    assert body["services"]["pipeline"]["status"] == "ok"


async def test_livez_answers_without_asking_anyone(platform: Platform) -> None:
    async with platform.client() as client:
        response = await client.get("/livez")
    assert response.status_code == 200
    assert response.json() == {"status": "alive"}


async def test_nats_down_answers_503_with_the_reason(platform: Platform) -> None:
    platform.nats.stop()
    try:
        # Every answer arrives (the client's 10 s timeout would raise if one hung); the gateway's client
        # notices the lost connection a moment after the server is gone.
        body = await healthz_once(platform, lambda body: "gateway: NATS is not connected" in body["reasons"])
        assert body["status"] == "degraded"
        assert {s["status"] for s in body["services"].values()} == {"down"}
        # /livez asks nobody and answers whatever is down.
        async with platform.client() as client:
            assert (await client.get("/livez")).status_code == 200
    finally:
        platform.nats.start()
    # Back up: the gateway and the pipeline reconnect on their own.
    await healthz_once(platform, lambda body: body["gateway"]["nats"] and pipeline_ok(body))


async def test_postgres_down_answers_503_with_the_reason(platform: Platform) -> None:
    # The last test of the module: Postgres stays down (the fixtures' teardown copes with that).
    platform.postgres.stop(mode="immediate")
    # Every answer arrives (the client's timeout would raise); the first may still come from a connection
    # the server had not closed yet, and the pipeline's own answer may miss its bound under load.
    body = await healthz_once(platform, lambda body: {"gateway: the database does not answer",
                                                      "pipeline: the database does not answer"} <= set(body["reasons"]))
    assert body["status"] == "degraded"
    # An API call needs the database to authenticate: a 503 the caller can retry, not a 500.
    async with platform.client() as client:
        api = await client.get("/api/partners", headers={"authorization": "Bearer po_whatever"})
    assert api.status_code == 503, api.text
    assert "retry-after" in api.headers
    # A service asked a command while its database is down answers "unavailable" (503), not "internal".
    conn = await bus.connect(platform.nats.url, name="health-probe")
    try:
        with pytest.raises(CommandFailed) as failed:
            await send(conn, pc.ListPartners(), timeout=15)
    finally:
        await conn.close()
    assert failed.value.error.kind == ErrorKind.unavailable, failed.value.error


async def test_the_probe_command_gives_up_on_a_dead_nats_instead_of_hanging() -> None:
    dead = f"nats://127.0.0.1:{free_port()}"
    with pytest.raises(health.NoAnswer):
        await health.check(dead, "pipeline", timeout=0.5)
    done = subprocess.run([sys.executable, "-m", "runtime.health", "pipeline"], capture_output=True, text=True,
                          timeout=30, env={**os.environ, "NATS_URL": dead},
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 1
    assert json.loads(done.stdout.strip().splitlines()[-1])["status"] == "down"
