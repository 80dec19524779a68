"""The gateway in-process (its real lifespan: read-model consumers, command client) and the pipeline
service in-process, on this module's own Postgres database and NATS server; people of every role
signed in through the real sign-in form."""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from gateway.app import create_app
from gateway.auth import Role
from gateway.users import ensure_user
from runtime.embedded import EmbeddedNats, free_port
from runtime.service import shutdown, start
from runtime.settings import Settings
from runtime.testing import TEST_SECRET
from services.pipeline.handlers import definition as pipeline_definition

PASSWORD = "correct horse battery staple"
_addresses = itertools.count(10)


def new_address() -> str:
    """A client address of its own: sign-in rate limiting counts failures per address too."""
    n = next(_addresses)
    return f"10.9.{n // 250}.{n % 250 + 1}"


def csrf_from(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found[1]


@dataclass
class Person:
    role: Role
    email: str
    client: httpx.AsyncClient
    csrf: str
    id: str = ""


@dataclass
class Gateway:
    app: FastAPI
    settings: Settings
    people: dict[Role, Person] = field(default_factory=dict)

    def client(self, address: str | None = None) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, client=(address or new_address(), 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://testserver", follow_redirects=False,
                                 timeout=20)

    async def sign_in(self, email: str, password: str = PASSWORD, *, address: str | None = None,
                      ) -> tuple[httpx.AsyncClient, str]:
        client = self.client(address)
        page = await client.get("/signin")
        response = await client.post("/signin", data={"email": email, "password": password,
                                                      "csrf_token": csrf_from(page.text), "next": "/"})
        assert response.status_code == 303, response.text
        home = await client.get("/", headers={"accept": "text/html"})
        assert home.status_code == 200, home.text
        return client, csrf_from(home.text)


async def wait_until(predicate, what: str, timeout: float = 20.0):
    """Poll an async predicate until it returns something truthy (events arrive asynchronously)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


@pytest.fixture(scope="module")
async def gateway(private_db: dict[str, str], private_bus: EmbeddedNats) -> AsyncIterator[Gateway]:
    common = {"environment": "test", "secret_key": TEST_SECRET,
              "outbox_poll_seconds": 0.2, "bus_ack_wait_seconds": 5.0}
    # Each process logs in to NATS as itself, held to its grants by the server.
    pipeline_settings = Settings(database_url=private_db["pipeline"], nats_url=private_bus.url_for("pipeline"),
                                 **common)
    settings = Settings(database_url=private_db["gateway"], nats_url=private_bus.url_for("gateway"), **common)
    stop = asyncio.Event()
    pipeline = await start(pipeline_definition, pipeline_settings, stop)
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app):
            gw = Gateway(app=app, settings=settings)
            for role in Role:
                email = f"{role.value}@gateway.test"
                await ensure_user(settings, email=email, name=f"The {role.value}", role=role, password=PASSWORD)
                client, csrf = await gw.sign_in(email)
                me = (await client.get("/api/me")).json()
                gw.people[role] = Person(role=role, email=email, client=client, csrf=csrf, id=me["id"])
            yield gw
            for person in gw.people.values():
                await person.client.aclose()
    finally:
        stop.set()
        await shutdown(pipeline)


@dataclass
class Served:
    """The gateway behind a real uvicorn server on a local port (HTTP over TCP, as in production)."""

    base: str
    host: str
    port: int

    def client(self, **kwargs: object) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base, follow_redirects=False, timeout=30, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
async def served(gateway: Gateway) -> AsyncIterator[Served]:
    """Serves the module's gateway (its lifespan already running) the way `python -m gateway serve` does."""
    from gateway.__main__ import uvicorn_config

    port = free_port()
    config = uvicorn_config(gateway.app, gateway.settings, host="127.0.0.1", port=port, lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    await wait_until(lambda: _started(server), "uvicorn to start")
    try:
        yield Served(base=f"http://127.0.0.1:{port}", host="127.0.0.1", port=port)
    finally:
        server.should_exit = True
        await task


async def _started(server: uvicorn.Server) -> bool:
    return server.started
