"""`python -m gateway [serve|rebuild|seed|create-admin|owners-to-ids]`."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from typing import Any

import uvicorn

from runtime import telemetry
from runtime.settings import Settings, get_settings


def uvicorn_config(app: Any, settings: Settings, **overrides: Any) -> uvicorn.Config:
    """How the gateway is served. X-Forwarded-For/-Proto are believed only from the proxies named in
    GATEWAY_FORWARDED_ALLOW_IPS (none by default), never from uvicorn's environment default, so a
    client cannot choose the address that sign-in throttling counts (docs/security.md)."""
    options: dict[str, Any] = {
        "host": settings.gateway_host, "port": settings.gateway_port, "log_config": None, "access_log": False,
        "proxy_headers": bool(settings.gateway_forwarded_allow_ips),
        "forwarded_allow_ips": settings.gateway_forwarded_allow_ips or "",
        **overrides,
    }
    return uvicorn.Config(app, **options)


def main() -> None:
    settings = get_settings()
    telemetry.setup("gateway", level=settings.log_level, fmt=settings.log_format)
    cmd = sys.argv[1] if len(sys.argv) > 1 else "serve"
    if cmd == "serve":
        from gateway.app import create_app

        app = create_app(settings, exit_on_fatal=True)
        server = uvicorn.Server(uvicorn_config(app, settings))
        inherited = os.environ.get("GATEWAY_FD")
        if inherited:  # replicas (`partnerops up --replicas 2`) share the supervisor's listening socket
            server.run(sockets=[socket.socket(fileno=int(inherited))])
        else:
            server.run()
        if getattr(app.state, "fatal", None):
            raise SystemExit(1)  # NATS closed for good or a consumer died: let the supervisor restart us
    elif cmd == "rebuild":
        from gateway.rebuild import rebuild

        print(json.dumps(asyncio.run(rebuild(settings))))
    elif cmd == "create-admin":
        from gateway.users import create_admin_cli

        create_admin_cli(settings, sys.argv[2:])
    elif cmd == "owners-to-ids":
        from gateway.owners_to_ids import main as owners_to_ids

        print(json.dumps(owners_to_ids(settings)))
    elif cmd == "seed":
        from gateway.seed import seed

        asyncio.run(seed(settings))
    else:
        raise SystemExit(f"unknown command {cmd!r}; use serve, rebuild, seed, create-admin or owners-to-ids")


if __name__ == "__main__":
    main()
