"""`python -m gateway serve|rebuild-read-models|seed|create-admin|owners-to-ids` (`partnerops <command>`
runs the last four against the running platform; runtime/topology.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
from collections.abc import AsyncIterator
from typing import Any

import click
import uvicorn

from runtime import telemetry
from runtime.cli import run_module_cli
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


def frozen_once_started(app: Any) -> None:
    """Freeze what the app's start-up (its lifespan: the engine, the broker and its subscribers, the
    consumers) made too, and collect less often from then on (runtime.service: `freeze_start_up`,
    `collect_less_often`): left in the collector's reach, it was the ~23,000 objects every full
    collection scanned again (10-18 ms each under bench.kpi_read, about one a second)."""
    from runtime.service import collect_less_often, freeze_start_up

    started_up = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(served: Any) -> AsyncIterator[Any]:
        async with started_up(served) as state:
            freeze_start_up()
            collect_less_often()
            yield state

    app.router.lifespan_context = lifespan


@click.group()
def cli() -> None:
    """The gateway: the HTTP edge and the commands that act on its own data."""


def _settings(needs_database: bool = True) -> Settings:
    settings = get_settings()
    telemetry.setup("gateway", level=settings.log_level, fmt=settings.log_format)
    if needs_database and not settings.database_url:
        command = click.get_current_context().info_name
        raise click.ClickException(f"DATABASE_URL is not set: run `partnerops {command}`, which finds the running "
                                   "platform and uses the gateway's own database login")
    return settings


@cli.command("serve")
def serve() -> None:
    """Serve HTTP on GATEWAY_HOST:GATEWAY_PORT."""
    settings = _settings(needs_database=False)
    from gateway.app import create_app
    from runtime.service import freeze_start_up

    app = create_app(settings, exit_on_fatal=True)
    freeze_start_up()
    frozen_once_started(app)
    server = uvicorn.Server(uvicorn_config(app, settings))
    inherited = os.environ.get("GATEWAY_FD")
    if inherited:  # replicas (`partnerops up --replicas 2`) share the supervisor's listening socket
        server.run(sockets=[socket.socket(fileno=int(inherited))])
    else:
        server.run()
    if getattr(app.state, "fatal", None):
        raise SystemExit(1)  # NATS closed for good or a consumer died: let the supervisor restart us


@cli.command("rebuild-read-models")
def rebuild_read_models() -> None:
    """Empty the KPI read models and replay the streams into them."""
    settings = _settings()
    from gateway.rebuild import rebuild

    click.echo(json.dumps(asyncio.run(rebuild(settings))))


@cli.command("create-admin")
@click.option("--email", required=True, help="their sign-in")
@click.option("--name", default="", help="shown in the UI (default: the email)")
@click.option("--password", help="omit to be asked (or to generate one with --generate)")
@click.option("--generate", is_flag=True, help="generate a password and print it once")
def create_admin(email: str, name: str, password: str | None, generate: bool) -> None:
    """Create an admin user (the first sign-in)."""
    settings = _settings()
    from gateway.users import create_admin as create

    create(settings, email=email, name=name, password=password, generate=generate)


@cli.command("owners-to-ids")
def owners_to_ids() -> None:
    """Give partners and deals owned by an old handle the id of the team member it names."""
    settings = _settings()
    from gateway.owners_to_ids import main as run

    click.echo(json.dumps(run(settings)))


@cli.command("seed")
def seed() -> None:
    """Load the demo data (as the operator: it plays billing and the sync workers too)."""
    settings = _settings()
    from gateway.seed import seed as run

    asyncio.run(run(settings))


def main(argv: list[str] | None = None) -> None:
    run_module_cli(cli, "gateway", argv)


if __name__ == "__main__":
    main()
