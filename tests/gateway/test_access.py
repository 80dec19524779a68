"""Sign-in, sign-out, CSRF, token scopes and the audit log, through the real app and pipeline."""

from __future__ import annotations

import re

from gateway.auth import Role
from gateway.signin_throttle import EMAIL_MAX_DELAY, FREE_FAILURES, record_failure
from runtime.testing import unique
from tests.support.gateway import PASSWORD, Gateway, csrf_from, new_address


async def _form_post(gateway: Gateway, client, path: str, data: dict[str, str]):
    return await client.post(path, data=data, headers={"accept": "text/html"})


class TestSignIn:
    async def test_the_right_password_opens_a_session_with_safe_cookies(self, gateway: Gateway):
        async with gateway.client() as client:
            page = await client.get("/signin")
            response = await client.post("/signin", data={"email": "member@gateway.test", "password": PASSWORD,
                                                          "csrf_token": csrf_from(page.text), "next": "/partners"})
            assert response.status_code == 303 and response.headers["location"] == "/partners"
            cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("po_session="))
            assert "HttpOnly" in cookie and "SameSite=lax" in cookie

    async def test_a_wrong_password_is_refused_with_a_message(self, gateway: Gateway):
        async with gateway.client() as client:
            page = await client.get("/signin")
            response = await client.post("/signin", data={"email": "member@gateway.test", "password": "nope",
                                                          "csrf_token": csrf_from(page.text)})
            assert response.status_code == 401 and "Wrong email or password" in response.text
            assert "po_session" not in response.headers.get("set-cookie", "")

    async def test_the_sign_in_form_needs_its_own_csrf_token(self, gateway: Gateway):
        async with gateway.client() as client:
            await client.get("/signin")
            response = await client.post("/signin", data={"email": "member@gateway.test", "password": PASSWORD,
                                                          "csrf_token": "forged"})
            assert response.status_code == 403

    async def test_after_five_failures_the_next_attempt_waits_and_costs_no_hash(self, gateway: Gateway):
        email = f"{unique('locked')}@gateway.test"
        from gateway.users import ensure_user

        await ensure_user(gateway.settings, email=email, name="Locked", role=Role.member, password=PASSWORD)
        async with gateway.client() as client:
            for _ in range(FREE_FAILURES):
                page = await client.get("/signin")
                response = await client.post("/signin", data={"email": email, "password": "wrong password!",
                                                              "csrf_token": csrf_from(page.text)})
                assert response.status_code == 401
            # Five more failures just now (as fast as an attacker would): the next attempt waits 30 s.
            async with gateway.app.state.running.sessions() as session, session.begin():
                for _ in range(5):
                    record_failure(session, email, "elsewhere")
            page = await client.get("/signin")
            response = await client.post("/signin", data={"email": email, "password": PASSWORD,
                                                          "csrf_token": csrf_from(page.text)})
            assert response.status_code == 429 and "Too many failed attempts" in response.text
            assert 0 < int(response.headers["retry-after"]) <= EMAIL_MAX_DELAY
        # The wait follows the account too, not only the address it was attacked from (briefly: see
        # tests/gateway/test_signin_abuse.py for why the real user is never locked out).
        async with gateway.client(new_address()) as other:
            page = await other.get("/signin")
            response = await other.post("/signin", data={"email": email, "password": PASSWORD,
                                                         "csrf_token": csrf_from(page.text)})
            assert response.status_code == 429

    async def test_a_page_sends_an_anonymous_person_to_sign_in_and_back(self, gateway: Gateway):
        async with gateway.client() as client:
            response = await client.get("/partners?type=isv", headers={"accept": "text/html"})
            assert response.status_code == 303
            assert response.headers["location"] == "/signin?next=/partners%3Ftype%3Disv"
            page = await client.get(response.headers["location"])
            assert 'name="next" value="/partners?type=isv"' in page.text

    async def test_sign_in_never_redirects_to_another_site(self, gateway: Gateway):
        async with gateway.client() as client:
            page = await client.get("/signin?next=//evil.example/")
            response = await client.post("/signin", data={"email": "viewer@gateway.test", "password": PASSWORD,
                                                          "csrf_token": csrf_from(page.text),
                                                          "next": "//evil.example/"})
            assert response.status_code == 303 and response.headers["location"] == "/"


class TestJsonSignIn:
    async def test_a_script_signs_in_with_json_and_uses_the_csrf_token_it_got(self, gateway: Gateway):
        async with gateway.client() as client:
            r = await client.post("/api/session", json={"email": "admin@gateway.test", "password": PASSWORD})
            assert r.status_code == 201, r.text
            body = r.json()
            assert (body["email"], body["role"]) == ("admin@gateway.test", "admin") and len(body["csrf_token"]) > 20
            assert client.cookies.get("po_session") == body["session"]
            me = (await client.get("/api/me")).json()
            assert me["csrf_token"] == body["csrf_token"]
            # The first API token, made with no HTML in between.
            made = await client.post("/api/tokens", json={"name": unique("json "), "scopes": ["kpis:read"]},
                                     headers={"x-csrf-token": body["csrf_token"]})
            assert made.status_code == 201 and made.json()["token"].startswith("po_"), made.text
            assert (await client.post("/api/tokens", json={"name": unique("json "), "scopes": ["kpis:read"]})
                    ).status_code == 403  # the CSRF token is still required
        # A client without a cookie jar sends the session value as the cookie.
        async with gateway.client() as bare:
            r = await bare.get("/api/me", headers={"cookie": f"po_session={body['session']}"})
            assert r.status_code == 200 and r.json()["email"] == "admin@gateway.test"

    async def test_a_token_sees_no_csrf_token_and_cannot_reach_me(self, gateway: Gateway):
        admin = gateway.people[Role.admin]
        made = (await admin.client.post("/api/tokens", json={"name": unique("me "), "scopes": ["kpis:read"]},
                                        headers={"x-csrf-token": admin.csrf})).json()
        async with gateway.client() as client:
            r = await client.get("/api/me", headers={"authorization": f"Bearer {made['token']}"})
            assert r.status_code == 403

    async def test_wrong_password_is_401_and_repeated_failures_wait(self, gateway: Gateway):
        email = f"{unique('jsonlock')}@gateway.test"
        from gateway.users import ensure_user

        await ensure_user(gateway.settings, email=email, name="Json", role=Role.member, password=PASSWORD)
        async with gateway.client() as client:
            for _ in range(FREE_FAILURES):
                r = await client.post("/api/session", json={"email": email, "password": "wrong password!"})
                assert r.status_code == 401 and r.json()["detail"] == "wrong email or password"
                assert "po_session" not in r.headers.get("set-cookie", "")
            r = await client.post("/api/session", json={"email": email, "password": PASSWORD})
            assert r.status_code == 429 and 0 < int(r.headers["retry-after"]), r.text
            assert "po_session" not in r.headers.get("set-cookie", "")

    async def test_hostile_bodies_are_refused_without_a_session(self, gateway: Gateway):
        good = {"email": "admin@gateway.test", "password": PASSWORD}
        async with gateway.client() as client:
            bad_json = [
                {}, {"email": "admin@gateway.test"}, {**good, "role": "admin"}, {**good, "email": "x" * 321},
                {**good, "password": "p" * 201}, {**good, "email": ""}, {**good, "password": ["a"]},
                {**good, "email": {"$ne": ""}}, {"email": {"a": {"b": {"c": {"d": [[[[[[1]]]]]]}}}}, "password": "x"},
            ]
            for body in bad_json:
                r = await client.post("/api/session", json=body)
                assert r.status_code == 422, (body, r.text)
            # A form post (what a cross-site page could send) or text that looks like JSON is not read.
            r = await client.post("/api/session", data=good)
            assert r.status_code == 422
            r = await client.post("/api/session", content=b'{"email": "admin@gateway.test", "password": "x"}',
                                  headers={"content-type": "text/plain"})
            assert r.status_code == 422
            r = await client.post("/api/session", content=b"{not json", headers={"content-type": "application/json"})
            assert r.status_code == 422
            for email in ("admin@gateway.test\x00", "admin@gateway.test\x1b[2J"):
                r = await client.post("/api/session", json={"email": email, "password": PASSWORD})
                assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "email"], r.text
            r = await client.post("/api/session", json={"email": "admin@gateway.test\u202e", "password": PASSWORD})
            assert r.status_code == 401, r.text
            r = await client.post("/api/session", content=b'{"email": "\\ud800", "password": "x"}',
                                  headers={"content-type": "application/json"})
            assert r.status_code in (401, 422), r.text
            assert "po_session" not in client.cookies

    async def test_delete_signs_out_and_needs_the_csrf_token(self, gateway: Gateway):
        async with gateway.client() as client:
            body = (await client.post("/api/session", json={"email": "viewer@gateway.test",
                                                            "password": PASSWORD})).json()
            assert (await client.delete("/api/session")).status_code == 403
            r = await client.delete("/api/session", headers={"x-csrf-token": body["csrf_token"]})
            assert r.status_code == 204
        async with gateway.client() as replay:
            replay.cookies.set("po_session", body["session"])
            assert (await replay.get("/api/me")).status_code == 401


class TestSignOut:
    async def test_signing_out_ends_the_session_on_the_server(self, gateway: Gateway):
        client, csrf = await gateway.sign_in("viewer@gateway.test")
        try:
            cookie = client.cookies.get("po_session")
            response = await _form_post(gateway, client, "/signout", {"csrf_token": csrf})
            assert response.status_code == 303 and response.headers["location"] == "/signin"
            # Replaying the old cookie does not bring the session back.
            async with gateway.client() as replay:
                replay.cookies.set("po_session", cookie)
                assert (await replay.get("/api/me")).status_code == 401
                assert (await replay.get("/", headers={"accept": "text/html"})).status_code == 303
        finally:
            await client.aclose()

    async def test_sign_out_needs_the_csrf_token(self, gateway: Gateway):
        client, _ = await gateway.sign_in("viewer@gateway.test")
        try:
            response = await _form_post(gateway, client, "/signout", {})
            assert response.status_code == 403
            assert (await client.get("/api/me")).status_code == 200
        finally:
            await client.aclose()


class TestCsrf:
    async def test_cookie_authenticated_api_change_without_or_with_a_wrong_token_is_refused(self, gateway):
        member = gateway.people[Role.member]
        body = {"name": unique("Csrf "), "type": "isv"}
        missing = await member.client.post("/api/partners", json=body)
        assert missing.status_code == 403 and "CSRF" in missing.text
        wrong = await member.client.post("/api/partners", json=body, headers={"x-csrf-token": "x" * 43})
        assert wrong.status_code == 403
        other_session = gateway.people[Role.manager].csrf
        stolen = await member.client.post("/api/partners", json=body, headers={"x-csrf-token": other_session})
        assert stolen.status_code == 403
        right = await member.client.post("/api/partners", json=body, headers={"x-csrf-token": member.csrf})
        assert right.status_code == 201, right.text

    async def test_form_posts_without_the_token_are_refused(self, gateway: Gateway):
        member = gateway.people[Role.member]
        response = await _form_post(gateway, member.client, "/partners", {"name": unique("Form "), "type": "isv"})
        assert response.status_code == 403
        response = await _form_post(gateway, member.client, "/partners",
                                    {"name": unique("Form "), "type": "isv", "csrf_token": "forged"})
        assert response.status_code == 403

    async def test_tokens_need_no_csrf_because_browsers_never_send_them_by_themselves(self, gateway):
        admin = gateway.people[Role.admin]
        made = await admin.client.post("/api/tokens", json={"name": "writer", "scopes": ["partners:write"]},
                                       headers={"x-csrf-token": admin.csrf})
        async with gateway.client() as client:
            response = await client.post("/api/partners", json={"name": unique("Token "), "type": "msp"},
                                         headers={"authorization": f"Bearer {made.json()['token']}"})
            assert response.status_code == 201, response.text


class TestTokens:
    async def test_a_token_does_only_what_its_scopes_allow_until_revoked(self, gateway: Gateway):
        admin = gateway.people[Role.admin]
        made = await admin.client.post("/api/tokens", json={"name": "reader", "scopes": ["partners:read"]},
                                       headers={"x-csrf-token": admin.csrf})
        assert made.status_code == 201
        token = made.json()
        assert token["token"].startswith("po_")
        auth = {"authorization": f"Bearer {token['token']}"}
        async with gateway.client() as client:
            assert (await client.get("/api/partners", headers=auth)).status_code == 200
            write = await client.post("/api/partners", json={"name": unique("No "), "type": "isv"}, headers=auth)
            assert write.status_code == 403 and "partners:write" in write.text
            assert (await client.get("/api/users", headers=auth)).status_code == 403
            # Shown once: the list never carries the secret.
            listed = (await admin.client.get("/api/tokens")).json()
            assert all("token" not in t for t in listed)
            revoke = await admin.client.delete(f"/api/tokens/{token['id']}", headers={"x-csrf-token": admin.csrf})
            assert revoke.status_code == 200 and revoke.json()["revoked_at"]
            assert (await client.get("/api/partners", headers=auth)).status_code == 401

    async def test_unknown_scopes_are_refused_with_the_field(self, gateway: Gateway):
        admin = gateway.people[Role.admin]
        response = await admin.client.post("/api/tokens", json={"name": "x", "scopes": ["everything"]},
                                           headers={"x-csrf-token": admin.csrf})
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", "scopes"]


class TestViewer:
    async def test_a_viewer_sees_no_edit_controls_and_a_forced_post_is_refused(self, gateway: Gateway):
        viewer = gateway.people[Role.viewer]
        page = await viewer.client.get("/partners", headers={"accept": "text/html"})
        assert page.status_code == 200
        assert 'data-testid="partner-form"' not in page.text
        assert 'method="post" action="/partners"' not in page.text
        forced = await _form_post(gateway, viewer.client, "/partners",
                                  {"name": unique("Viewer "), "type": "isv", "csrf_token": viewer.csrf})
        assert forced.status_code == 403 and "Not allowed" in forced.text
        api = await viewer.client.post("/api/partners", json={"name": unique("Viewer "), "type": "isv"},
                                       headers={"x-csrf-token": viewer.csrf})
        assert api.status_code == 403

    async def test_admin_pages_are_for_admins_only(self, gateway: Gateway):
        for role in (Role.viewer, Role.member, Role.manager):
            response = await gateway.people[role].client.get("/admin", headers={"accept": "text/html"})
            assert response.status_code == 403
            assert 'href="/admin"' not in response.text, "no Admin link for non-admins"
        admin_page = await gateway.people[Role.admin].client.get("/", headers={"accept": "text/html"})
        assert 'href="/admin"' in admin_page.text


class TestAudit:
    async def test_changes_are_recorded_with_actor_and_before_after(self, gateway: Gateway):
        admin = gateway.people[Role.admin]
        email = f"{unique('new')}@gateway.test"
        page = await admin.client.get("/admin", headers={"accept": "text/html"})
        response = await _form_post(gateway, admin.client, "/admin/users", {
            "email": email, "name": "New Person", "role": "member", "password": PASSWORD,
            "csrf_token": csrf_from(page.text)})
        assert response.status_code == 303, response.text
        users = (await admin.client.get("/api/users")).json()
        new = next(u for u in users if u["email"] == email)
        response = await _form_post(gateway, admin.client, f"/admin/users/{new['id']}",
                                    {"role": "manager", "csrf_token": admin.csrf})
        assert response.status_code == 303

        entries = (await admin.client.get("/api/audit", params={"entity": "user"})).json()
        changed = next(e for e in entries if e["entity_id"] == new["id"] and e["action"] == "user.changed")
        assert changed["actor"] == admin.email
        assert changed["before"]["role"] == "member" and changed["after"]["role"] == "manager"
        created = next(e for e in entries if e["entity_id"] == new["id"] and e["action"] == "user.created")
        assert "password" not in str(created["after"]).lower()

        member = gateway.people[Role.member]
        name = unique("Audited ")
        made = await member.client.post("/api/partners", json={"name": name, "type": "referral"},
                                         headers={"x-csrf-token": member.csrf})
        assert made.status_code == 201
        partner_entries = (await admin.client.get("/api/audit", params={"entity": "partner"})).json()
        entry = next(e for e in partner_entries if e["entity_id"] == made.json()["id"])
        assert entry["actor"] == member.email and entry["after"]["name"] == name

        audit_page = await admin.client.get("/admin/audit", params={"entity": "user"},
                                            headers={"accept": "text/html"})
        assert audit_page.status_code == 200 and email in audit_page.text and "user.changed" in audit_page.text

    async def test_only_admins_read_the_audit_log(self, gateway: Gateway):
        for role in (Role.viewer, Role.member, Role.manager):
            client = gateway.people[role].client
            assert (await client.get("/api/audit")).status_code == 403
            assert (await client.get("/admin/audit", headers={"accept": "text/html"})).status_code == 403


class TestAdminPages:
    async def test_a_new_token_is_shown_once_and_can_be_revoked_from_the_page(self, gateway: Gateway):
        admin = gateway.people[Role.admin]
        response = await admin.client.post("/admin/tokens", data={"name": "aws-sync", "scopes": ["events:publish"],
                                                                  "csrf_token": admin.csrf})
        assert response.status_code == 200
        secret = re.search(r'<code class="secret"[^>]*>(po_[^<]+)</code>', response.text)
        assert secret, "the new token is shown"
        again = await admin.client.get("/admin")
        assert secret[1] not in again.text
        token_id = re.search(r'action="/admin/tokens/([0-9a-f-]+)/revoke"', again.text)[1]
        revoked = await admin.client.post(f"/admin/tokens/{token_id}/revoke", data={"csrf_token": admin.csrf})
        assert revoked.status_code == 303

    async def test_form_errors_are_shown_beside_their_fields(self, gateway: Gateway):
        admin = gateway.people[Role.admin]
        response = await admin.client.post("/admin/users", data={"email": "not-an-email", "role": "member",
                                                                  "password": "short", "csrf_token": admin.csrf})
        assert response.status_code == 422
        assert 'data-field="email"' in response.text and 'data-field="password"' in response.text
        assert "at least 10 characters" in response.text
        assert 'value="not-an-email"' in response.text, "what was typed is kept"
        response = await admin.client.post("/admin/tokens", data={"name": "", "csrf_token": admin.csrf})
        assert response.status_code == 422 and 'data-field="name"' in response.text
