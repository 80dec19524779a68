"""Real Postgres and real NATS for the whole run (see runtime/testing.py), plus per-test isolation:
each test gets its own scratch schema and stream where it needs one.

Every test is of one kind, a marker (pyproject.toml lists them): `unit` needs no server and runs in
seconds (`./partnerops test -m unit`); `integration` runs against the real Postgres and NATS;
`browser`, `e2e` and `faults` drive Chromium, whole platforms and killed servers. The kind follows
from the folder or from whether the test uses the servers; a module states it (`pytestmark`) only
where it starts servers of its own."""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from nats.aio.client import Client as NATS
from sqlalchemy.ext.asyncio import AsyncEngine

from runtime import bus
from runtime.db import create_engine, plain_dsn
from runtime.embedded import EmbeddedNats
from runtime.testing import TestServers, create_scratch_schema, platform_database, prepare_streams, test_servers, unique
from tests.browser.helpers import CHROMIUM
from tests.support import machine

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
KINDS = ("unit", "integration", "browser", "e2e", "faults")
KIND_OF_FOLDER = {"browser": "browser", "e2e": "e2e", "supervision": "e2e", "faults": "faults", "cluster": "faults"}
# Folders whose servers are package- or session-scoped: under pytest-xdist all their tests go to one worker
# (`--dist loadgroup`), so the servers start once. Everywhere else a module is the unit of distribution:
# module-scoped servers (private_bus, private_db) isolate it.
ONE_WORKER_FOLDERS = {"pipeline", "api", "browser"}
# Kinds whose tests start whole platforms or kill servers: a longer bound than pyproject's 180 s, which is
# there to stop a hung test, not to time one.
SLOW_KINDS = {"browser", "e2e", "faults"}
SLOW_TIMEOUT = 900


def pytest_report_header(config: pytest.Config) -> list[str]:
    # CI's output then says what it ran on (its durations mean little without the cores and memory).
    workers = getattr(config.option, "numprocesses", None) or 1  # -n N with pytest-xdist, else this one
    return [f"{machine.describe()}; pytest workers: {workers}"]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    # Again beside the durations, and under -q too (which leaves the header out).
    terminalreporter.write_line(pytest_report_header(config)[0])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    distributed = config.pluginmanager.hasplugin("xdist")
    for item in items:
        parts = item.path.relative_to(TESTS).parts
        folder = parts[0] if len(parts) > 1 else ""
        kind = next((k for k in KINDS if item.get_closest_marker(k)), None)
        if kind is None:
            kind = KIND_OF_FOLDER.get(folder) or ("integration" if "servers" in item.fixturenames else "unit")
            item.add_marker(kind)
        if kind in SLOW_KINDS and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(SLOW_TIMEOUT))
        if distributed:
            group = folder if folder in ONE_WORKER_FOLDERS else "/".join(parts)
            item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(scope="session")
def servers() -> Iterator[TestServers]:
    with test_servers(ROOT / ".data" / f"test-{unique('run')}") as s:
        yield s


@pytest.fixture(scope="session")
async def platform_db(servers: TestServers) -> dict[str, str]:
    """A migrated platform database: one schema and role per service. Keys: owner names and 'admin'."""
    return await platform_database(servers.admin_url, unique("po_"))


@pytest.fixture
async def nc(servers: TestServers) -> AsyncIterator[NATS]:
    conn = await bus.connect(servers.nats_url, name="test")
    yield conn
    await conn.close()


@pytest.fixture
async def scratch(platform_db: dict[str, str]) -> AsyncIterator[tuple[str, AsyncEngine]]:
    """A schema of its own with the runtime tables and a `counter` effect table; dropped afterwards."""
    schema = unique("s_")
    engine = create_engine(platform_db["admin"], trace_sql=False)
    await create_scratch_schema(engine, schema)
    yield schema, engine
    await engine.dispose()
    conn = await asyncpg.connect(plain_dsn(platform_db["admin"]))
    await conn.execute(f"DROP SCHEMA {schema} CASCADE")
    await conn.close()


@pytest.fixture(scope="session", autouse=True)
def tracing() -> None:
    # Real spans, so trace context travels in message headers as it does in the services.
    from runtime.telemetry import setup_tracing

    setup_tracing("tests")


@pytest.fixture(scope="session")
def chromium() -> str:
    """The path of the Chromium the browser tests and the digest's rendering drive (Debian's package)."""
    # Installed by the setup (`./partnerops test` and `./partnerops setup` install it when missing), not
    # here: a test run does not install system packages behind the developer's back.
    if os.path.exists(CHROMIUM):
        return CHROMIUM
    message = (f"BROWSER TESTS SKIPPED: {CHROMIUM} is missing. `./partnerops setup` installs it (Debian's "
               "chromium package, as root); `./partnerops test` does so before running the tests.")
    warnings.warn(message, stacklevel=1)
    print("\n" + "!" * 100 + "\n" + message + "\n" + "!" * 100, file=sys.stderr)
    pytest.skip(message)


@pytest.fixture(scope="module")
def private_bus(tmp_path_factory: pytest.TempPathFactory, servers: TestServers) -> Iterator[EmbeddedNats]:
    """A NATS server of this module's own, for tests that run whole services: their fixed stream and
    consumer names (PIPELINE, gateway__...) must not be shared with other tests' services. It has the
    platform's users and permissions and every stream; `private_bus.url_for("pipeline")` is the
    pipeline's login, `private_bus.url` the operator's."""
    server = EmbeddedNats(store_dir=tmp_path_factory.mktemp("nats")).start()
    try:
        prepare_streams(server.url)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def private_nats(private_bus: EmbeddedNats) -> str:
    """The operator's URL on the module's own NATS server (see private_bus)."""
    return private_bus.url


@pytest.fixture(scope="module")
async def private_db(servers: TestServers) -> dict[str, str]:
    """A migrated platform database of this module's own (same keys as platform_db)."""
    return await platform_database(servers.admin_url, unique("po_"))
