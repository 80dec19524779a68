"""`partnerops backup` / `restore` (runtime/backup.py) on a platform with data: the pipeline service and
the gateway run, external opportunities flow in; a backup is taken; more events change the state; the
services stop and the backup is restored. The restored database equals the backed-up one, the streams
hold every event again, the read models rebuilt by replaying the restored streams equal the restored
read models (the KPIs), and services started on the restored platform re-read the streams from the
start without changing anything (their restored inboxes skip what is applied)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from contracts import pipeline as pc
from contracts import sync
from gateway.auth import Role
from gateway.rebuild import rebuild
from runtime import backup, bus
from runtime.db import plain_dsn
from runtime.settings import Settings
from runtime.testing import TEST_ROLE_PASSWORDS, TEST_SECRET, eventually
from services.pipeline.handlers import definition as pipeline_definition
from tests.support.gateway import TEST_SETTINGS, gateway_with_services

pytestmark = pytest.mark.timeout(600)
TAG = uuid.uuid4().hex[:6]


def upsert(i: int, version: int) -> sync.OpportunityExternalUpsertedV1:
    base = datetime(2026, 11, 1, tzinfo=UTC)
    stages = ("prospect", "qualified", "committed", "launched", "closed_lost")
    return sync.OpportunityExternalUpsertedV1(
        source=pc.ExternalSource.gcp, external_id=f"BK{TAG}{i:04d}", last_modified=base + timedelta(minutes=version),
        created_at=base, name=f"Backup {TAG} {i:04d}", customer="Backup customer", stage=stages[(i + version) % 5],
        amount=Decimal(500 + 10 * i + version), currency="USD", expected_close_date=date(2027, 2, 1),
        owner="backup@example.com", gcp=pc.GcpState(status=pc.GcpStatus.accepted))


async def publish(nc, events) -> None:
    js = nc.jetstream()
    for e in events:
        await js.publish(e.subject, e.model_dump_json().encode(), headers={"Nats-Msg-Id": str(e.event_id)})


async def state(admin_url: str) -> dict[str, Any]:
    """What the backup must bring back: the pipeline's records, the gateway's opportunity read model and the
    totals of each KPI aggregate."""
    conn = await asyncpg.connect(plain_dsn(admin_url))
    try:
        out: dict[str, Any] = {
            "pipeline": [tuple(r) for r in await conn.fetch(
                "SELECT id, version, name, stage, amount FROM pipeline.opportunity WHERE name LIKE $1 ORDER BY id",
                f"Backup {TAG} %")],
            "read_model": [tuple(r) for r in await conn.fetch(
                "SELECT id, version, name, stage, outcome, amount, stage_entered_at, closed_at "
                "FROM gateway.pipeline_opportunity WHERE name LIKE $1 ORDER BY id", f"Backup {TAG} %")],
        }
        for table, columns in (("pipeline_open_agg", "deals, amount"), ("pipeline_closed_agg", "deals, amount"),
                               ("pipeline_stuck_agg", "deals")):
            sums = ", ".join(f"sum({c})" for c in columns.split(", "))
            out[table] = tuple(await conn.fetchrow(f"SELECT {sums} FROM gateway.{table}"))
        return out
    finally:
        await conn.close()


async def kpis(g) -> dict[str, Any]:
    response = await g.people[Role.admin].client.get("/api/kpis")
    assert response.status_code == 200, response.text
    return response.json()


async def read_model_count(admin_url: str) -> int:
    conn = await asyncpg.connect(plain_dsn(admin_url))
    try:
        return int(await conn.fetchval("SELECT count(*) FROM gateway.pipeline_opportunity WHERE name LIKE $1",
                                       f"Backup {TAG} %"))
    finally:
        await conn.close()


async def test_backup_restore_and_replay_give_back_the_backed_up_state(private_db, private_bus, tmp_path: Path):
    admin = private_db["admin"]

    def settings_of(owner: str) -> Settings:
        return Settings(database_url=private_db[owner], nats_url=private_bus.url_for(owner), secret_key=TEST_SECRET,
                        **TEST_SETTINGS)

    nc = await bus.connect(private_bus.url, name="backup-test")
    directory = tmp_path / "backup"
    try:
        async with gateway_with_services(settings_of, [pipeline_definition], "backup.test",
                                         bus_goes_too=False) as g:  # started again on the same bus below
            await publish(nc, [upsert(i, v) for v in (1, 2) for i in range(24)])
            await eventually(lambda: _is(read_model_count(admin), 24), "24 opportunities in the read model")
            await eventually(lambda: _settled(admin), "the read model at the last versions")
            backed_up, kpis_backed_up = await state(admin), await kpis(g)

            manifest = await backup.backup(admin, private_bus.url, directory)
            assert manifest.streams["SYNC"] >= 48 and manifest.streams["PIPELINE"] >= 24
            assert {p.name for p in (directory / "postgres").iterdir()} >= {"pipeline.dump", "gateway.dump"}
            assert json.loads((directory / "manifest.json").read_text())["schemas"] == manifest.schemas
            with pytest.raises(backup.BackupError):  # never into a backup that is there
                await backup.backup(admin, private_bus.url, directory)

            await publish(nc, [upsert(i, 3) for i in range(24)] + [upsert(100 + i, 1) for i in range(6)])
            await eventually(lambda: _is(read_model_count(admin), 30), "the later events applied")
            assert await state(admin) != backed_up

        republished = await backup.restore(admin, private_bus.url, directory, TEST_ROLE_PASSWORDS)
        assert set(republished) == set(manifest.schemas)
        assert await state(admin) == backed_up  # the database as it was
        js = nc.jetstream()
        assert (await js.stream_info("SYNC")).state.messages == manifest.streams["SYNC"]

        applied = await rebuild(settings_of("gateway"))  # the read models from the restored streams alone
        assert sum(applied.values()) >= 24
        assert await state(admin) == backed_up

        async with gateway_with_services(settings_of, [pipeline_definition], "backup.test") as g:
            # The services recreate their durables and read every stream from the start; nothing changes.
            for stream, durable in (("SYNC", "pipeline__SYNC"), ("PIPELINE", "gateway__PIPELINE")):
                await eventually(lambda s=stream, d=durable: _drained(js, s, d), f"{durable} caught up")
            assert await state(admin) == backed_up
            assert _figures(await kpis(g)) == _figures(kpis_backed_up)
    finally:
        await nc.close()


async def _is(coro, n: int) -> bool:
    return (await coro) == n


async def _settled(admin_url: str) -> bool:
    s = await state(admin_url)
    return len(s["read_model"]) == 24 and all(row[1] >= 2 for row in s["pipeline"]) and \
        [(r[0], r[1]) for r in s["read_model"]] == [(r[0], r[1]) for r in s["pipeline"]]


async def _drained(js, stream: str, durable: str) -> bool:
    info = await js.consumer_info(stream, durable)
    return info.num_pending == 0 and info.num_ack_pending == 0


def _figures(k: Any) -> Any:
    """The KPI figures without the moments they were computed at."""
    if isinstance(k, dict):
        return {key: _figures(v) for key, v in k.items() if not key.endswith(("_at", "as_of", "generated"))}
    if isinstance(k, list):
        return [_figures(v) for v in k]
    return k
