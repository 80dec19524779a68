"""`partnerops backup DIR` / `partnerops restore DIR`: every schema and every stream, restorable together.

A backup is a directory:
- `jetstream/<STREAM>/stream.tar.s2` and `backup.json`: a JetStream snapshot of each stream (the
  server's own format, `$JS.API.STREAM.SNAPSHOT`; what `nats stream backup` writes), without consumers;
- `postgres/<schema>.dump`: `pg_dump --format=custom` of each owner's schema, all taken in one exported
  snapshot (`pg_export_snapshot`), so the schemas are consistent with each other;
- `manifest.json`: what is in it and `streams_taken_at`, the database time the stream snapshots began.

The streams are taken first, the database second. So the database may know events the streams do not
(published in between); `restore` therefore publishes every outbox row written since
`streams_taken_at` again (the outbox keeps sent rows for OUTBOX_RETENTION_DAYS): the streams then hold
every event the restored state has produced. Consumers are not in the snapshots: the services
recreate their durables and read each stream from its start, and the restored inboxes skip what the
restored state has already applied. The gateway's read models can be rebuilt from the restored streams
(`partnerops rebuild-read-models`); they equal the restored ones (tests/cluster/test_backup_restore.py).

Restore into a platform whose services are stopped (the servers up): it replaces each schema and each
stream. docs/deploy.md says how, for `partnerops up`, docker compose and Kubernetes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from nats.aio.client import Client as NATS

from contracts.registry import STREAMS
from runtime import bus
from runtime.db import create_engine, plain_dsn
from runtime.embedded import pg_binary
from runtime.outbox import OutboxRelay
from runtime.topology import DATABASE_OWNERS

logger = logging.getLogger(__name__)

FORMAT = 1
CHUNK_BYTES = 128 * 1024
# Outbox rows written this long before the stream snapshots began are published again too (clock skew
# between the database and this process does not matter: both times are the database's).
REPUBLISH_MARGIN = timedelta(minutes=1)


class BackupError(Exception):
    pass


@dataclass
class Manifest:
    format: int
    created_at: str
    streams_taken_at: str
    schemas: list[str]
    streams: dict[str, int]  # stream -> messages in its snapshot

    @classmethod
    def read(cls, directory: Path) -> Manifest:
        path = directory / "manifest.json"
        if not path.exists():
            raise BackupError(f"{directory} is not a PartnerOps backup (no manifest.json)")
        data = json.loads(path.read_text())
        if data.get("format") != FORMAT:
            raise BackupError(f"{directory}: backup format {data.get('format')!r}, this version reads {FORMAT}")
        return cls(**data)


# ------------------------------------------------------------------------------------- JetStream


async def _api(nc: NATS, subject: str, body: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
    reply = json.loads((await nc.request(subject, json.dumps(body).encode(), timeout=timeout)).data)
    if "error" in reply:
        raise BackupError(f"{subject}: {reply['error'].get('description', reply['error'])}")
    return dict(reply)


async def snapshot_stream(nc: NATS, stream: str, directory: Path, *, timeout: float = 60.0) -> int:
    """The server's snapshot of one stream into directory/stream.tar.s2, its config and state into
    backup.json; returns the messages in it. Every chunk is acknowledged (the server's flow control)."""
    directory.mkdir(parents=True, exist_ok=True)
    inbox = nc.new_inbox()
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    data = open(directory / "stream.tar.s2", "wb")  # closed below; written from the callback

    async def on_chunk(msg: Any) -> None:
        if done.done():
            return
        status = (msg.headers or {}).get("Status") or (msg.headers or {}).get("Nats-Status")
        if status and not str(status).startswith("2"):
            done.set_exception(BackupError(f"snapshot of {stream}: {status} {msg.headers}"))
            return
        if not msg.data:
            done.set_result(None)
            return
        data.write(msg.data)
        if msg.reply:
            await nc.publish(msg.reply, b"")

    sub = await nc.subscribe(inbox, cb=on_chunk, pending_msgs_limit=-1, pending_bytes_limit=-1)
    try:
        reply = await _api(nc, f"$JS.API.STREAM.SNAPSHOT.{stream}",
                           {"deliver_subject": inbox, "no_consumers": True, "chunk_size": CHUNK_BYTES})
        await asyncio.wait_for(done, timeout)
    finally:
        await sub.unsubscribe()
        data.close()
    meta = {"config": reply["config"], "state": reply["state"]}
    (directory / "backup.json").write_text(json.dumps(meta, indent=2))
    return int(reply["state"].get("messages", 0))


async def restore_stream(nc: NATS, directory: Path, *, timeout: float = 600.0) -> int:
    """Replace the stream with its snapshot (deleted first if it exists); returns its messages."""
    meta = json.loads((directory / "backup.json").read_text())
    name = meta["config"]["name"]
    try:
        await _api(nc, f"$JS.API.STREAM.DELETE.{name}", {})
    except BackupError as exc:
        if "not found" not in str(exc):
            raise
    reply = await _api(nc, f"$JS.API.STREAM.RESTORE.{name}", meta)
    target = reply["deliver_subject"]
    with open(directory / "stream.tar.s2", "rb") as data:
        while chunk := data.read(64 * 1024):
            answer = await nc.request(target, chunk, timeout=30)
            if answer.data and b"error" in answer.data:
                raise BackupError(f"restore of {name}: {answer.data[:300]!r}")
    final = json.loads((await nc.request(target, b"", timeout=timeout)).data)
    if "error" in final:
        raise BackupError(f"restore of {name}: {final['error']}")
    return int(final.get("state", {}).get("messages", 0))


# -------------------------------------------------------------------------------------- Postgres


def _pg_run(tool: str, args: list[str], dsn: str) -> None:
    # The password goes by environment, never on a command line a process listing shows.
    env = {**os.environ, "PGPASSWORD": asyncpg_password(dsn)}
    result = subprocess.run([str(pg_binary(tool)), *args, "--dbname", _without_password(dsn)], env=env,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise BackupError(f"{tool} failed: {result.stderr.strip()[-2000:]}")


def asyncpg_password(dsn: str) -> str:
    from urllib.parse import unquote, urlsplit

    return unquote(urlsplit(dsn).password or "")


def _without_password(dsn: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(dsn)
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit((parts.scheme, f"{user}@{host}" if user else host, parts.path, parts.query, ""))


async def dump_schemas(admin_url: str, directory: Path, schemas: list[str]) -> None:
    """pg_dump of each schema, all in the one snapshot this transaction exports (consistent together)."""
    directory.mkdir(parents=True, exist_ok=True)
    dsn = plain_dsn(admin_url)
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            snapshot = await conn.fetchval("SELECT pg_export_snapshot()")
            for schema in schemas:
                await asyncio.to_thread(_pg_run, "pg_dump", [
                    "--format=custom", f"--schema={schema}", f"--snapshot={snapshot}", "--no-privileges",
                    f"--file={directory / f'{schema}.dump'}"], dsn)
    finally:
        await conn.close()


async def restore_schemas(admin_url: str, directory: Path, schemas: list[str]) -> None:
    """Each schema dropped and restored from its dump, each in one transaction."""
    dsn = plain_dsn(admin_url)
    for schema in schemas:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()
        await asyncio.to_thread(_pg_run, "pg_restore", [
            "--single-transaction", "--exit-on-error", "--no-privileges", str(directory / f"{schema}.dump")], dsn)


# ------------------------------------------------------------------------------------ the whole


async def backup(admin_url: str, nats_url: str, directory: Path) -> Manifest:
    if directory.exists() and any(directory.iterdir()):
        raise BackupError(f"{directory} is not empty; give a new directory")
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)  # the dumps hold password hashes and personal data
    conn = await asyncpg.connect(plain_dsn(admin_url))
    try:
        taken_at: datetime = await conn.fetchval("SELECT now()")
    finally:
        await conn.close()
    nc = await bus.connect(nats_url, name="backup", attempts=5)
    streams: dict[str, int] = {}
    try:
        for spec in STREAMS:
            streams[spec.name] = await snapshot_stream(nc, spec.name, directory / "jetstream" / spec.name)
            logger.info("stream %s: %d messages", spec.name, streams[spec.name])
    finally:
        await nc.close()
    schemas = list(DATABASE_OWNERS)
    await dump_schemas(admin_url, directory / "postgres", schemas)
    manifest = Manifest(format=FORMAT, created_at=datetime.now(taken_at.tzinfo).isoformat(),
                        streams_taken_at=taken_at.isoformat(), schemas=schemas, streams=streams)
    (directory / "manifest.json").write_text(json.dumps(vars(manifest), indent=2))
    return manifest


async def restore(admin_url: str, nats_url: str, directory: Path, passwords: dict[str, str]) -> dict[str, int]:
    """Schemas, then streams, then the outbox rows written since the streams were taken published again.
    Returns how many events each service published again."""
    from runtime import database_setup

    manifest = Manifest.read(directory)
    # The roles must exist before the dumps name them as owners (a fresh database: as `migrate` makes them).
    await database_setup.setup_roles_and_schemas(admin_url, passwords)
    await restore_schemas(admin_url, directory / "postgres", manifest.schemas)
    # Grants and role settings as `migrate` makes them (the dumps carry none).
    await database_setup.setup_roles_and_schemas(admin_url, passwords)
    nc = await bus.connect(nats_url, name="restore", attempts=5)
    republished: dict[str, int] = {}
    try:
        for spec in STREAMS:
            if (directory / "jetstream" / spec.name / "backup.json").exists():
                await restore_stream(nc, directory / "jetstream" / spec.name)
        since = datetime.fromisoformat(manifest.streams_taken_at) - REPUBLISH_MARGIN
        engine = create_engine(admin_url, trace_sql=False)
        try:
            for schema in manifest.schemas:
                relay = OutboxRelay(engine=engine, dsn="", schema=schema, js=nc.jetstream())
                republished[schema] = await relay.republish(since=since)
        finally:
            await engine.dispose()
    finally:
        await nc.close()
    return republished
