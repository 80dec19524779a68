"""The weekly digest: queued at Monday 08:00 in each person's own time zone (Los Angeles and Berlin,
on both sides of a DST change), once per person and week whatever the ticks; delivered as HTML with
its chart as an inline PNG and a plain-text part; the HTML rendered in Chromium and screenshotted."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from contracts import deadlines as dl
from contracts import notifications as n
from contracts import pipeline as p
from runtime.commands import send
from runtime.testing import eventually
from tests.browser.helpers import CHROMIUM_ARGS, shot
from tests.notifications.conftest import (
    MANAGER,
    deadline,
    deal,
    deliveries,
    publish,
    settled,
    tick,
)

# Monday 26 October 2026 is the first Monday after the EU change (25 Oct) and before the US one (1 Nov);
# Monday 2 November the first after the US change.
TICKS = [datetime(2026, 10, 26, h, tzinfo=UTC) for h in (5, 6, 7, 8, 14, 15, 16)] + \
        [datetime(2026, 11, 2, h, tzinfo=UTC) for h in (6, 7, 8, 15, 16, 17)] + \
        [datetime(2026, 11, 3, 7, tzinfo=UTC)]


async def _digests(nc) -> list[n.Delivery]:
    return [d for d in await deliveries(nc) if d.kind == "digest"]


async def test_monday_08_00_local_in_los_angeles_and_berlin_across_dst(service, bus_client, mailbox):
    await send(bus_client, n.SetPreferences(user_id=MANAGER, digest=True))  # the VP gets it by default
    monday = datetime(2026, 11, 2, 16, tzinfo=UTC)
    for o in (
        deal(name="Northwind migration", stage="negotiation", stage_name="Negotiation", amount="120000.00",
             entered=monday - timedelta(days=2)),
        deal(name="Contoso data platform", stage="proposal", stage_name="Proposal", amount="64000.00",
             entered=monday - timedelta(days=3)),
        deal(name="Fabrikam analytics", stage="proposal", stage_name="Proposal", amount="18000.00",
             entered=monday - timedelta(days=4)),
        deal(name="Initech renewal", stage="qualified", stage_name="Qualified", amount="9000.00",
             entered=monday - timedelta(days=40)),
        deal(name="Umbrella co-sell", stage="technical_validation", stage_name="Technical Validation",
             amount="250000.00", entered=monday - timedelta(days=1), ace=p.AceState(
                 review_status=p.AceReviewStatus.action_required, action_due_date=(monday + timedelta(days=4)).date(),
                 reviewer_comments="Add the customer's AWS account id")),
        deal(name="Globex expansion", stage="won", stage_name="Won", amount="82000.00", outcome=p.Outcome.won,
             entered=monday - timedelta(days=2)),
    ):
        await publish(bus_client, p.OpportunityCreatedV1(opportunity=o))
    claim = deadline(due=datetime(2026, 11, 12, tzinfo=UTC).date(), owner=None)
    await publish(bus_client, dl.DeadlineChangedV1(deadline=claim))
    await settled(bus_client, service)

    queued_at: dict[tuple[str, str], datetime] = {}
    for at in TICKS:
        firing = tick(at)
        await publish(bus_client, firing)
        await publish(bus_client, firing)  # every tick twice: a redelivery
        await settled(bus_client, service)
        for d in await _digests(bus_client):
            queued_at.setdefault((d.to, d.subject), at)
    by_person = sorted((to, at) for (to, _), at in queued_at.items())
    assert by_person == [
        ("manager@example.test", datetime(2026, 10, 26, 7, tzinfo=UTC)),  # 08:00 CET (after the EU change)
        ("manager@example.test", datetime(2026, 11, 2, 7, tzinfo=UTC)),
        ("vp@example.test", datetime(2026, 10, 26, 15, tzinfo=UTC)),  # 08:00 PDT
        ("vp@example.test", datetime(2026, 11, 2, 16, tzinfo=UTC)),  # 08:00 PST (after the US change)
    ]
    assert len(await _digests(bus_client)) == 4

    subject = "Your week 2026-W45"
    got = await eventually(lambda: _mail(mailbox, subject, "vp@example.test"), "the VP's digest in the mailbox")
    text = got.get_body(preferencelist=("plain",)).get_content()
    for expected in ("Negotiation: 1 deal, $120,000", "Proposal: 2 deals, $82,000", "Umbrella co-sell",
                     "Action Required, answer due 2026-11-06", "Initech renewal", "Globex", "$82,000",
                     f"{claim.title}: due 2026-11-12 (in 10 days), $25,000 at stake"):
        assert expected in text, expected
    html_part = got.get_body(preferencelist=("html",))
    html = html_part.get_content()
    assert 'src="cid:moved"' in html and "http" not in html.split("cid:moved")[0].rsplit("<img", 1)[-1]
    images = [part for part in got.walk() if part.get_content_type() == "image/png"]
    assert len(images) == 1 and images[0]["Content-ID"] == "<moved>"
    png = images[0].get_payload(decode=True)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    _DIGEST_FOR_BROWSER["html"] = html.replace("cid:moved", "data:image/png;base64," + base64.b64encode(png).decode())


_DIGEST_FOR_BROWSER: dict[str, str] = {}


async def _mail(mailbox, subject: str, to: str):
    found = [m for m in mailbox.sink.messages if subject in str(m["Subject"]) and str(m["To"]) == to]
    return found[0] if found else None


# Of the kind of the test whose received HTML it renders (it uses no server itself, so it would count as a
# unit test, and `-m unit` ran it without the digest test it depends on).
@pytest.mark.integration
async def test_the_digest_renders_in_chromium(chromium):
    from playwright.async_api import async_playwright

    html = _DIGEST_FOR_BROWSER.get("html")
    assert html, "runs after the digest test, which keeps the HTML it received"
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 760, "height": 900})
            await page.set_content(html)
            chart = page.locator('img[alt^="Bar chart"]')
            box = await chart.bounding_box()
            assert box is not None and box["width"] == 360 and box["height"] > 20
            assert await chart.evaluate("img => img.complete && img.naturalWidth === 360")
            headings = await page.locator("h2").all_inner_texts()
            assert [h.split(" ·")[0] for h in headings] == ["Won this week", "Where open deals moved",
                                                           "Co-sell waiting on AWS", "Deadlines that cost money",
                                                           "Stuck deals (1)",
                                                           "Alerts this week"]
            await shot(page, f"digest-{uuid.uuid4().hex[:0]}weekly")
        finally:
            await browser.close()
