"""Browser tests: the real platform (`partnerops up` against the test servers, as tests/e2e does)
driven by Playwright in Debian's Chromium. The setup installs Chromium with apt-get when it is
missing, and skips — loudly — only where that is impossible."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from runtime.database_setup import create_database
from runtime.embedded import free_port
from runtime.testing import TEST_SECRET, unique

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
LAPTOP = {"width": 1366, "height": 900}
TABLET = {"width": 820, "height": 1180}


def _apt_install() -> str:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    log = []
    # Without package lists (a fresh machine) the first install fails fast; then update and try again.
    for step in (["apt-get", "install", "-y", "chromium"], ["apt-get", "update"],
                 ["apt-get", "install", "-y", "chromium"]):
        if step[1] == "update" and os.path.exists(CHROMIUM):
            break
        done = subprocess.run(step, env=env, capture_output=True, text=True, timeout=900)
        log.append(f"$ {' '.join(step)} -> {done.returncode}\n{done.stderr[-1500:]}")
    return "\n".join(log)


@pytest.fixture(scope="session")
def chromium() -> str:
    if os.path.exists(CHROMIUM):
        return CHROMIUM
    why = ""
    if shutil.which("apt-get") is None:
        why = "apt-get is not available on this machine"
    elif os.geteuid() != 0:
        why = "installing it needs root (apt-get install chromium)"
    else:
        why = _apt_install()
        if os.path.exists(CHROMIUM):
            return CHROMIUM
    message = f"BROWSER TESTS SKIPPED: {CHROMIUM} is missing and could not be installed: {why}"
    warnings.warn(message, stacklevel=1)
    print("\n" + "!" * 100 + "\n" + message + "\n" + "!" * 100, file=sys.stderr)
    pytest.skip(message)


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class Platform:
    base: str
    data_dir: Path
    log: Path

    def credentials(self) -> dict[str, tuple[str, str]]:
        out: dict[str, tuple[str, str]] = {}
        for line in (self.data_dir / "demo-credentials.txt").read_text().splitlines():
            role, email, password = line.split()
            out.setdefault(role, (email, password))
        return out


@pytest.fixture(scope="session")
async def platform(servers, tmp_path_factory) -> AsyncIterator[Platform]:
    """The whole platform with its demo data, on its own NATS server and database."""
    from runtime.embedded import EmbeddedNats

    nats = EmbeddedNats(store_dir=tmp_path_factory.mktemp("browser-nats")).start()
    data_dir = tmp_path_factory.mktemp("browser-data")
    admin_url = await create_database(servers.admin_url, unique("ui_"))
    port = free_port()
    log_path = data_dir / "up.log"
    env = {**os.environ, "NATS_URL": nats.url, "DATABASE_URL": admin_url, "SECRET_KEY": TEST_SECRET,
           "DATA_DIR": str(data_dir), "GATEWAY_PORT": str(port), "OUTBOX_POLL_SECONDS": "0.2"}
    log = open(log_path, "wb")
    proc = subprocess.Popen([sys.executable, "-m", "runtime.cli", "up"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        # Generous: demo seeding on a loaded two-core machine takes minutes; a fast one is ready in seconds.
        _wait_for(lambda: "ready: open" in log_path.read_text() or proc.poll() is not None, 420, "platform ready")
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


@pytest.fixture(scope="session")
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


async def shot(page, name: str) -> Path:
    """A full-page screenshot in test-artifacts/ (kept by CI; ignored by git)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


async def sign_in(page, email: str, password: str) -> None:
    await page.goto("/signin")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(re.compile(r".*/$"))


def money(text: str) -> Decimal:
    """'$48,000' -> Decimal('48000')."""
    return Decimal(re.sub(r"[^0-9.\-]", "", text) or "0")


@pytest.fixture(scope="session")
def artifacts() -> Iterator[Path]:
    ARTIFACTS.mkdir(exist_ok=True)
    yield ARTIFACTS
