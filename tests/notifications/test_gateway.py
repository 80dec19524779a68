"""The notifications service behind the gateway: the directory reaches it, a big deal won through the API
alerts the VP in the feed (API and page, with the unread count) and by email, preferences round-trip
with their validation, admins see deliveries and the local mailbox, tokens and other roles are refused,
and the housekeeping tick purges expired sessions and old sign-in attempts."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from contracts import schedules as s
from gateway.app import create_app
from gateway.auth import STAFF_ROLES, Role
from gateway.users import ensure_user
from runtime import bus
from runtime.db import plain_dsn
from runtime.embedded import EmbeddedNats
from runtime.mailbox import LocalMailbox
from runtime.service import shutdown, start
from runtime.settings import Settings
from runtime.testing import TEST_SECRET, eventually
from services.notifications.handlers import definition as notifications_definition
from services.pipeline.handlers import definition as pipeline_definition
from tests.support.bus import bus_goes_too
from tests.support.gateway import PASSWORD, Gateway, Person


@pytest.fixture(scope="module")
async def mail_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mailbox")


@pytest.fixture(scope="module")
async def gw(private_db: dict[str, str], private_bus: EmbeddedNats, mail_dir: Path) -> AsyncIterator[Gateway]:
    box = await LocalMailbox(mail_dir).start()
    common = {"environment": "test", "secret_key": TEST_SECRET, "outbox_poll_seconds": 0.2,
              "bus_ack_wait_seconds": 5.0, "smtp_url": box.url, "smtp_poll_seconds": 0.1,
              "mailbox_dir": mail_dir}

    def settings_of(owner: str) -> Settings:
        return Settings(database_url=private_db[owner], nats_url=private_bus.url_for(owner), **common)

    stop = asyncio.Event()
    services = [await start(pipeline_definition, settings_of("pipeline"), stop),
                await start(notifications_definition, settings_of("notifications"), stop)]
    settings = settings_of("gateway")
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app):
            g = Gateway(app=app, settings=settings)
            for role in STAFF_ROLES:
                email = f"{role.value}@alerts.test"
                await ensure_user(settings, email=email, name=f"The {role.value}", role=role, password=PASSWORD)
                client, csrf = await g.sign_in(email)
                me = (await client.get("/api/me")).json()
                g.people[role] = Person(role=role, email=email, client=client, csrf=csrf, id=me["id"])
            yield g
            bus_goes_too(app.state.running)
            for person in g.people.values():
                await person.client.aclose()
    finally:
        stop.set()
        bus_goes_too(*services)
        await asyncio.gather(*(shutdown(svc) for svc in services))  # side by side
        await box.stop()


async def call(g: Gateway, role: Role, method: str, url: str, body: object = None):
    person = g.people[role]
    return await person.client.request(method, url, json=body, headers={"x-csrf-token": person.csrf,
                                                                          "accept": "application/json"})


async def _won_deal(g: Gateway, amount: str, customer: str) -> str:
    r = await call(g, Role.member, "POST", "/api/opportunities", {
        "name": f"{customer} platform", "pipeline": "resale", "stage": "negotiation", "customer": customer,
        "amount": amount, "currency": "USD", "owner": g.people[Role.member].id})
    assert r.status_code == 201, r.text
    deal_id = r.json()["id"]
    moved = await call(g, Role.member, "POST", f"/api/opportunities/{deal_id}/stage", {"stage": "won"})
    assert moved.status_code == 200, moved.text
    return deal_id


class TestFeedThroughTheGateway:
    async def test_a_big_deal_won_alerts_the_vp_in_the_feed_on_the_page_and_by_email(self, gw, mail_dir):
        customer = f"Hooli {uuid.uuid4().hex[:6]}"
        deal_id = await _won_deal(gw, "95000.00", customer)

        async def vp_alert():
            r = await call(gw, Role.admin, "GET", "/api/alerts")
            assert r.status_code == 200, r.text
            return [a for a in r.json()["items"] if a["link"] == f"/opportunities/{deal_id}"]

        alerts = await eventually(vp_alert, "the VP's alert (the directory must have reached notifications)")
        assert alerts[0]["rule"] == "big_deal_won" and "$95,000" in alerts[0]["why"]
        counts = (await call(gw, Role.admin, "GET", "/api/alerts?limit=0")).json()
        assert counts["unread"] >= 1 and counts["items"] == []
        # The member owns the deal: alerted too; the viewer is not.
        assert [a for a in (await call(gw, Role.member, "GET", "/api/alerts")).json()["items"]
                if a["link"] == f"/opportunities/{deal_id}"]
        assert not [a for a in (await call(gw, Role.viewer, "GET", "/api/alerts")).json()["items"]
                    if a["link"] == f"/opportunities/{deal_id}"]

        page = await gw.people[Role.admin].client.get("/alerts", headers={"accept": "text/html"})
        assert page.status_code == 200 and customer in page.text and "unread" in page.text
        assert 'data-unread-count' in page.text and "/static/alerts_badge.js" in page.text

        from runtime.mailbox import read

        async def vp_mail():
            return [m for m in read(mail_dir) if customer in m["subject"] and m["to"] == "admin@alerts.test"]

        mails = await eventually(vp_mail, "the VP's email in the local mailbox")
        listing = await gw.people[Role.admin].client.get("/admin/mailbox", headers={"accept": "text/html"})
        assert listing.status_code == 200 and customer in listing.text
        one = await gw.people[Role.admin].client.get(f"/admin/mailbox/{mails[0]['key']}/html")
        assert one.status_code == 200 and "sandbox" in one.headers["content-security-policy"]
        assert customer in one.text

        marked = await call(gw, Role.admin, "POST", "/api/alerts/read", {"alert_ids": [alerts[0]["id"]]})
        assert marked.status_code == 200 and marked.json() == {"marked": 1}

    async def test_deliveries_for_admins_only_and_retry_of_unknown_is_404(self, gw):
        assert (await call(gw, Role.admin, "GET", "/api/admin/deliveries")).status_code == 200
        for role in (Role.manager, Role.member, Role.viewer):
            assert (await call(gw, role, "GET", "/api/admin/deliveries")).status_code == 403
            assert (await gw.people[role].client.get("/admin/mailbox")).status_code in (403, 303)
        r = await call(gw, Role.admin, "POST", f"/api/admin/deliveries/{uuid.uuid4()}/retry")
        assert r.status_code == 404
        page = await gw.people[Role.admin].client.get("/admin/deliveries", headers={"accept": "text/html"})
        assert page.status_code == 200

    async def test_a_token_has_no_feed(self, gw):
        r = await call(gw, Role.admin, "POST", "/api/tokens", {"name": f"t{uuid.uuid4().hex[:6]}",
                                                               "scopes": ["kpis:read"], "expires_in_days": 1})
        assert r.status_code == 201, r.text
        async with gw.client() as client:
            got = await client.get("/api/alerts", headers={"authorization": f"Bearer {r.json()['token']}"})
        assert got.status_code == 403


class TestPreferences:
    async def test_round_trip_and_refusals(self, gw):
        r = await call(gw, Role.manager, "PUT", "/api/alerts/preferences", {
            "email": False, "digest": True, "quiet_from": 22, "quiet_until": 7, "muted_rules": ["deal_stuck"]})
        assert r.status_code == 200, r.text
        got = (await call(gw, Role.manager, "GET", "/api/alerts/preferences")).json()
        assert got | {"user_id": None} == {"user_id": None, "email": False, "digest": True, "quiet_from": 22,
                                            "quiet_until": 7, "muted_rules": ["deal_stuck"], "time_zone": "UTC"}
        for bad, field in (({"quiet_from": 24, "quiet_until": 7}, "quiet_from"),
                           ({"quiet_from": 22}, "quiet_until"),
                           ({"muted_rules": ["no_such_rule"]}, "muted_rules"),
                           ({"muted_rules": ["x\u0000"]}, "muted_rules"),
                           ({"user_id": "someone-else"}, "user_id")):
            r = await call(gw, Role.manager, "PUT", "/api/alerts/preferences", bad)
            assert r.status_code == 422, (bad, r.text)
            assert field in r.text, (bad, r.text)
        # Another person's preferences are untouched by any of that.
        assert (await call(gw, Role.member, "GET", "/api/alerts/preferences")).json()["muted_rules"] == []

    async def test_the_form_mutes_unticked_rules(self, gw):
        person = gw.people[Role.member]
        page = await person.client.get("/alerts/preferences", headers={"accept": "text/html"})
        assert page.status_code == 200 and "Big deal won" in page.text
        r = await person.client.post("/alerts/preferences", data={
            "csrf_token": person.csrf, "email": "on", "on": ["deal_stuck", "ace_action_required"],
            "quiet_from": "", "quiet_until": ""})
        assert r.status_code == 303, r.text
        got = (await call(gw, Role.member, "GET", "/api/alerts/preferences")).json()
        assert "big_deal_won" in got["muted_rules"] and "deal_stuck" not in got["muted_rules"]
        bad = await person.client.post("/alerts/preferences", data={"csrf_token": person.csrf, "quiet_from": "3"})
        assert bad.status_code == 422 and "quiet hours" in bad.text


class TestDigestNow:
    async def test_a_person_emails_themselves_the_digest_now_once_a_minute(self, gw, mail_dir):
        from runtime.mailbox import read

        r = await call(gw, Role.manager, "POST", "/api/alerts/digest")
        assert r.status_code == 202, r.text
        assert r.json()["to"] == "manager@alerts.test" and "-W" in r.json()["week"]

        async def arrived():
            return [m for m in read(mail_dir) if "Your week" in m["subject"] and m["to"] == "manager@alerts.test"]

        mails = await eventually(arrived, "the digest in the mailbox")
        assert "Where open deals moved" in mails[0]["html"] and "WON THIS WEEK" in mails[0]["text"]
        again = await call(gw, Role.manager, "POST", "/api/alerts/digest")
        assert again.status_code in (202, 409)  # 409 within the same minute


class TestHousekeeping:
    async def test_the_tick_purges_expired_sessions_and_old_sign_in_attempts(self, gw, private_db, private_nats):
        conn = await asyncpg.connect(plain_dsn(private_db["admin"]))
        try:
            user_id = gw.people[Role.viewer].id
            now = datetime.now(UTC)
            await conn.execute("INSERT INTO gateway.user_session (token_hash, user_id, csrf_token, expires_at) "
                               "VALUES ($1, $2, 'x', $3), ($4, $2, 'x', $5)", "expired-" + uuid.uuid4().hex,
                               uuid.UUID(user_id), now - timedelta(hours=1), "live-" + uuid.uuid4().hex,
                               now + timedelta(days=1))
            await conn.execute("INSERT INTO gateway.signin_attempt (email, client, at) VALUES "
                               "('old@x.test', '10.0.0.1', $1), ('new@x.test', '10.0.0.1', $2)",
                               now - timedelta(days=3), now)
            nc = await bus.connect(private_nats, name="test-housekeeping")
            try:
                await nc.jetstream().publish(s.HousekeepingDueV1.subject, s.HousekeepingDueV1.model_validate(
                    s.HousekeepingDueV1.from_delivery({"schema_version": 1, "job": "housekeeping"}, now)
                ).model_dump_json().encode())
            finally:
                await nc.close()

            async def purged():
                left = await conn.fetch("SELECT token_hash FROM gateway.user_session WHERE token_hash LIKE 'expired-%'"
                                        " OR token_hash LIKE 'live-%'")
                return [r["token_hash"].split("-")[0] for r in left] == ["live"]

            await eventually(purged, "the expired session purged")
            emails = {r["email"] for r in await conn.fetch("SELECT email FROM gateway.signin_attempt")}
            assert "old@x.test" not in emails and "new@x.test" in emails
            # Signed-in people keep their sessions.
            assert (await call(gw, Role.viewer, "GET", "/api/me")).status_code == 200
        finally:
            await conn.close()
