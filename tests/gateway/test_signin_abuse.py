"""Sign-in under attack: password hashing off the event loop with a concurrency limit, throttling
that grows per address (IPv6 by /64) and per email without locking the real user out, and the proxy
setting that decides whose address is counted."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy import text

from gateway import passwords, signin_throttle
from gateway.__main__ import uvicorn_config
from gateway.auth import Role
from gateway.users import ensure_user
from runtime.settings import Settings
from runtime.testing import TEST_SECRET, eventually, unique
from tests.support.gateway import PASSWORD, Gateway, Served, csrf_from, new_address


async def _attempt(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    page = await client.get("/signin")
    return await client.post("/signin", data={"email": email, "password": password,
                                              "csrf_token": csrf_from(page.text)})


async def _new_user(gateway: Gateway) -> str:
    email = f"{unique('u')}@gateway.test"
    await ensure_user(gateway.settings, email=email, name="Someone", role=Role.member, password=PASSWORD)
    return email


async def _sql(gateway: Gateway, statement: str, **params: object) -> None:
    async with gateway.app.state.running.sessions() as session, session.begin():
        await session.execute(text(statement), params)


class StoppedClock:
    """The throttle's clock, stopped: waits run out only when the test moves it on, however slowly the
    test runs."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def stopped_clock(monkeypatch: pytest.MonkeyPatch) -> StoppedClock:
    stopped = StoppedClock()
    monkeypatch.setattr(signin_throttle, "clock", stopped)
    return stopped


class TestHashingOffTheLoop:
    async def test_a_slow_password_hash_does_not_hold_up_other_requests(self, gateway: Gateway, served: Served,
                                                                       monkeypatch: pytest.MonkeyPatch):
        # A hash that takes as long as the test wants: if it ran on the event loop, nothing else could
        # be answered until it is released.
        gate = threading.Event()
        entered: list[int] = []

        class Held(PasswordHasher):
            def verify(self, hash, password):
                entered.append(1)
                gate.wait(60)
                return super().verify(hash, password)

        monkeypatch.setattr(passwords, "hasher", Held())
        viewer = gateway.people[Role.viewer]
        clients = [served.client() for _ in range(4)]
        try:
            forms = [csrf_from((await c.get("/signin")).text) for c in clients]
            signins = [asyncio.create_task(c.post("/signin", data={"email": viewer.email, "password": PASSWORD,
                                                                   "csrf_token": f}))
                       for c, f in zip(clients, forms, strict=True)]
            await eventually(lambda: _true(len(entered) >= 2), "two hashes to start")
            async with served.client(cookies=dict(viewer.client.cookies)) as other:
                me = await other.get("/api/me")
                page = await other.get("/partners", headers={"accept": "text/html"})
            assert me.status_code == 200 and page.status_code == 200
            assert not any(t.done() for t in signins), "sign-ins finished while their hashes were held"
            # At most GATEWAY_PASSWORD_HASH_CONCURRENCY (2) hashes run; the other attempts wait for a slot.
            assert len(entered) == gateway.settings.gateway_password_hash_concurrency == 2
        finally:
            gate.set()
            results = await asyncio.gather(*signins, return_exceptions=True)
            for c in clients:
                await c.aclose()
        assert [r.status_code for r in results] == [303] * 4  # type: ignore[union-attr]
        assert len(entered) == 4


async def _true(value: bool) -> bool:
    return value


class TestThrottling:
    async def test_the_wait_grows_with_each_failure_from_an_address(self, gateway: Gateway,
                                                                    stopped_clock: StoppedClock):
        address = new_address()
        async with gateway.client(address) as client:
            for _ in range(signin_throttle.FREE_FAILURES):
                assert (await _attempt(client, await _new_user(gateway), "wrong password!")).status_code == 401
        # The waits, read at the moment of each further failure, a second apart.
        sessions = gateway.app.state.running.sessions
        t = stopped_clock.now
        waits = []
        async with sessions() as session, session.begin():
            for _ in range(6):
                t += timedelta(seconds=1)
                signin_throttle.record_failure(session, f"{unique('x')}@gateway.test", address, at=t)
                await session.flush()
                waits.append(await signin_throttle.wait_seconds(session, "someone@else.test", address,
                                                                known_device=False, now=t))
        assert waits == [2, 4, 8, 16, 32, 64]  # failures 6..11 from one address
        assert signin_throttle.delay_after(100, signin_throttle.ADDRESS_MAX_DELAY) == 15 * 60
        # And over HTTP at the moment of the last failure: the next attempt from that address waits, with
        # a Retry-After to say how long.
        stopped_clock.now = t
        async with gateway.client(address) as client:
            refused = await _attempt(client, await _new_user(gateway), PASSWORD)
            assert refused.status_code == 429 and int(refused.headers["retry-after"]) == 64

    async def test_an_attack_on_an_account_does_not_lock_its_owner_out(self, gateway: Gateway,
                                                                       stopped_clock: StoppedClock):
        email = await _new_user(gateway)
        # The owner has signed in from this browser before: it carries the known-device cookie.
        async with gateway.client(new_address()) as owner:
            assert (await _attempt(owner, email, PASSWORD)).status_code == 303
            assert owner.cookies.get(signin_throttle.DEVICE_COOKIE)
        device = owner.cookies.get(signin_throttle.DEVICE_COOKIE)
        # An attacker has failed 60 times on the account in the last ten minutes, the last just now.
        attacker = new_address()
        async with gateway.app.state.running.sessions() as session, session.begin():
            for _ in range(60):
                signin_throttle.record_failure(session, email, attacker)
        async with gateway.client(attacker) as client:
            refused = await _attempt(client, email, PASSWORD)
            assert refused.status_code == 429
            assert int(refused.headers["retry-after"]) == signin_throttle.ADDRESS_MAX_DELAY
        # From another address the account's own wait is short: the attacker gets two guesses a minute.
        async with gateway.client(new_address()) as elsewhere:
            refused = await _attempt(elsewhere, email, "a guess at it")
            assert refused.status_code == 429
            assert int(refused.headers["retry-after"]) == signin_throttle.EMAIL_MAX_DELAY
        # The owner's known browser, from yet another address, goes straight in.
        async with gateway.client(new_address()) as owner_again:
            owner_again.cookies.set(signin_throttle.DEVICE_COOKIE, device)
            assert (await _attempt(owner_again, email, PASSWORD)).status_code == 303
        # A cookie made for another account does not count.
        async with gateway.client(new_address()) as forged:
            forged.cookies.set(signin_throttle.DEVICE_COOKIE, device.replace(device[:8], "00000000"))
            assert (await _attempt(forged, email, PASSWORD)).status_code == 429
        # A new browser waits out at most the account's short wait, and then signs in.
        stopped_clock.advance(signin_throttle.EMAIL_MAX_DELAY)
        async with gateway.client(new_address()) as fresh:
            assert (await _attempt(fresh, email, PASSWORD)).status_code == 303
        async with gateway.client(attacker) as client:
            assert (await _attempt(client, email, PASSWORD)).status_code == 429  # the attacker still waits

    async def test_ipv6_addresses_of_one_slash_64_count_together(self, gateway: Gateway,
                                                                 stopped_clock: StoppedClock):
        net = f"2001:db8:{next_net()}:7"
        for host in range(1, signin_throttle.FREE_FAILURES + 1):
            async with gateway.client(f"{net}::{host:x}") as client:
                assert (await _attempt(client, await _new_user(gateway), "wrong password!")).status_code == 401
        group = signin_throttle.client_key(f"{net}::1")
        async with gateway.app.state.running.sessions() as session, session.begin():
            counted = await session.scalar(text("SELECT count(*) FROM gateway.signin_attempt WHERE client = :c"),
                                           {"c": group})
            assert counted == signin_throttle.FREE_FAILURES  # five addresses, one group
            for _ in range(5):  # and five more just now: the group's next attempt waits 32 s
                signin_throttle.record_failure(session, f"{unique('x')}@gateway.test", group)
        async with gateway.client(f"{net}:ffff:ffff:ffff:ffff") as same_64:
            assert (await _attempt(same_64, await _new_user(gateway), PASSWORD)).status_code == 429
        async with gateway.client(f"{net[:-1]}8::1") as next_64:
            assert (await _attempt(next_64, await _new_user(gateway), PASSWORD)).status_code == 303
        assert signin_throttle.client_key("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64"
        assert signin_throttle.client_key("::ffff:10.1.2.3") == "10.1.2.3"
        assert signin_throttle.client_key("10.1.2.3") == "10.1.2.3"
        assert signin_throttle.client_key(None) == "unknown"


_nets = iter(range(0x100, 0xFFFF))


def next_net() -> str:
    return f"{next(_nets):x}"


class TestProxies:
    def test_forwarded_headers_are_believed_only_from_the_configured_proxies(self):
        plain = uvicorn_config(object(), Settings(environment="test", secret_key=TEST_SECRET))
        assert plain.proxy_headers is False
        behind = uvicorn_config(object(), Settings(environment="test", secret_key=TEST_SECRET,
                                                   gateway_forwarded_allow_ips="10.0.0.5,10.0.1.0/24"))
        assert behind.proxy_headers is True and behind.forwarded_allow_ips == "10.0.0.5,10.0.1.0/24"

    async def test_a_client_cannot_choose_the_address_it_is_counted_under(self, gateway: Gateway, served: Served):
        # Over real TCP from 127.0.0.1 with no proxy configured: X-Forwarded-For is ignored, so failures
        # claiming other addresses are all counted against the one the connection came from.
        emails = [await _new_user(gateway) for _ in range(3)]
        async with served.client() as client:
            for i, email in enumerate(emails):
                page = await client.get("/signin")
                response = await client.post("/signin", headers={"x-forwarded-for": f"203.0.113.{i}"},
                                             data={"email": email, "password": "wrong password!",
                                                   "csrf_token": csrf_from(page.text)})
                assert response.status_code == 401
        async with gateway.app.state.running.sessions() as session:
            rows = (await session.execute(text(
                "SELECT client, count(*) FROM gateway.signin_attempt WHERE email = ANY(:e) GROUP BY client"),
                {"e": emails})).all()
        assert dict(rows) == {"127.0.0.1": 3}
        await _sql(gateway, "DELETE FROM gateway.signin_attempt WHERE client = '127.0.0.1'")


def test_the_email_wait_is_short_and_the_address_wait_long():
    assert signin_throttle.EMAIL_MAX_DELAY <= 60 < signin_throttle.ADDRESS_MAX_DELAY
    assert signin_throttle.delay_after(signin_throttle.FREE_FAILURES - 1, 900) == 0
    assert timedelta(seconds=signin_throttle.EMAIL_MAX_DELAY) < signin_throttle.WINDOW
