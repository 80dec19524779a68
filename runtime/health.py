"""Health checks that always answer, within a bound, whatever is down.

`python -m runtime.health <service> [--local] [--alive]`: exit 0 when the service answers its health check
healthy. With --local only the instance on this host answers (a container's health check must not be
answered by another replica of the same service); with --alive, when it answers at all (liveness).

Every wait here has a deadline: nats-py's `connect` retries a refused server forever (even with
`allow_reconnect=False`), a request over a reconnecting connection waits for its timeout, and a
Postgres that accepts connections but does not answer holds a query for as long as the socket lives.
A probe that hangs is worse than one that says "down", so each of those is wrapped in `bounded`.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from collections.abc import Awaitable, Iterable
from typing import Any, TypeVar

import nats
from nats.aio.client import Client as NATS
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from runtime import bus
from runtime.settings import get_settings

# What a caller of /healthz may wait for an answer, at most (a Kubernetes probe's default timeout is 1 s,
# docker compose's 30 s; 2 s leaves room for one slow service without a probe giving up on the gateway).
DEADLINE = 2.0
# What one service may take to answer its health request, inside that deadline.
SERVICE_TIMEOUT = 1.0

T = TypeVar("T")


class NoAnswer(Exception):
    """A check did not answer within its bound."""


async def bounded(awaitable: Awaitable[T], seconds: float, what: str) -> T:
    try:
        return await asyncio.wait_for(awaitable, seconds)
    except TimeoutError as exc:
        raise NoAnswer(f"{what}: no answer within {seconds:g} s") from exc


def subjects(service: str) -> tuple[str, str, str]:
    """Any instance of the service, this host's instance, and this process (`instance_subject`)."""
    return f"health.{service}", f"health.{service}.{socket.gethostname()}", instance_subject(service, os.getpid())


def instance_subject(service: str, pid: int) -> str:
    """One process's own health subject: a supervisor restarting replicas on one host in turn waits for
    the new process itself, not for whichever replica answers first."""
    return f"health.{service}.pid{pid}"


def reason_of(exc: BaseException) -> str:
    """A short reason for a health reply; never a URL (it may carry a password)."""
    if isinstance(exc, NoAnswer):
        return str(exc)
    if isinstance(exc, nats.errors.NoRespondersError):
        return "no instance is running (no responders)"
    if isinstance(exc, nats.errors.ConnectionClosedError | nats.errors.ConnectionReconnectingError):
        return "NATS is not connected"
    if isinstance(exc, nats.errors.TimeoutError | TimeoutError):
        return "no answer in time"
    return exc.__class__.__name__


async def ask(nc: NATS, service: str, timeout: float = SERVICE_TIMEOUT, *, local: bool = False,
              pid: int | None = None) -> dict[str, Any]:
    """The service's health reply over an open connection (that of the process `pid`, if given); raises
    when it does not answer in time."""
    subject = instance_subject(service, pid) if pid is not None else subjects(service)[1 if local else 0]

    async def request() -> dict[str, Any]:
        msg = await nc.request(subject, b"", timeout=timeout)
        reply = json.loads(msg.data)
        if not isinstance(reply, dict):
            raise ValueError("the health reply is not an object")
        return reply

    try:
        return await asyncio.wait_for(request(), timeout + 0.2)
    except TimeoutError as exc:  # nats-py's own timeout or the bound, whichever came first
        raise NoAnswer(f"no answer within {timeout:g} s") from exc


async def ask_all(nc: NATS, services: Iterable[str], timeout: float = SERVICE_TIMEOUT) -> dict[str, dict[str, Any]]:
    """Every service's reply, asked at once; one that does not answer is {"status": "down", "reason": ...}."""
    names = list(services)

    async def one(name: str) -> dict[str, Any]:
        try:
            return await ask(nc, name, timeout)
        except Exception as exc:
            return {"service": name, "status": "down", "reason": reason_of(exc)}

    return dict(zip(names, await asyncio.gather(*(one(n) for n in names)), strict=True))


async def database_ok(engine: AsyncEngine, timeout: float = SERVICE_TIMEOUT / 2) -> bool:
    async def select_one() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    try:
        await bounded(select_one(), timeout, "database")
    except Exception:
        return False
    return True


async def _quiet(_exc: Exception) -> None:
    """nats-py prints every failed connection attempt with a traceback unless given an error callback."""


async def check(nats_url: str, service: str, timeout: float = 3.0, *, local: bool = False) -> dict[str, object]:
    """Connect, ask, close: for a probe outside any service process. Answers or raises within 2 x timeout."""
    async def connect_and_ask() -> dict[str, object]:
        nc = await nats.connect(bus.servers(nats_url), connect_timeout=timeout, allow_reconnect=False,
                                max_reconnect_attempts=0,
                                error_cb=_quiet, inbox_prefix=bus.inbox_prefix(nats_url))
        try:
            return await ask(nc, service, timeout, local=local)
        finally:
            await nc.close()

    return await bounded(connect_and_ask(), 2 * timeout, f"health check of {service}")


def main() -> None:
    args = sys.argv[1:]
    local = "--local" in args
    # --alive: exit 0 when the service answers at all, whatever its status (a liveness probe: a service
    # waiting out a database outage is degraded, not dead, and restarting it would not help).
    alive = "--alive" in args
    names = [a for a in args if a not in ("--local", "--alive")]
    if len(names) != 1:
        raise SystemExit("usage: python -m runtime.health <service> [--local] [--alive]")
    try:
        result = asyncio.run(check(get_settings().nats_url, names[0], local=local))
    except Exception as exc:
        print(json.dumps({"service": names[0], "status": "down", "reason": reason_of(exc)}))
        raise SystemExit(1) from exc
    print(json.dumps(result))
    raise SystemExit(0 if alive or result.get("status") == "ok" else 1)


if __name__ == "__main__":
    main()
