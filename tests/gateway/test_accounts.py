"""Accounts: weak passwords refused, password change ending the other sessions, single-use expiring
reset links, idle sessions ending, API tokens that expire, are revoked with their creator and have
unique names, token checks without a write per request, no demo users in production, and the
audit log naming the verified actor of integration pushes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
from sqlalchemy import select, text

from gateway.auth import Role
from gateway.models import ApiToken, User
from gateway.seed import seed, seed_team
from gateway.users import ensure_user
from runtime.settings import Settings
from runtime.testing import TEST_SECRET, unique
from tests.support.gateway import PASSWORD, Gateway, csrf_from

NEW_PASSWORD = "tangerine submarine orchestra"


async def _sql(gateway: Gateway, statement: str, **params: object) -> None:
    async with gateway.app.state.running.sessions() as session, session.begin():
        await session.execute(text(statement), params)


async def _user(gateway: Gateway, role: Role = Role.member) -> tuple[str, str]:
    email = f"{unique('acct')}@gateway.test"
    await ensure_user(gateway.settings, email=email, name="Acct", role=role, password=PASSWORD)
    async with gateway.app.state.running.sessions() as session:
        user_id = await session.scalar(select(User.id).where(User.email == email))
    return email, str(user_id)


def _admin(gateway: Gateway):
    admin = gateway.people[Role.admin]
    return admin.client, {"x-csrf-token": admin.csrf}


class TestPasswords:
    async def test_weak_and_breached_pattern_passwords_are_refused_naming_the_field(self, gateway: Gateway):
        client, headers = _admin(gateway)
        email = f"{unique('weak')}@gateway.test"
        local = email.split("@")[0]
        for weak in ("short1!", "Password123!", "qwerty2026!!", "!!letmein!!!", "1234567890", "aaaaaaaaaaaa",
                     "abcdefghijkl", f"my{local}pass", "Welcome2026", "a" * 201):
            r = await client.post("/api/users", json={"email": email, "role": "member", "password": weak},
                                  headers=headers)
            assert r.status_code == 422, f"{weak!r}: {r.text}"
            assert "password" in r.text, r.text
        ok = await client.post("/api/users", json={"email": email, "role": "member", "password": NEW_PASSWORD},
                               headers=headers)
        assert ok.status_code == 201, ok.text

    async def test_changing_the_password_ends_every_other_session(self, gateway: Gateway):
        email, _ = await _user(gateway)
        first, first_csrf = await gateway.sign_in(email)
        second, _ = await gateway.sign_in(email)
        try:
            headers = {"x-csrf-token": first_csrf}
            wrong = await first.post("/api/me/password", json={"current_password": "not it at all",
                                                               "new_password": NEW_PASSWORD}, headers=headers)
            assert wrong.status_code == 401 and "current_password" in wrong.text
            weak = await first.post("/api/me/password", json={"current_password": PASSWORD,
                                                              "new_password": "password2026"}, headers=headers)
            assert weak.status_code == 422 and "new_password" in weak.text
            assert (await second.get("/api/me")).status_code == 200  # nothing changed yet
            done = await first.post("/api/me/password", json={"current_password": PASSWORD,
                                                              "new_password": NEW_PASSWORD}, headers=headers)
            assert done.status_code == 204, done.text
            assert (await first.get("/api/me")).status_code == 200
            assert (await second.get("/api/me")).status_code == 401
        finally:
            await first.aclose()
            await second.aclose()
        async with gateway.client() as c:
            page = await c.get("/signin")
            old = await c.post("/signin", data={"email": email, "password": PASSWORD,
                                                "csrf_token": csrf_from(page.text)})
            assert old.status_code == 401
        again, _ = await gateway.sign_in(email, NEW_PASSWORD)
        await again.aclose()

    async def test_the_account_page_changes_the_password_with_errors_beside_fields(self, gateway: Gateway):
        email, _ = await _user(gateway)
        client, csrf = await gateway.sign_in(email)
        try:
            html = {"accept": "text/html"}
            assert (await client.get("/account", headers=html)).status_code == 200
            bad = await client.post("/account/password", headers=html, data={
                "csrf_token": csrf, "current_password": PASSWORD, "new_password": "qwertyuiop1"})
            assert bad.status_code == 422 and 'data-field="new_password"' in bad.text
            good = await client.post("/account/password", headers=html, data={
                "csrf_token": csrf, "current_password": PASSWORD, "new_password": NEW_PASSWORD})
            assert good.status_code == 303 and good.headers["location"].startswith("/account?notice=")
        finally:
            await client.aclose()


class TestResetLinks:
    async def test_a_reset_link_works_once_ends_all_sessions_and_replaces_older_links(self, gateway: Gateway):
        email, user_id = await _user(gateway)
        session_before, _ = await gateway.sign_in(email)
        client, headers = _admin(gateway)
        older = (await client.post(f"/api/users/{user_id}/password-reset", headers=headers)).json()["url"]
        r = await client.post(f"/api/users/{user_id}/password-reset", headers=headers)
        assert r.status_code == 201 and r.headers["cache-control"] == "no-store"
        url = r.json()["url"]
        async with gateway.client() as anonymous:
            assert (await anonymous.get(older, headers={"accept": "text/html"})).status_code == 404
            page = await anonymous.get(url, headers={"accept": "text/html"})
            assert page.status_code == 200 and email in page.text
            weak = await anonymous.post(url, data={"password": "password!!!1"})
            assert weak.status_code == 422 and 'data-field="password"' in weak.text
            done = await anonymous.post(url, data={"password": NEW_PASSWORD})
            assert done.status_code == 303 and done.headers["location"] == "/signin?reset=1"
            again = await anonymous.post(url, data={"password": "another fine passphrase"})
            assert again.status_code == 404
        assert (await session_before.get("/api/me")).status_code == 401
        await session_before.aclose()
        signed_in, _ = await gateway.sign_in(email, NEW_PASSWORD)
        await signed_in.aclose()
        audit = (await client.get("/api/audit?entity=user&limit=20")).json()
        actions = {(a["action"], a["actor"]) for a in audit if a["entity_id"] == user_id}
        assert ("user.password_reset_issued", gateway.people[Role.admin].email) in actions
        assert ("user.password_reset", email) in actions

    async def test_an_expired_reset_link_is_refused(self, gateway: Gateway):
        _, user_id = await _user(gateway)
        client, headers = _admin(gateway)
        url = (await client.post(f"/api/users/{user_id}/password-reset", headers=headers)).json()["url"]
        await _sql(gateway, "UPDATE gateway.password_reset SET expires_at = now() - interval '1 second' "
                            "WHERE user_id = :u", u=uuid.UUID(user_id))
        async with gateway.client() as anonymous:
            assert (await anonymous.get(url, headers={"accept": "text/html"})).status_code == 404
            assert (await anonymous.post(url, data={"password": NEW_PASSWORD})).status_code == 404
        for bad in ("/reset/short", "/reset/" + "x" * 101, "/reset/" + "%00" * 30):
            async with gateway.client() as anonymous:
                assert (await anonymous.get(bad, headers={"accept": "text/html"})).status_code in (404, 422)

    async def test_only_admins_issue_reset_links_and_not_for_unknown_people(self, gateway: Gateway):
        _, user_id = await _user(gateway)
        manager = gateway.people[Role.manager]
        r = await manager.client.post(f"/api/users/{user_id}/password-reset", headers={"x-csrf-token": manager.csrf})
        assert r.status_code == 403
        client, headers = _admin(gateway)
        assert (await client.post(f"/api/users/{uuid.uuid4()}/password-reset", headers=headers)).status_code == 404


class TestSessions:
    async def test_an_idle_session_ends_and_a_used_one_stays(self, gateway: Gateway):
        email, user_id = await _user(gateway)
        client, _ = await gateway.sign_in(email)
        idle = gateway.settings.gateway_session_idle_minutes
        try:
            await _sql(gateway, "UPDATE gateway.user_session SET last_seen_at = now() - make_interval(mins => :m) "
                                "WHERE user_id = :u", m=idle - 5, u=uuid.UUID(user_id))
            assert (await client.get("/api/me")).status_code == 200  # and that request counts as activity
            await _sql(gateway, "UPDATE gateway.user_session SET last_seen_at = last_seen_at - "
                                "make_interval(mins => 10) WHERE user_id = :u", u=uuid.UUID(user_id))
            assert (await client.get("/api/me")).status_code == 200
            await _sql(gateway, "UPDATE gateway.user_session SET last_seen_at = now() - make_interval(mins => :m) "
                                "WHERE user_id = :u", m=idle + 1, u=uuid.UUID(user_id))
            assert (await client.get("/api/me")).status_code == 401
            page = await client.get("/partners", headers={"accept": "text/html"})
            assert page.status_code == 303 and page.headers["location"].startswith("/signin")
        finally:
            await client.aclose()


class TestTokens:
    async def _token(self, gateway: Gateway, client: httpx.AsyncClient, headers: dict[str, str], **body) -> dict:
        r = await client.post("/api/tokens", json={"name": unique("tok"), "scopes": ["kpis:read"], **body},
                              headers=headers)
        assert r.status_code == 201, r.text
        return r.json()

    async def test_a_token_expires(self, gateway: Gateway):
        client, headers = _admin(gateway)
        made = await self._token(gateway, client, headers, expires_in_days=1)
        assert datetime.fromisoformat(made["expires_at"]) > datetime.now(UTC)
        async with gateway.client() as c:
            auth = {"authorization": f"Bearer {made['token']}"}
            assert (await c.get("/api/kpis", headers=auth)).status_code == 200
            await _sql(gateway, "UPDATE gateway.api_token SET expires_at = now() - interval '1 second' WHERE id = :i",
                       i=uuid.UUID(made["id"]))
            refused = await c.get("/api/kpis", headers=auth)
            assert refused.status_code == 401 and "expired" in refused.text
        days = gateway.settings.gateway_token_max_days + 1
        too_long = await client.post("/api/tokens", json={"name": unique("tok"), "scopes": ["kpis:read"],
                                                          "expires_in_days": days}, headers=headers)
        assert too_long.status_code == 422 and "expires_in_days" in too_long.text
        for bad in (0, -1, 10**9, "soon", None):
            r = await client.post("/api/tokens", json={"name": unique("tok"), "scopes": ["kpis:read"],
                                                       "expires_in_days": bad}, headers=headers)
            assert r.status_code == 422, bad

    async def test_tokens_are_revoked_when_their_creator_is_deactivated(self, gateway: Gateway):
        email, user_id = await _user(gateway, Role.admin)
        creator, creator_csrf = await gateway.sign_in(email)
        try:
            made = await self._token(gateway, creator, {"x-csrf-token": creator_csrf})
        finally:
            await creator.aclose()
        other = await self._token(gateway, *_admin(gateway))
        async with gateway.client() as c:
            assert (await c.get("/api/kpis", headers={"authorization": f"Bearer {made['token']}"})).status_code == 200
            client, headers = _admin(gateway)
            r = await client.patch(f"/api/users/{user_id}", json={"active": False}, headers=headers)
            assert r.status_code == 200
            assert (await c.get("/api/kpis", headers={"authorization": f"Bearer {made['token']}"})).status_code == 401
            # Tokens other admins made keep working.
            assert (await c.get("/api/kpis", headers={"authorization": f"Bearer {other['token']}"})).status_code == 200
        listed = {t["id"]: t for t in (await client.get("/api/tokens")).json()}
        assert listed[made["id"]]["revoked_at"] and listed[other["id"]]["revoked_at"] is None
        audit = (await client.get("/api/audit?entity=api_token&limit=50")).json()
        assert any(a["entity_id"] == made["id"] and a["action"] == "token.revoked" and email in a["after"]["why"]
                   for a in audit)

    async def test_live_token_names_are_unique(self, gateway: Gateway):
        client, headers = _admin(gateway)
        name = unique("dup")
        first = await client.post("/api/tokens", json={"name": name, "scopes": ["kpis:read"]}, headers=headers)
        assert first.status_code == 201
        clash = await client.post("/api/tokens", json={"name": name.upper(), "scopes": ["kpis:read"]}, headers=headers)
        assert clash.status_code == 409 and "name" in clash.text
        await client.delete(f"/api/tokens/{first.json()['id']}", headers=headers)
        again = await client.post("/api/tokens", json={"name": name, "scopes": ["kpis:read"]}, headers=headers)
        assert again.status_code == 201

    async def test_checking_a_token_writes_at_most_once_a_minute(self, gateway: Gateway):
        client, headers = _admin(gateway)
        made = await self._token(gateway, client, headers)
        token_id = uuid.UUID(made["id"])

        async def last_used() -> datetime | None:
            async with gateway.app.state.running.sessions() as session:
                return await session.scalar(select(ApiToken.last_used_at).where(ApiToken.id == token_id))

        async with gateway.client() as c:
            auth = {"authorization": f"Bearer {made['token']}"}
            assert (await c.get("/api/kpis", headers=auth)).status_code == 200
            first = await last_used()
            assert first is not None
            for _ in range(5):
                assert (await c.get("/api/kpis", headers=auth)).status_code == 200
            assert await last_used() == first  # no write for the next requests
            await _sql(gateway, "UPDATE gateway.api_token SET last_used_at = last_used_at - interval '61 seconds' "
                                "WHERE id = :i", i=token_id)
            assert (await c.get("/api/kpis", headers=auth)).status_code == 200
            assert await last_used() > first


class TestDemoUsers:
    async def test_no_demo_users_or_data_are_seeded_in_production(self, gateway: Gateway):
        production = Settings(**{**gateway.settings.model_dump(), "environment": "production",
                                 "secret_key": TEST_SECRET * 2})
        assert await seed_team(production) == []
        assert await seed(production) == 0
        async with gateway.app.state.running.sessions() as session:
            assert await session.scalar(select(User.id).where(User.email == "vp@example.com")) is None


class TestActor:
    async def test_integration_pushes_are_audited_under_the_verified_token(self, gateway: Gateway):
        client, headers = _admin(gateway)
        name = unique("sync")
        made = (await client.post("/api/tokens", json={"name": name, "scopes": ["events:publish"]},
                                  headers=headers)).json()
        event = {"source": "aws", "external_id": unique("O-"), "last_modified": "2026-11-20T10:00:00Z",
                 "name": "Pushed deal", "customer": "Initech", "stage": "prospect", "amount": "1000",
                 "correlation_id": "vp@example.com"}  # a payload claiming to come from someone else
        async with gateway.client() as c:
            r = await c.post("/api/integrations/opportunities", json=[event],
                             headers={"authorization": f"Bearer {made['token']}"})
        assert r.status_code == 202, r.text
        [row] = [a for a in (await client.get("/api/audit?entity=opportunity&limit=50")).json()
                 if a["action"] == "opportunity.external_published" and a["after"]["events"][0]["external_id"]
                 == event["external_id"]]
        assert row["actor"] == f"token:{name}"
