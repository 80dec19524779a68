"""`python -m runtime.health <service>`: exit 0 when the service answers its health check healthy.
Used by compose health checks and the supervisor."""

from __future__ import annotations

import asyncio
import json
import sys

import nats

from runtime.settings import get_settings


async def check(nats_url: str, service: str, timeout: float = 3.0) -> dict[str, object]:
    nc = await nats.connect(nats_url, connect_timeout=timeout, max_reconnect_attempts=0)
    try:
        msg = await nc.request(f"health.{service}", b"", timeout=timeout)
        return json.loads(msg.data)
    finally:
        await nc.close()


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m runtime.health <service>")
    try:
        result = asyncio.run(check(get_settings().nats_url, sys.argv[1]))
    except Exception as exc:
        print(json.dumps({"service": sys.argv[1], "status": "down", "error": repr(exc)}))
        raise SystemExit(1) from exc
    print(json.dumps(result))
    raise SystemExit(0 if result.get("status") == "ok" else 1)


if __name__ == "__main__":
    main()
