"""The gateway in-process in front of real services, with one person of every role signed in through
the real sign-in form (session cookie + CSRF token)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

import httpx
from fastapi import FastAPI

from gateway.app import create_app
from gateway.auth import STAFF_ROLES, Role
from gateway.users import ensure_user
from runtime.service import ServiceDefinition, shutdown, start
from runtime.settings import Settings
from tests.support import bus as support_bus

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
        # The CSRF token from the lightest page that carries it (the dashboard is tested on its own).
        account = await client.get("/account", headers={"accept": "text/html"})
        assert account.status_code == 200, account.text
        return client, csrf_from(account.text)


@dataclass
class Served:
    """The gateway behind a real uvicorn server on a local port (HTTP over TCP, as in production)."""

    base: str
    host: str
    port: int

    def client(self, **kwargs: object) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base, follow_redirects=False, timeout=30, **kwargs)  # type: ignore[arg-type]


TEST_SETTINGS = {"environment": "test", "outbox_poll_seconds": 0.2, "bus_ack_wait_seconds": 5.0}


@contextlib.asynccontextmanager
async def gateway_with_services(settings_of: Callable[[str], Settings], services: Sequence[ServiceDefinition],
                                domain: str, *, bus_goes_too: bool = True) -> AsyncIterator[Gateway]:
    """The given services and the gateway (its real lifespan: read-model consumers, command client), each
    with the settings `settings_of(owner)` gives (`owner`: its database schema and role, as in
    runtime.topology.DATABASE_OWNERS); a person of every role, `<role>@<domain>`, signed in.
    `bus_goes_too`: their NATS server stops with them (see tests.support.bus.bus_goes_too); False
    where the test starts services on the same bus again."""
    stop = asyncio.Event()
    running = []
    lifespan: contextlib.AbstractAsyncContextManager | None = None
    try:
        for definition in services:
            running.append(await start(definition, settings_of(definition.schema), stop))
        settings = settings_of("gateway")
        app = create_app(settings)
        entering = app.router.lifespan_context(app)
        await entering.__aenter__()
        lifespan = entering
        g = Gateway(app=app, settings=settings)
        try:
            for role in STAFF_ROLES:
                email = f"{role.value}@{domain}"
                await ensure_user(settings, email=email, name=f"The {role.value}", role=role, password=PASSWORD)
                client, csrf = await g.sign_in(email)
                me = (await client.get("/api/me")).json()
                g.people[role] = Person(role=role, email=email, client=client, csrf=csrf, id=me["id"])
            yield g
        finally:
            for person in g.people.values():
                await person.client.aclose()
    finally:
        stop.set()
        if bus_goes_too:
            support_bus.bus_goes_too(*running)
            if lifespan is not None:
                support_bus.bus_goes_too(app.state.running)
        # The gateway and the services stop side by side: each handing back what it holds waits out its
        # consumers' last fetch and late deliveries (a second or two).
        stopping = [shutdown(s) for s in running]
        if lifespan is not None:
            stopping.append(lifespan.__aexit__(None, None, None))
        failed = [r for r in await asyncio.gather(*stopping, return_exceptions=True) if isinstance(r, BaseException)]
        if failed:
            raise failed[0]
