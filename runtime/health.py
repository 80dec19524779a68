"""`python -m runtime.health <service> [--local]`: exit 0 when the service answers its health check
healthy. With --local only the instance on this host answers (a container's health check must not be
answered by another replica of the same service)."""

from __future__ import annotations

import asyncio
import json
import socket
import sys

import nats

from runtime.settings import get_settings


def subjects(service: str) -> tuple[str, str]:
    """Any instance of the service, and this host's instance."""
    return f"health.{service}", f"health.{service}.{socket.gethostname()}"


async def check(nats_url: str, service: str, timeout: float = 3.0, *, local: bool = False) -> dict[str, object]:
    nc = await nats.connect(nats_url, connect_timeout=timeout, max_reconnect_attempts=0)
    try:
        msg = await nc.request(subjects(service)[1 if local else 0], b"", timeout=timeout)
        return json.loads(msg.data)
    finally:
        await nc.close()


def main() -> None:
    args = sys.argv[1:]
    local = "--local" in args
    names = [a for a in args if a != "--local"]
    if len(names) != 1:
        raise SystemExit("usage: python -m runtime.health <service> [--local]")
    try:
        result = asyncio.run(check(get_settings().nats_url, names[0], local=local))
    except Exception as exc:
        print(json.dumps({"service": names[0], "status": "down", "error": repr(exc)}))
        raise SystemExit(1) from exc
    print(json.dumps(result))
    raise SystemExit(0 if result.get("status") == "ok" else 1)


if __name__ == "__main__":
    main()
