"""Every route against every kind of caller: anonymous, each role, API tokens with and without the
route's scope, a revoked token. Routes are enumerated from the app, so a route added later is
covered without touching this file — and one added without `require` fails the first test."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest
from fastapi.routing import APIRoute

from gateway.auth import SCOPES, STAFF_ROLES, Role
from tests.support.gateway import Gateway
from tests.support.routes import all_routes, fill_path, is_public, requirement

# Signing out ends the caller's session, so each call gets a session of its own.
ENDS_SESSION = {"/signout", "/api/session"}
ALL_ROLES = STAFF_ROLES


@dataclass(frozen=True)
class RouteCase:
    method: str
    path: str
    role: Role | None
    scope: str | None
    route: APIRoute

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def is_api(self) -> bool:
        return self.path.startswith("/api/") or self.path == "/metrics"


ROUTES = all_routes()


def _protected() -> list[RouteCase]:
    cases = []
    for method, path, route in ROUTES:
        if is_public(path, method):
            continue
        req = requirement(route)
        if req is not None:
            cases.append(RouteCase(method, path, req.required_role, req.required_scope, route))
    return cases


CASES = _protected()


def _url(case: RouteCase) -> str:
    return fill_path(case.path, case.route)


async def _call(client: httpx.AsyncClient, case: RouteCase, *, csrf: str | None = None,
                bearer: str | None = None, accept: str = "application/json") -> httpx.Response:
    headers = {"accept": accept}
    if csrf:
        headers["x-csrf-token"] = csrf
    if bearer:
        headers["authorization"] = f"Bearer {bearer}"
    kwargs: dict[str, object] = {"headers": headers}
    if case.method in ("POST", "PUT", "PATCH"):
        kwargs["json"] = {}
    return await client.request(case.method, _url(case), **kwargs)  # type: ignore[arg-type]


def test_every_route_is_public_on_purpose_or_declares_who_may_call_it():
    missing = [f"{m} {p}" for m, p, r in ROUTES if not is_public(p, m) and requirement(r) is None]
    assert missing == [], f"routes without require(role, scope): {missing}"
    assert len(CASES) >= 20, "the table should see the API and the pages"
    for case in CASES:
        assert case.scope is None or case.scope in SCOPES


@pytest.fixture(scope="module")
async def tokens(gateway: Gateway) -> dict[str, str]:
    """For every scope, a token holding only it and a token holding every other scope; and a revoked one."""
    admin = gateway.people[Role.admin]
    made: dict[str, str] = {}

    async def make(name: str, scopes: list[str]) -> dict:
        response = await admin.client.post("/api/tokens", json={"name": name, "scopes": scopes},
                                           headers={"x-csrf-token": admin.csrf})
        assert response.status_code == 201, response.text
        return response.json()

    for scope in SCOPES:
        made[f"only:{scope}"] = (await make(f"only {scope}", [scope]))["token"]
        made[f"not:{scope}"] = (await make(f"all but {scope}", sorted(set(SCOPES) - {scope})))["token"]
    revoked = await make("revoked", sorted(SCOPES))
    response = await admin.client.delete(f"/api/tokens/{revoked['id']}", headers={"x-csrf-token": admin.csrf})
    assert response.status_code == 200
    made["revoked"] = revoked["token"]
    return made


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
class TestEveryRouteAndCaller:
    async def test_anonymous_is_sent_to_sign_in(self, gateway: Gateway, case: RouteCase):
        async with gateway.client() as client:
            response = await _call(client, case)
            assert response.status_code == 401, response.text
            if not case.is_api:
                page = await _call(client, case, accept="text/html")
                assert page.status_code == 303 and page.headers["location"].startswith("/signin?next=")

    async def test_each_role_is_refused_below_the_required_role_and_served_from_it(self, gateway: Gateway,
                                                                                      case: RouteCase):
        assert case.role is not None
        for role in ALL_ROLES:
            person = gateway.people[role]
            if case.path in ENDS_SESSION:
                client, csrf = await gateway.sign_in(person.email)
            else:
                client, csrf = person.client, person.csrf
            response = await _call(client, case, csrf=csrf)
            if case.role is Role.partner:
                # The portal is the partner's view: the team uses its own pages (tests/portal).
                assert response.status_code == 403, f"{role.value}: {response.status_code} {response.text}"
            elif role.rank < case.role.rank:
                assert response.status_code == 403, f"{role.value}: {response.status_code} {response.text}"
            else:
                assert response.status_code not in (401, 403), f"{role.value}: {response.status_code} {response.text}"
            if client is not person.client:
                await client.aclose()

    async def test_tokens_need_the_routes_scope(self, gateway: Gateway, tokens: dict[str, str], case: RouteCase):
        async with gateway.client() as client:
            if case.scope is None:
                # A person-only route: no token reaches it, whatever it holds.
                for scope in SCOPES:
                    response = await _call(client, case, bearer=tokens[f"only:{scope}"])
                    assert response.status_code == 403, f"{scope}: {response.text}"
            else:
                allowed = await _call(client, case, bearer=tokens[f"only:{case.scope}"])
                assert allowed.status_code not in (401, 403), allowed.text
                refused = await _call(client, case, bearer=tokens[f"not:{case.scope}"])
                assert refused.status_code == 403, refused.text
            revoked = await _call(client, case, bearer=tokens["revoked"])
            assert revoked.status_code == 401, revoked.text
