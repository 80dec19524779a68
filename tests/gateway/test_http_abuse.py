"""The gateway under abuse, over real HTTP (uvicorn on a local port): request body limits refused
before the body is read (Content-Length and chunked), and the security headers on every response
of every route in the route table."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from fastapi import Request
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

from gateway.auth import Role
from gateway.pipeline_csv import MAX_BYTES as IMPORT_MAX_BYTES
from gateway.security_headers import CSP, GatewayApp
from gateway.web.common import TEMPLATES_DIR
from tests.gateway.test_authorization import ROUTES, RouteCase, _call
from tests.support.gateway import Gateway, Served
from tests.support.routes import requirement

LIMIT = 1024 * 1024


async def _raw(served: Served, head: str, body: bytes = b"", *, more: bytes | None = None) -> tuple[int, bytes]:
    """Send a request head and part of a body on a raw socket and read the answer without sending the
    rest: the status proves the server answered before reading what it was promised."""
    reader, writer = await asyncio.open_connection(served.host, served.port)
    try:
        writer.write(head.encode() + b"\r\n" + body)
        if more:
            writer.write(more)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), timeout=30)
        rest = await asyncio.wait_for(reader.read(65536), timeout=30)
        return int(status_line.split()[1]), rest
    finally:
        writer.close()


def _headers_of(raw: bytes) -> httpx.Headers:
    """The response headers of a raw answer (what `_raw` read after the status line)."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    pairs = [line.split(":", 1) for line in head.splitlines() if ":" in line]
    return httpx.Headers([(name.strip(), value.strip()) for name, value in pairs])


def _head(method: str, path: str, *headers: str) -> str:
    return "\r\n".join((f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *headers)) + "\r\n"


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


class TestBodyLimit:
    async def test_a_body_at_the_limit_is_read_and_one_byte_past_it_is_refused(self, gateway: Gateway,
                                                                               served: Served):
        admin = gateway.people[Role.admin]
        cookies = dict(admin.client.cookies)
        body = json.dumps({"name": "Exactly at the limit", "type": "isv"}).encode()
        at_limit = body + b" " * (LIMIT - len(body))  # JSON allows trailing whitespace
        async with served.client(cookies=cookies) as client:
            headers = {"x-csrf-token": admin.csrf, "content-type": "application/json"}
            accepted = await client.post("/api/partners", content=at_limit, headers=headers)
            assert accepted.status_code == 201, accepted.text
            refused = await client.post("/api/partners", content=at_limit + b" ", headers=headers)
            assert refused.status_code == 413, refused.text
            _check_headers(refused, "413 past the limit")
            assert refused.headers.get("cache-control") == "no-store"
            # Anonymous callers are refused by size too, before anything else is done with the body.
        async with served.client() as anonymous:
            assert (await anonymous.post("/api/partners", content=at_limit + b" ")).status_code == 413

    async def test_a_promised_body_past_the_limit_is_refused_before_it_is_sent(self, served: Served):
        # 100 MB promised, 10 bytes sent: an answer at all means the server did not wait for the body.
        # FastAPI's body limit answers these outside every route and middleware of ours: the security
        # headers are on them all the same (gateway.security_headers.GatewayApp).
        status, rest = await _raw(served, _head("POST", "/api/partners", "Content-Type: application/json",
                                                f"Content-Length: {100 * LIMIT}"), b'{"name": "')
        assert status == 413
        _check_headers_raw(rest, "413 for a promised JSON body")
        status, rest = await _raw(served, _head("POST", "/signin", "Content-Type: application/x-www-form-urlencoded",
                                                f"Content-Length: {LIMIT + 1}"), b"email=")
        assert status == 413
        _check_headers_raw(rest, "413 at sign-in")
        status, rest = await _raw(served, _head("POST", "/api/partners/import", "Content-Type: text/csv",
                                                f"Content-Length: {IMPORT_MAX_BYTES + 1}"), b"name,type\n")
        assert status == 413
        _check_headers_raw(rest, "413 of a CSV import")

    async def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_limit(self, served: Served):
        # Chunks up to just past 1 MB, and then the connection stays open without the final chunk.
        piece = b" " * (64 * 1024)
        chunks = b"".join(_chunk(piece) for _ in range(LIMIT // len(piece) + 1))
        status, rest = await _raw(served, _head("POST", "/api/partners", "Content-Type: application/json",
                                                "Transfer-Encoding: chunked"), _chunk(b'{"name": "x"}') + chunks)
        assert status == 413
        _check_headers_raw(rest, "413 of a chunked body")

    async def test_a_chunked_body_under_the_limit_is_served(self, gateway: Gateway, served: Served):
        admin = gateway.people[Role.admin]

        async def parts():
            yield b'{"name": "Chunked partner",'
            yield b' "type": "isv"}'

        async with served.client(cookies=dict(admin.client.cookies)) as client:
            response = await client.post("/api/partners", content=parts(),
                                         headers={"x-csrf-token": admin.csrf, "content-type": "application/json"})
        assert response.status_code == 201, response.text

    async def test_csv_imports_take_bodies_past_the_general_limit(self, gateway: Gateway, served: Served):
        member = gateway.people[Role.member]
        big = b"name,type\n" + b"\xff" * (2 * LIMIT)  # past 1 MB, and not UTF-8: refused for that, not its size
        async with served.client(cookies=dict(member.client.cookies)) as client:
            response = await client.post("/api/partners/import", content=big,
                                         headers={"x-csrf-token": member.csrf, "content-type": "text/csv"})
        assert response.status_code == 422, response.text
        assert "UTF-8" in response.text


# ----------------------------------------------------------------------------------------- headers


def _check_headers(response: httpx.Response, what: str) -> None:
    h = response.headers
    assert h.get("content-security-policy") == CSP, what
    assert "frame-ancestors 'none'" in CSP and "script-src 'self'" in CSP and "unsafe-inline" not in CSP.split(
        "script-src")[1].split(";")[0]
    assert h.get("x-content-type-options") == "nosniff", what
    assert h.get("referrer-policy") == "same-origin", what
    assert h.get("x-frame-options") == "DENY", what


def _check_headers_raw(raw: bytes, what: str) -> None:
    headers = _headers_of(raw)
    _check_headers(httpx.Response(200, headers=headers), what)
    assert headers.get("cache-control") == "no-store", what


def _cases() -> list[RouteCase]:
    cases = []
    for method, path, route in ROUTES:
        req = requirement(route)
        cases.append(RouteCase(method, path, getattr(req, "required_role", None), getattr(req, "required_scope", None),
                               route))
    return cases


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c.id)
async def test_every_route_answers_with_the_security_headers(gateway: Gateway, case: RouteCase):
    admin = gateway.people[Role.admin]
    async with gateway.client() as anonymous:
        for accept in ("application/json", "text/html"):
            response = await _call(anonymous, case, accept=accept)
            _check_headers(response, f"anonymous {case.id} -> {response.status_code}")
            assert response.headers.get("cache-control") == "no-store" or case.path.startswith("/static")
    if case.path == "/signout" or (case.path == "/api/session" and case.method == "DELETE"):
        return  # would end the admin's session, which the later tests use
    response = await _call(admin.client, case, csrf=admin.csrf, accept="text/html")
    _check_headers(response, f"admin {case.id} -> {response.status_code}")
    # Whatever a signed-in person is shown is never kept by a browser or proxy.
    assert response.headers.get("cache-control") == "no-store", case.id


async def test_static_files_errors_and_unknown_paths_carry_the_headers_too(gateway: Gateway, served: Served):
    async with served.client() as client:
        for path in ("/static/app.css", "/static/nope.js", "/no/such/page", "/signin", "/healthz"):
            response = await client.get(path, headers={"accept": "text/html"})
            _check_headers(response, f"{path} -> {response.status_code}")
        assert (await client.get("/static/app.css")).headers.get("cache-control") != "no-store"


async def test_no_page_has_an_inline_script_or_event_handler(gateway: Gateway):
    admin = gateway.people[Role.admin]
    # The commissions pages need the commissions service (not started here): their templates are read below.
    pages = ["/", "/pipeline", "/partners", "/team", "/admin", "/admin/audit", "/import"]
    async with gateway.client() as anonymous:
        for path, client in [(p, admin.client) for p in pages] + [("/signin", anonymous), ("/docs", anonymous),
                                                                  ("/redoc", anonymous)]:
            response = await client.get(path, headers={"accept": "text/html"})
            assert response.status_code == 200, f"{path}: {response.status_code}"
            _no_inline_script(response.text, path)
    for template in TEMPLATES_DIR.glob("*.html"):
        _no_inline_script(template.read_text(), template.name)


def _no_inline_script(html: str, what: str) -> None:
    for tag in html.split("<script")[1:]:
        attributes, _, body = tag.partition(">")
        if 'type="application/json"' in attributes:
            # A JSON data block is never run; it must only be unable to close itself early: `tojson`
            # escapes <, > and & (a `|safe` string with `</script>` in it would end the block).
            content = body.split("</script>", 1)[0]
            assert "|safe" not in content and "<" not in content, f"{what}: unescaped JSON block <script{tag[:80]}"
            continue
        assert " src=" in attributes, f"{what}: inline <script{tag[:80]}"
    lowered = html.lower()
    for handler in (" onchange=", " onclick=", " onload=", " onsubmit=", " oninput=", "javascript:"):
        assert handler not in lowered, f"{what}: {handler}"


async def test_a_new_api_token_is_shown_with_no_store(gateway: Gateway):
    admin = gateway.people[Role.admin]
    response = await admin.client.post("/api/tokens", json={"name": "shown once", "scopes": ["kpis:read"]},
                                       headers={"x-csrf-token": admin.csrf})
    assert response.status_code == 201 and response.json()["token"]
    assert response.headers["cache-control"] == "no-store"


async def test_responses_sent_outside_the_routes_carry_the_headers_too():
    """FastAPI answers a body past its limit (413) and an unhandled error (500) from middleware of its
    own, outside anything `add_middleware` installs; the gateway's application class puts the headers
    outside all of it. Shown on a bare app of that class with a route that fails."""
    app = GatewayApp(max_body_size=16)

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"read": len(await request.body())}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.post("/echo", content=b"x" * 16)).json() == {"read": 16}
        for response in (await client.post("/echo", content=b"x" * 17),
                         await client.post("/echo", content=b"x" * 17, headers={"content-length": "17"}),
                         await client.get("/boom")):
            assert response.status_code in (413, 500), response.text
            _check_headers(response, f"{response.request.url.path} -> {response.status_code}")
            assert response.headers.get("cache-control") == "no-store"
        assert {(await client.post("/echo", content=b"x" * 17)).status_code, (await client.get("/boom")).status_code} \
            == {413, 500}
    # OpenTelemetry's FastAPI instrumentation still wraps the stack (it refuses a stack that does not
    # start with FastAPI's ServerErrorMiddleware, and then traces nothing).
    FastAPIInstrumentor.instrument_app(app)
    try:
        stack = app.build_middleware_stack()  # ServerErrorMiddleware(OpenTelemetryMiddleware(...)) when it applies
        assert type(getattr(stack, "app", None)).__name__ == "OpenTelemetryMiddleware"
    finally:
        FastAPIInstrumentor.uninstrument_app(app)
