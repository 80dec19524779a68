"""`python -m gateway [serve|rebuild|seed|create-admin]`."""

from __future__ import annotations

import asyncio
import json
import sys

import uvicorn

from runtime import telemetry
from runtime.settings import get_settings


def main() -> None:
    settings = get_settings()
    telemetry.setup("gateway", level=settings.log_level, fmt=settings.log_format)
    cmd = sys.argv[1] if len(sys.argv) > 1 else "serve"
    if cmd == "serve":
        from gateway.app import create_app

        uvicorn.run(create_app(settings), host=settings.gateway_host, port=settings.gateway_port,
                    log_config=None, access_log=False)
    elif cmd == "rebuild":
        from gateway.rebuild import rebuild

        print(json.dumps(asyncio.run(rebuild(settings))))
    elif cmd == "create-admin":
        from gateway.users import create_admin_cli

        create_admin_cli(settings, sys.argv[2:])
    elif cmd == "seed":
        from gateway.seed import seed

        asyncio.run(seed(settings))
    else:
        raise SystemExit(f"unknown command {cmd!r}; use serve, rebuild, seed or create-admin")


if __name__ == "__main__":
    main()
