"""The `partnerops` command."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from contracts.registry import STREAMS
from runtime import bus, bus_auth, compose_secrets, database_setup, deadletter, migrations, telemetry
from runtime.db import create_engine
from runtime.outbox import OutboxRelay
from runtime.settings import DATABASE_OWNERS, Settings, child_environment, get_settings


def _servers(settings: Settings) -> tuple[str, str]:
    """NATS and admin database URLs: from the environment, else from a running `partnerops up`."""
    nats_url, admin_url = settings.nats_url, settings.database_admin_url or settings.database_url
    runtime_file = settings.data_dir / "runtime.json"
    if (not nats_url or not admin_url) and runtime_file.exists():
        found = json.loads(runtime_file.read_text())
        nats_url = nats_url or found["nats_url"]
        admin_url = admin_url or found["database_admin_url"]
    if not nats_url:
        raise SystemExit("no NATS server: set NATS_URL or start the platform with `partnerops up`")
    return nats_url, admin_url


async def _deadletters(args: argparse.Namespace, settings: Settings) -> None:
    nats_url, _ = _servers(settings)
    nc = await bus.connect(nats_url, name="cli", attempts=3)
    js = nc.jetstream()
    try:
        if args.action == "list":
            letters = await deadletter.list_all(js, consumer=args.consumer)
            if not letters:
                print("no dead letters")
            for d in letters:
                print(f"{d.seq:>8}  {d.failed_at[:19]}  {d.consumer}  {d.subject}  deliveries={d.deliveries}")
                print(f"          reason: {d.reason}")
                if args.verbose:
                    print(f"          body: {d.data[:500].decode(errors='replace')}")
        elif args.action == "replay":
            refused: list[str] = []
            if args.all:
                print(f"replayed {await deadletter.replay_all(js, consumer=args.consumer, refused=refused)}"
                      " dead letters")
            elif args.seq:
                for seq in args.seq:
                    try:
                        letter = await deadletter.replay(js, seq)
                    except ValueError as exc:
                        refused.append(str(exc))
                        continue
                    print(f"replayed {seq} to {letter.subject}")
            else:
                raise SystemExit("replay needs sequence numbers or --all")
            for reason in refused:
                print(f"refused: {reason}", file=sys.stderr)
            if refused:
                raise SystemExit(1)
    finally:
        await nc.close()


async def _republish(args: argparse.Namespace, settings: Settings) -> None:
    nats_url, admin_url = _servers(settings)
    if not admin_url:
        raise SystemExit("no database: set DATABASE_ADMIN_URL or start the platform with `partnerops up`")
    password = database_setup.role_passwords([args.service], settings.data_dir)[args.service]
    url = database_setup.role_url(admin_url, args.service, password)
    engine = create_engine(url, trace_sql=False)
    nc = await bus.connect(nats_url, name="cli", attempts=3)
    try:
        relay = OutboxRelay(engine=engine, dsn="", schema=args.service, js=nc.jetstream())
        since = datetime.fromisoformat(args.since) if args.since else None
        until = datetime.fromisoformat(args.until) if args.until else None
        print(f"re-published {await relay.republish(since=since, until=until)} events from {args.service}")
    finally:
        await nc.close()
        await engine.dispose()


def _migrate(settings: Settings) -> None:
    admin_url = settings.database_admin_url or settings.database_url
    if not admin_url:
        raise SystemExit("set DATABASE_ADMIN_URL (an owner login) to migrate")
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

    asyncio.run(run())
    print("migrated: " + ", ".join(DATABASE_OWNERS) + (" (and the streams)" if settings.nats_url else ""))


def _backup(directory: Path, settings: Settings) -> None:
    from runtime import backup

    nats_url, admin_url = _servers(settings)
    if not admin_url:
        raise SystemExit("no database: set DATABASE_ADMIN_URL or start the platform with `partnerops up`")
    try:
        manifest = asyncio.run(backup.backup(admin_url, nats_url, directory))
    except backup.BackupError as exc:
        raise SystemExit(f"backup failed: {exc}") from exc
    streams = ", ".join(f"{name} ({count} messages)" for name, count in manifest.streams.items())
    print(f"backed up to {directory}: schemas {', '.join(manifest.schemas)}; streams {streams}")


def _restore(directory: Path, settings: Settings, nats_nodes: int) -> None:
    """Into the given servers (their services stopped), or into the embedded ones of DATA_DIR, started for
    the restore and stopped after it (`partnerops up` must not be running)."""
    from runtime import backup
    from runtime.supervisor import Platform, lock_data_dir

    passwords = database_setup.role_passwords(
        DATABASE_OWNERS, None if settings.environment == "production" else settings.data_dir)

    async def run() -> dict[str, int]:
        if settings.nats_url and (settings.database_admin_url or settings.database_url):
            return await backup.restore(settings.database_admin_url or settings.database_url, settings.nats_url,
                                        directory, passwords)
        lock = lock_data_dir(settings.data_dir)  # refuses while `partnerops up` runs on it
        platform = Platform(settings, nats_nodes=nats_nodes)
        try:
            await platform.start()
            await platform.prepare()
            return await backup.restore(platform.admin_url, platform.nats_url, directory, passwords)
        finally:
            platform.stop()
            os.close(lock)

    try:
        republished = asyncio.run(run())
    except backup.BackupError as exc:
        raise SystemExit(f"restore failed: {exc}") from exc
    again = ", ".join(f"{schema} {count}" for schema, count in republished.items())
    print(f"restored from {directory}; events published again since the stream snapshots: {again}. Start the "
          "services: they read the restored streams from the start (the restored inboxes skip what is applied).")


def _secrets(directory: Path) -> None:
    """The secret files docker compose mounts (runtime/compose_secrets.py): missing ones are made,
    existing ones kept, the NATS users file rewritten from them. Values are never printed."""
    created = compose_secrets.write(directory)
    kept = [n for n in compose_secrets.names() if n not in created]
    print(f"{directory}/ (0700): made {', '.join(created) or 'nothing'}"
          + (f"; kept {len(kept)} existing files (rewrote {compose_secrets.NATS_USERS})" if kept else ""))


def _gateway(command: str, settings: Settings) -> int:
    nats_url, admin_url = _servers(settings)
    from runtime.supervisor import secret_key

    secret = secret_key(settings)
    password = database_setup.role_passwords(["gateway"], settings.data_dir)["gateway"]
    env = child_environment({"NATS_URL": nats_url, "SECRET_KEY": secret,
                             "DATABASE_URL": database_setup.role_url(admin_url, "gateway", password)})
    return subprocess.call([sys.executable, "-m", "gateway", command], env=env)


def _pipeline_csv(verb: str, rest: list[str], settings: Settings) -> int:
    # The pipeline owns its CSV format; runtime only finds the bus and hands over.
    env = dict(os.environ)
    if not {"-h", "--help"} & set(rest):
        env = child_environment({"NATS_URL": _servers(settings)[0]})
    return subprocess.call([sys.executable, "-m", "services.pipeline.csv_cli", verb, *rest], env=env)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="partnerops", description="Run and operate PartnerOps.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_up = sub.add_parser("up", help="start the whole platform (embedded NATS and Postgres unless given)")
    p_up.add_argument("--no-seed", action="store_true", help="do not load demo data")
    p_up.add_argument("--port", type=int, help="gateway port (default 8000 or GATEWAY_PORT)")
    p_up.add_argument("--replicas", type=int, default=1, choices=range(1, 5), metavar="N",
                      help="processes of each service and of the gateway (default 1; docs/deploy.md)")
    p_up.add_argument("--nats-nodes", type=int, default=1, choices=(1, 3),
                      help="embedded NATS servers: 1, or a cluster of 3 with every stream R3 (default 1)")
    sub.add_parser("migrate", help="create roles and schemas, run every service's migrations, create the streams")
    p_secrets = sub.add_parser("secrets", help="write the secret files docker compose mounts (missing ones are made)")
    p_secrets.add_argument("directory", nargs="?", type=Path, default=compose_secrets.DIRECTORY,
                           help="where (default: ./secrets, beside docker-compose.yml)")
    sub.add_parser("nats-users", help="print deploy/nats-users.conf (the NATS users and permissions)")
    p_dl = sub.add_parser("deadletters", help="list or replay dead letters")
    p_dl.add_argument("action", choices=["list", "replay"])
    p_dl.add_argument("seq", nargs="*", type=int, help="dead-letter sequence numbers to replay")
    p_dl.add_argument("--all", action="store_true", help="replay every dead letter (of --consumer)")
    p_dl.add_argument("--consumer", help="only this consumer's dead letters")
    p_dl.add_argument("-v", "--verbose", action="store_true", help="show message bodies")
    p_rp = sub.add_parser("republish", help="publish a service's stored outbox events again")
    p_rp.add_argument("service", choices=list(DATABASE_OWNERS))
    p_rp.add_argument("--since", help="ISO time; only events created at or after it")
    p_rp.add_argument("--until", help="ISO time; only events created before it")
    p_backup = sub.add_parser("backup", help="back up every schema (pg_dump) and every stream (JetStream snapshots)")
    p_backup.add_argument("directory", type=Path, help="a new directory for the backup")
    p_restore = sub.add_parser("restore", help="restore a backup (services stopped; docs/deploy.md)")
    p_restore.add_argument("directory", type=Path, help="a directory `partnerops backup` wrote")
    p_restore.add_argument("--nats-nodes", type=int, default=1, choices=(1, 3),
                           help="the embedded NATS the platform runs with (as given to `up`)")
    sub.add_parser("rebuild-read-models", help="rebuild the gateway's KPI read models by replaying streams")
    sub.add_parser("seed", help="load the demo data into a running platform")
    for verb in ("import", "export"):
        p_csv = sub.add_parser(verb, add_help=False, help=f"{verb} partners or opportunities as CSV "
                               f"(`partnerops {verb} partners ...`; see services/pipeline/csv_cli.py)")
        p_csv.add_argument("rest", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)

    settings = get_settings()
    if args.cmd == "up":
        telemetry.setup("supervisor", fmt="text")
        if args.port:
            settings = settings.model_copy(update={"gateway_port": args.port})
        from runtime.supervisor import up

        raise SystemExit(asyncio.run(up(settings, seed=not args.no_seed, replicas=args.replicas,
                                        nats_nodes=args.nats_nodes)))
    telemetry.setup("cli", fmt="text", level="WARNING")
    if args.cmd == "migrate":
        _migrate(settings)
    elif args.cmd == "secrets":
        _secrets(args.directory)
    elif args.cmd == "nats-users":
        print(bus_auth.deploy_users_conf(), end="")
    elif args.cmd == "deadletters":
        asyncio.run(_deadletters(args, settings))
    elif args.cmd == "republish":
        asyncio.run(_republish(args, settings))
    elif args.cmd == "backup":
        _backup(args.directory, settings)
    elif args.cmd == "restore":
        _restore(args.directory, settings, args.nats_nodes)
    elif args.cmd == "rebuild-read-models":
        raise SystemExit(_gateway("rebuild", settings))
    elif args.cmd == "seed":
        raise SystemExit(_gateway("seed", settings))
    elif args.cmd in ("import", "export"):
        raise SystemExit(_pipeline_csv(args.cmd, args.rest, settings))


if __name__ == "__main__":
    main()
