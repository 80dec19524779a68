"""The sync health page in the browser, against real servers: `partnerops up` with the AWS worker
turned on and pointed at the local HTTP fake of Partner Central (boto3 with `endpoint_url`; every
request validated with botocore's shapes). The worker's first pass brings opportunities in (one
hostile record becomes a problem with its reason), the invitations are read; a manager sees the sync
healthy, shares a co-sell deal from its page to AWS, and the page shows the share submitted and the
deal linked to its ACE opportunity; then rejects an invitation with a reason."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from contracts import pipeline as pc
from contracts import sync
from gateway.auth import Role
from gateway.users import ensure_user
from runtime import bus
from runtime.commands import send
from runtime.database_setup import create_database
from runtime.embedded import EmbeddedNats, free_port
from runtime.settings import Settings
from runtime.testing import STARTUP_PATIENCE, TEST_SECRET, eventually, eventually_blocking, unique
from tests.browser.helpers import LAPTOP, ROOT, shot
from tests.integrations.ace import opportunity
from tests.integrations.fake_partner_central import Fake

pytestmark = pytest.mark.timeout(900)
MANAGER = ("sync.manager@example.test", "a-long-test-password-42")
SOLUTION = "S-0000042"
INVITATION = "engi-" + "0123456789abc"


@pytest.fixture(scope="module")
async def synced(servers, tmp_path_factory) -> AsyncIterator[tuple[str, Fake, str]]:
    """The platform (no demo data) with the AWS worker on the fake; yields its URL, the fake, NATS."""
    fake = Fake()
    now = datetime.now(UTC)
    for i, (title, stage) in enumerate((("Data lake for Initech", "Qualified"), ("Migration for Globex", "Committed"),
                                        ("Analytics for Umbrella", "Technical Validation"))):
        o = opportunity(modified=now - timedelta(hours=3, minutes=-i), title=title, company=title.split()[-1],
                        stage=stage)
        fake.opportunities[o["Id"]] = o
    hostile = opportunity(modified=now - timedelta(hours=2), title="Bad\x00title", monthly="1" * 31)
    fake.opportunities[hostile["Id"]] = hostile
    fake.invitations = [{"Catalog": "Sandbox", "Id": INVITATION, "PayloadType": "OpportunityInvitation",
                         "EngagementTitle": "Warehouse modernisation for Hooli", "Status": "PENDING",
                         "InvitationDate": now - timedelta(days=1), "ExpirationDate": now + timedelta(days=14),
                         "SenderCompanyName": "Amazon Web Services", "ParticipantType": "RECEIVER"}]
    server, endpoint = fake.serve()
    nats = EmbeddedNats(store_dir=tmp_path_factory.mktemp("sync-ui-nats")).start()
    data_dir = tmp_path_factory.mktemp("sync-ui-data")
    admin_url = await create_database(servers.admin_url, unique("syui_"))
    port = free_port()
    log_path = data_dir / "up.log"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")}, "NATS_URL": nats.url,
           "DATABASE_URL": admin_url, "SECRET_KEY": TEST_SECRET, "DATA_DIR": str(data_dir),
           "GATEWAY_PORT": str(port), "OUTBOX_POLL_SECONDS": "0.2",
           "AWS_PARTNER_CENTRAL_SYNC": "true", "AWS_PARTNER_CENTRAL_CATALOG": "Sandbox",
           "AWS_PARTNER_CENTRAL_ENDPOINT_URL": endpoint, "AWS_PARTNER_CENTRAL_SOLUTION_ID": SOLUTION,
           "AWS_PARTNER_CENTRAL_POLL_SECONDS": "0.5", "AWS_PARTNER_CENTRAL_RETRY_MODE": "standard",
           "AWS_ACCESS_KEY_ID": "AKIDFAKEFORTESTS", "AWS_SECRET_ACCESS_KEY": "fake-secret-for-tests"}
    log = open(log_path, "wb")
    proc = subprocess.Popen([sys.executable, "-m", "runtime.cli", "up", "--no-seed"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        eventually_blocking(lambda: "ready: open" in log_path.read_text() or proc.poll() is not None, "platform ready",
                            timeout=STARTUP_PATIENCE)
        assert proc.poll() is None, log_path.read_text()[-4000:]
        settings = Settings(environment="test", secret_key=TEST_SECRET, database_url=admin_url)
        await ensure_user(settings, email=MANAGER[0], name="Sam Sync", role=Role.manager, password=MANAGER[1])
        yield f"http://127.0.0.1:{port}", fake, nats.url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        log.close()
        nats.stop()
        server.shutdown()


@pytest.fixture
async def sync_page(browser, synced) -> AsyncIterator:
    context = await browser.new_context(viewport=LAPTOP, base_url=synced[0])
    context.set_default_timeout(20_000)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    await context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


async def _text_after_reloads(page, testid: str, wanted: str) -> str:
    async def check() -> str | None:
        await page.reload()
        text = await page.get_by_test_id(testid).inner_text()
        return text if wanted in text else None
    return await eventually(check, what=f"{wanted!r} on the page")


class TestSyncPage:
    async def test_a_manager_watches_the_sync_shares_a_deal_and_answers_an_invitation(self, sync_page, synced):
        page = sync_page
        _, fake, nats_url = synced
        await page.goto("/signin")
        await page.get_by_label("Email").fill(MANAGER[0])
        await page.get_by_label("Password").fill(MANAGER[1])
        await page.get_by_role("button", name="Sign in").click()
        await page.wait_for_url(re.compile(r".*/$"))

        await page.get_by_role("navigation", name="Main").get_by_role("link", name="Syncs").click()
        await page.wait_for_url(re.compile(r".*/sync$"))
        # The hostile record is not synced: a problem with its reason.
        card = await _text_after_reloads(page, "sync-aws", "beyond any deal")
        assert "AWS Partner Central" in card and "Sandbox" in card and hostile_id(fake) in card
        # Invitations are read at the 15-minute tick or on an EventBridge event: here, the event's command.
        nc = await bus.connect(nats_url, name="sync-ui-test")
        try:
            await send(nc, sync.RefreshAceInvitations(catalog="Sandbox", actor="tests"))
        finally:
            await nc.close()
        await _text_after_reloads(page, f"invitation-{INVITATION}", "Hooli")
        await shot(page, "sync-health")

        # A co-sell deal made in PartnerOps, shared from its page.
        nc = await bus.connect(nats_url, name="sync-ui-test")
        try:
            deal = await send(nc, pc.CreateOpportunity(
                name="Lakehouse for Initrode", customer="Initrode", amount=Decimal("96000.00"),
                deal_model=pc.DealModel.cosell, pipeline=pc.COSELL, stage="qualified",
                expected_close_date=date(2027, 6, 30), actor="tests"))
        finally:
            await nc.close()
        await page.goto(f"/opportunities/{deal.id}")
        share = page.get_by_test_id("share-aws")
        await share.locator("summary").click()
        await share.get_by_label("Customer country").fill("ZZ")
        await share.get_by_role("button", name="Share to AWS").click()
        await page.get_by_text("is not one of AWS's values").wait_for()
        await shot(page, "sync-share-refused")
        share = page.get_by_test_id("share-aws")
        await share.get_by_label("Customer country").fill("DE")
        await share.get_by_label("Customer's business problem").fill("Month-end reports take two days to build.")
        await share.get_by_role("button", name="Share to AWS").click()
        await page.get_by_test_id("notice").wait_for()
        assert "Shared to AWS" in await page.get_by_test_id("notice").inner_text()

        shares = await _text_after_reloads_sync(page, "submitted")
        assert SOLUTION in shares and "Lakehouse for Initrode" in shares
        await page.goto(f"/opportunities/{deal.id}")

        async def linked() -> str | None:
            await page.reload()
            facts = await page.locator("dl.facts").first.inner_text()
            return facts if "aws · O" in facts else None
        facts = await eventually(linked, what="the deal linked to its ACE opportunity")
        [ace_id] = [i for i, o in fake.opportunities.items() if o.get("PartnerOpportunityIdentifier") == str(deal.id)]
        assert ace_id in facts and await page.get_by_test_id("share-aws").count() == 0
        await shot(page, "sync-deal-linked")

        # The invitation: rejected with a reason, sent to AWS.
        await page.goto("/sync")
        row = page.get_by_test_id(f"invitation-{INVITATION}")
        await row.get_by_label("Reason").fill("Not our market")
        await row.get_by_role("button", name="Reject").click()
        await page.get_by_test_id("notice").wait_for()
        await eventually(lambda: _called(fake, "RejectEngagementInvitation"), what="the rejection sent to AWS")
        await page.goto("/sync")
        await shot(page, "sync-after")
        assert fake.invalid == [], fake.invalid


async def _text_after_reloads_sync(page, wanted: str) -> str:
    await page.goto("/sync")
    return await _text_after_reloads(page, "sync-shares", wanted)


def hostile_id(fake: Fake) -> str:
    return next(i for i, o in fake.opportunities.items() if o["Project"]["Title"] == "Bad\x00title")


async def _called(fake: Fake, operation: str) -> bool:
    return fake.count(operation) > 0
