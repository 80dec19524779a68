"""Browser tests: the real platform (`partnerops up` against the test servers, as tests/e2e does)
driven by Playwright in Debian's Chromium, which the setup installs (`./partnerops setup`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from runtime.embedded import free_port
from runtime.testing import STARTUP_PATIENCE, TEST_SECRET, eventually_blocking, platform_database, unique

# Tests import these from tests.browser.helpers; they stay reachable here for work written before the move.
from tests.browser.helpers import (  # noqa: F401
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    LAPTOP,
    ROOT,
    TABLET,
    Platform,
    money,
    shot,
    sign_in,
)


# Package-scoped, not session-scoped: the platform (eight processes polling their outboxes) and Chromium are
# stopped after the last browser test instead of idling beside every later module of a full run.
@pytest.fixture(scope="package")
async def platform(servers, tmp_path_factory) -> AsyncIterator[Platform]:
    """The whole platform with its demo data, on its own NATS server and database: every browser module
    shares it (one demo seeding), each test working on records of its own or only reading."""
    from runtime.embedded import EmbeddedNats

    nats = EmbeddedNats(store_dir=tmp_path_factory.mktemp("browser-nats")).start()
    data_dir = tmp_path_factory.mktemp("browser-data")
    # A copy of the run's migrated template: `up` finds every migration applied (its start, not its migrations,
    # is what these tests drive; tests/e2e watches a start that migrates).
    admin_url = (await platform_database(servers.admin_url, unique("ui_")))["admin"]
    port = free_port()
    log_path = data_dir / "up.log"
    env = {**os.environ, "NATS_URL": nats.url, "DATABASE_URL": admin_url, "SECRET_KEY": TEST_SECRET,
           "DATA_DIR": str(data_dir), "GATEWAY_PORT": str(port), "OUTBOX_POLL_SECONDS": "0.2"}
    log = open(log_path, "wb")
    proc = subprocess.Popen([sys.executable, "-m", "runtime.cli", "up"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        # Generous: demo seeding on a loaded two-core machine takes minutes; a fast one is ready in seconds.
        eventually_blocking(lambda: "ready: open" in log_path.read_text() or proc.poll() is not None, "platform ready",
                            timeout=STARTUP_PATIENCE)
        assert proc.poll() is None, log_path.read_text()[-4000:]
        yield Platform(base=f"http://127.0.0.1:{port}", data_dir=data_dir, log=log_path)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        log.close()
        nats.stop()


@pytest.fixture(scope="package")
async def browser(chromium: str):
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        launched = await p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@pytest.fixture
async def page(browser, platform: Platform, request):
    """A fresh browser context (no cookies) per test, at laptop width."""
    context = await browser.new_context(viewport=LAPTOP, base_url=platform.base)
    context.set_default_timeout(15_000)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        await shot(page, f"FAILED-{request.node.name}")
    await context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture(scope="session")
def artifacts() -> Iterator[Path]:
    ARTIFACTS.mkdir(exist_ok=True)
    yield ARTIFACTS
