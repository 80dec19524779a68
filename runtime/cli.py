"""The `partnerops` command (Click): every command an operator runs, in one place.

Commands that belong to one part of the platform (`create-admin`, `seed`, `import` ...) are declared with
that part in runtime/topology.py and run by its own module (`python -m gateway create-admin ...`), given
the platform it finds: the servers named in the environment, else those of a running `partnerops up`
(its <data_dir>/runtime.json), with that part's own database login and NATS user."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import click

from runtime import bus_auth, compose_secrets, telemetry
from runtime.settings import Settings, child_environment, get_settings
from runtime.topology import COMMANDS, DATABASE_OWNERS, Delegated


def _servers(settings: Settings) -> tuple[str, str]:
    """NATS (the operator's login) and admin database URLs: from the environment, else from a running
    `partnerops up`."""
    nats_url, admin_url = settings.nats_url, settings.database_admin_url or settings.database_url
    runtime_file = settings.data_dir / "runtime.json"
    if (not nats_url or not admin_url) and runtime_file.exists():
        found = json.loads(runtime_file.read_text())
        nats_url = nats_url or found["nats_url"]
        admin_url = admin_url or found["database_admin_url"]
    if not nats_url:
        raise click.ClickException(f"no running platform found (no {runtime_file}): start it with `partnerops up` "
                                   "(same DATA_DIR), or set NATS_URL and DATABASE_ADMIN_URL")
    return nats_url, admin_url


def _nats_url_for(user: str, settings: Settings) -> str:
    """`user`'s login on the platform's NATS server: a given NATS_URL as it is (as `up` gives it to every
    process); on a `partnerops up` with its own server, the user's password kept in its data directory."""
    operator_url, _ = _servers(settings)
    runtime_file = settings.data_dir / "runtime.json"
    per_user = (not settings.nats_url and runtime_file.exists()
                and json.loads(runtime_file.read_text()).get("nats_users"))
    if not per_user or user == bus_auth.OPERATOR:
        return operator_url
    users_file = settings.data_dir / "nats-users.json"
    if not users_file.exists():
        raise click.ClickException(f"no NATS password for {user} in {users_file}; set NATS_URL")
    return bus_auth.url_with_user(operator_url, user, json.loads(users_file.read_text())[user])


def _database_url_for(owner: str, settings: Settings) -> str:
    from runtime import database_setup

    _, admin_url = _servers(settings)
    if not admin_url:
        raise click.ClickException("no database: set DATABASE_ADMIN_URL or start the platform with `partnerops up`")
    password = database_setup.role_passwords([owner], settings.data_dir)[owner]
    return database_setup.role_url(admin_url, owner, password)


def _run(coro: object) -> None:
    asyncio.run(coro)  # type: ignore[arg-type]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Run and operate PartnerOps."""


@cli.command()
@click.option("--no-seed", is_flag=True, help="do not load demo data")
@click.option("--port", type=int, help="gateway port (default 8000 or GATEWAY_PORT)")
@click.option("--replicas", type=click.IntRange(1, 4), default=1, metavar="N",
              help="processes of each service and of the gateway (default 1; docs/deploy.md)")
@click.option("--nats-nodes", type=click.Choice(["1", "3"]), default="1",
              help="embedded NATS servers: 1, or a cluster of 3 with every stream R3 (default 1)")
def up(no_seed: bool, port: int | None, replicas: int, nats_nodes: str) -> None:
    """Start the whole platform (embedded NATS and Postgres unless given)."""
    settings = get_settings()
    telemetry.setup("supervisor", fmt="text")
    if port:
        settings = settings.model_copy(update={"gateway_port": port})
    from runtime.supervisor import up as run_up

    raise SystemExit(asyncio.run(run_up(settings, seed=not no_seed, replicas=replicas, nats_nodes=int(nats_nodes))))


@cli.command()
def migrate() -> None:
    """Create roles and schemas, run every owner's migrations, create the streams."""
    # Alembic, the drivers and the bus client load for the commands that use them, not for every `--help`.
    from contracts.registry import STREAMS
    from runtime import bus, database_setup, migrations

    settings = get_settings()
    admin_url = settings.database_admin_url or settings.database_url
    if not admin_url:
        raise click.ClickException("set DATABASE_ADMIN_URL (an owner login) to migrate")
    # In production the passwords come from DB_PASSWORD_* only (a job has no data directory to keep them).
    passwords = database_setup.role_passwords(
        DATABASE_OWNERS, None if settings.environment == "production" else settings.data_dir)

    async def run() -> None:
        await database_setup.setup_roles_and_schemas(admin_url, passwords)
        for owner in DATABASE_OWNERS:
            await migrations.upgrade_async(owner, database_setup.role_url(admin_url, owner, passwords[owner]))
        if settings.nats_url:
            # As the operator: a service may create only the streams it produces (runtime/bus_auth.py).
            nc = await bus.connect(settings.nats_url, name="cli", attempts=10)
            try:
                await bus.ensure_streams(nc.jetstream(), list(STREAMS))
            finally:
                await nc.close()

    _run(run())
    click.echo("migrated: " + ", ".join(DATABASE_OWNERS) + (" (and the streams)" if settings.nats_url else ""))


@cli.command()
@click.argument("directory", type=click.Path(path_type=Path))
def backup(directory: Path) -> None:
    """Back up every schema (pg_dump) and every stream (JetStream snapshots) into a new DIRECTORY."""
    from runtime import backup as backups

    settings = get_settings()
    nats_url, admin_url = _servers(settings)
    if not admin_url:
        raise click.ClickException("no database: set DATABASE_ADMIN_URL or start the platform with `partnerops up`")
    try:
        manifest = asyncio.run(backups.backup(admin_url, nats_url, directory))
    except backups.BackupError as exc:
        raise click.ClickException(f"backup failed: {exc}") from exc
    streams = ", ".join(f"{name} ({count} messages)" for name, count in manifest.streams.items())
    click.echo(f"backed up to {directory}: schemas {', '.join(manifest.schemas)}; streams {streams}")


@cli.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--nats-nodes", type=click.Choice(["1", "3"]), default="1",
              help="the embedded NATS the platform runs with (as given to `up`)")
def restore(directory: Path, nats_nodes: str) -> None:
    """Restore a backup (services stopped; docs/deploy.md).

    Into the given servers (their services stopped), or into the embedded ones of DATA_DIR, started for the
    restore and stopped after it (`partnerops up` must not be running)."""
    from runtime import backup as backups
    from runtime import database_setup
    from runtime.supervisor import Platform, lock_data_dir

    settings = get_settings()
    passwords = database_setup.role_passwords(
        DATABASE_OWNERS, None if settings.environment == "production" else settings.data_dir)

    async def run() -> dict[str, int]:
        if settings.nats_url and (settings.database_admin_url or settings.database_url):
            return await backups.restore(settings.database_admin_url or settings.database_url, settings.nats_url,
                                         directory, passwords)
        lock = lock_data_dir(settings.data_dir)  # refuses while `partnerops up` runs on it
        platform = Platform(settings, nats_nodes=int(nats_nodes))
        try:
            await platform.start()
            await platform.prepare()
            return await backups.restore(platform.admin_url, platform.nats_url, directory, passwords)
        finally:
            platform.stop()
            os.close(lock)

    try:
        republished = asyncio.run(run())
    except backups.BackupError as exc:
        raise click.ClickException(f"restore failed: {exc}") from exc
    again = ", ".join(f"{schema} {count}" for schema, count in republished.items())
    click.echo(f"restored from {directory}; events published again since the stream snapshots: {again}. Start the "
               "services: they read the restored streams from the start (the restored inboxes skip what is applied).")


@cli.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path),
                default=compose_secrets.DIRECTORY)
def secrets(directory: Path) -> None:
    """Write the secret files docker compose mounts (missing ones are made; default ./secrets).

    Existing files are kept and the NATS users file rewritten from them; values are never printed."""
    created = compose_secrets.write(directory)
    kept = [n for n in compose_secrets.names() if n not in created]
    click.echo(f"{directory}/ (0700): made {', '.join(created) or 'nothing'}"
               + (f"; kept {len(kept)} existing files (rewrote {compose_secrets.NATS_USERS})" if kept else ""))


@cli.command()
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="write it to FILE (gateway/static/asyncapi.json is the one the gateway serves) instead of stdout")
def asyncapi(output: Path | None) -> None:
    """The platform's AsyncAPI document (JSON), from every part's subscribers and publishers."""
    from runtime import asyncapi as spec  # imports every part's handlers: only for this command

    if output is None:
        click.echo(spec.text(), nl=False)
    else:
        output.write_text(spec.text(), encoding="utf-8")


@cli.command("nats-users")
def nats_users() -> None:
    """Print deploy/nats-users.conf (the NATS users and permissions)."""
    click.echo(bus_auth.deploy_users_conf(), nl=False)


@cli.group()
def deadletters() -> None:
    """List or replay dead letters."""


@deadletters.command("list")
@click.option("--consumer", help="only this consumer's dead letters")
@click.option("-v", "--verbose", is_flag=True, help="show message bodies")
def deadletters_list(consumer: str | None, verbose: bool) -> None:
    """What failed and why."""
    from runtime import bus, deadletter

    async def run() -> None:
        nc = await bus.connect(_servers(get_settings())[0], name="cli", attempts=3)
        try:
            letters = await deadletter.list_all(nc.jetstream(), consumer=consumer)
        finally:
            await nc.close()
        if not letters:
            click.echo("no dead letters")
        for d in letters:
            click.echo(f"{d.seq:>8}  {d.failed_at[:19]}  {d.consumer}  {d.subject}  deliveries={d.deliveries}")
            click.echo(f"          reason: {d.reason}")
            if verbose:
                click.echo(f"          body: {d.data[:500].decode(errors='replace')}")

    _run(run())


@deadletters.command("replay")
@click.argument("seq", nargs=-1, type=int)
@click.option("--all", "everything", is_flag=True, help="replay every dead letter (of --consumer)")
@click.option("--consumer", help="only this consumer's dead letters")
def deadletters_replay(seq: tuple[int, ...], everything: bool, consumer: str | None) -> None:
    """Publish dead letters again (by sequence number, or --all) after a fix."""
    if not everything and not seq:
        raise click.UsageError("replay needs sequence numbers or --all")
    from runtime import bus, deadletter
    refused: list[str] = []

    async def run() -> None:
        nc = await bus.connect(_servers(get_settings())[0], name="cli", attempts=3)
        js = nc.jetstream()
        try:
            if everything:
                click.echo(f"replayed {await deadletter.replay_all(js, consumer=consumer, refused=refused)}"
                           " dead letters")
                return
            for one in seq:
                try:
                    letter = await deadletter.replay(js, one)
                except ValueError as exc:
                    refused.append(str(exc))
                    continue
                click.echo(f"replayed {one} to {letter.subject}")
        finally:
            await nc.close()

    _run(run())
    for reason in refused:
        click.echo(f"refused: {reason}", err=True)
    if refused:
        raise SystemExit(1)


def _iso_time(_ctx: click.Context, _param: click.Parameter, value: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO time (2026-11-20T00:00:00+00:00)") from None


@cli.command()
@click.argument("service", type=click.Choice(DATABASE_OWNERS))
@click.option("--since", callback=_iso_time, help="ISO time; only events created at or after it")
@click.option("--until", callback=_iso_time, help="ISO time; only events created before it")
def republish(service: str, since: datetime | None, until: datetime | None) -> None:
    """Publish a service's stored outbox events again."""
    from runtime import bus
    from runtime.db import create_engine
    from runtime.outbox import OutboxRelay

    settings = get_settings()
    url = _database_url_for(service, settings)
    nats_url = _servers(settings)[0]

    async def run() -> None:
        engine = create_engine(url, trace_sql=False)
        nc = await bus.connect(nats_url, name="cli", attempts=3)
        try:
            relay = OutboxRelay(engine=engine, dsn="", schema=service, js=nc.jetstream())
            click.echo(f"re-published {await relay.republish(since=since, until=until)} events from {service}")
        finally:
            await nc.close()
            await engine.dispose()

    _run(run())


PROG_VARIABLE = "PARTNEROPS_PROG"


def run_module_cli(group: click.Group, module: str, argv: list[str] | None = None) -> None:
    """The `python -m <module>` of a part (its commands in topology.py): named in its help and errors as
    `partnerops <command>` when `partnerops` runs it."""
    group.context_settings.setdefault("help_option_names", ["-h", "--help"])
    group.main(args=argv, prog_name=os.environ.get(PROG_VARIABLE, f"python -m {module}"))


def _delegate(command: Delegated, rest: list[str]) -> int:
    """Run a part's own command with its logins on the platform found (help needs no platform)."""
    if command.group:
        argv, prog = [sys.executable, "-m", command.module, *rest], f"partnerops {command.name}"
    else:
        argv, prog = [sys.executable, "-m", command.module, command.name, *rest], "partnerops"
    if {"-h", "--help"} & set(rest):
        return subprocess.call(argv, env=child_environment({PROG_VARIABLE: prog}))
    settings = get_settings()
    env = {"NATS_URL": _nats_url_for(command.nats_user, settings), PROG_VARIABLE: prog}
    if command.database:
        from runtime.supervisor import secret_key

        env |= {"DATABASE_URL": _database_url_for(command.database, settings), "SECRET_KEY": secret_key(settings)}
    return subprocess.call(argv, env=child_environment(env))


def _delegated_command(command: Delegated) -> click.Command:
    def run(rest: tuple[str, ...]) -> None:
        raise SystemExit(_delegate(command, list(rest)))

    return click.Command(
        command.name, callback=run, short_help=command.help,
        help=f"{command.help}. Its options: `partnerops {command.name} --help` (run by python -m {command.module}, "
             "given the platform's servers).",
        params=[click.Argument(["rest"], nargs=-1, type=click.UNPROCESSED)], add_help_option=False,
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True})


for _command in COMMANDS.values():
    cli.add_command(_delegated_command(_command))


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] != ["up"]:  # `up` logs as the supervisor
        telemetry.setup("cli", fmt="text", level="WARNING")
    cli.main(args=args, prog_name="partnerops")


if __name__ == "__main__":
    main()
