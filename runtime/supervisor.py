"""`partnerops up`: the whole platform on one machine.

Starts embedded NATS and Postgres unless NATS_URL / DATABASE_URL point at servers, prepares the
database (roles, schemas, migrations) and the streams, runs every service and the gateway as
separate processes with prefixed logs, seeds demo data once, and shuts all of it down on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import json
import logging
import os
import secrets
import signal
import socket
import sys
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from contracts.registry import STREAMS
from runtime import bus, bus_auth, credentials, database_setup, health, migrations
from runtime.embedded import EmbeddedNats, EmbeddedPostgres, NatsCluster, free_port
from runtime.settings import FILE_SUFFIX, URL_PASSWORD_SUFFIX, Settings, child_environment, secret_environment
from runtime.topology import DATABASE_OWNERS, PROCESSES

DATABASE_NAME = "partnerops"
# AWS credentials reach the AWS worker alone.
SECRET_PREFIXES = ("DB_PASSWORD_", "NATS_PASSWORD_", "AWS_")


def _die_with_parent() -> None:
    # If the supervisor is killed outright, its children must not linger.
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _operator_only(name: str) -> bool:
    """A secret of the operator's that no child process gets (nor the file variable naming it)."""
    names = {name, *(name[: -len(suffix)] for suffix in (FILE_SUFFIX, URL_PASSWORD_SUFFIX) if name.endswith(suffix))}
    return any(n in ("DATABASE_ADMIN_URL", "POSTGRES_PASSWORD") or n.startswith(SECRET_PREFIXES) for n in names)


def secret_key(settings: Settings) -> str:
    if secret_environment().get("SECRET_KEY"):
        return settings.secret_key
    path = settings.data_dir / "secret-key"
    if not path.exists():
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        credentials.write_private(path, secrets.token_urlsafe(32))
    return path.read_text().strip()


@dataclass
class Platform:
    """The servers and database a run uses, embedded or given."""

    settings: Settings
    nats_url: str = ""
    admin_url: str = ""
    secret: str = ""
    db_passwords: dict[str, str] = field(default_factory=dict)
    nats: EmbeddedNats | NatsCluster | None = None
    postgres: EmbeddedPostgres | None = None
    # Embedded NATS nodes: 1 (a single server, the default) or 3 (a cluster on loopback, streams R3).
    nats_nodes: int = 1

    @property
    def stream_replicas(self) -> int:
        return self.nats.replicas if isinstance(self.nats, NatsCluster) else self.settings.bus_stream_replicas

    async def start(self) -> Platform:
        s = self.settings
        self.secret = secret_key(s)
        self.db_passwords = database_setup.role_passwords(DATABASE_OWNERS, s.data_dir)
        if s.nats_url:
            self.nats_url = s.nats_url
        elif self.nats_nodes > 1:
            users = bus_auth.nats_credentials(s.data_dir)
            cluster = NatsCluster(base_dir=(s.data_dir / "nats-cluster").resolve(), size=self.nats_nodes, users=users)
            self.nats = await asyncio.to_thread(cluster.start)
            self.nats_url = self.nats.url
        else:
            users = bus_auth.nats_credentials(s.data_dir)
            self.nats = EmbeddedNats(store_dir=(s.data_dir / "nats").resolve(), users=users).start()
            self.nats_url = self.nats.url
        if s.database_admin_url or s.database_url:
            self.admin_url = s.database_admin_url or s.database_url
        else:
            self.postgres = EmbeddedPostgres(base_dir=(s.data_dir / "postgres").resolve()).start()
            self.admin_url = await database_setup.create_database(self.postgres.url(), DATABASE_NAME)
        return self

    async def prepare(self) -> None:
        await database_setup.setup_roles_and_schemas(self.admin_url, self.db_passwords)
        for owner in DATABASE_OWNERS:
            await migrations.upgrade_async(owner, self.role_url(owner))
        nc = await bus.connect(self.nats_url, name="supervisor")
        try:
            await bus.ensure_streams(nc.jetstream(), list(STREAMS), replicas=self.stream_replicas)
        finally:
            await nc.close()

    def role_url(self, owner: str) -> str:
        return database_setup.role_url(self.admin_url, owner, self.db_passwords[owner])

    def nats_url_for(self, component: str) -> str:
        """The component's own login on the embedded server; a given NATS_URL is shared as given."""
        return self.nats.url_for(component) if self.nats else self.nats_url

    def env_for(self, owner: str, extra: dict[str, str] | None = None, *,
                nats_user: str | None = None) -> dict[str, str]:
        env = child_environment({
            "DATABASE_URL": self.role_url(owner),
            "NATS_URL": self.nats_url_for(nats_user or owner),
            "SERVICE_NAME": owner,
            "SECRET_KEY": self.secret,
            "OTEL_SERVICE_NAME": owner,
            "PYTHONUNBUFFERED": "1",
            # Every process ensures its streams: with the same replica count, or it would shrink them.
            "BUS_STREAM_REPLICAS": str(self.stream_replicas),
        })
        # Each process gets its own logins only: none of the operator's secrets it was started with.
        for name in list(env):
            if _operator_only(name):
                env.pop(name)
        env.update(extra or {})
        return env

    def write_runtime_file(self) -> None:
        """Lets later CLI commands (deadletters, republish) find the embedded servers."""
        path = self.settings.data_dir / "runtime.json"
        # nats_users: each component has its own login (the embedded server), else all share the given URL.
        credentials.write_private(path, json.dumps({"nats_url": self.nats_url, "database_admin_url": self.admin_url,
                                                    "nats_users": self.nats is not None}))

    def servers(self) -> list[Server]:
        """The embedded servers, for the supervisor to keep running."""
        found: list[Server] = []
        if isinstance(self.nats, NatsCluster):  # each node on its own: one dying is restarted alone
            found.extend(Server(f"nats-{node.server_name}", node) for node in self.nats.nodes)
        elif self.nats:
            found.append(Server("nats", self.nats))
        if self.postgres:
            found.append(Server("postgres", self.postgres))
        for server in found:
            server.backoff.started(time.monotonic())
        return found

    def stop(self) -> None:
        if self.nats:
            self.nats.stop()
        if self.postgres:
            self.postgres.stop()
        with contextlib.suppress(FileNotFoundError):
            (self.settings.data_dir / "runtime.json").unlink()


# A process up this long since its last start is healthy again: its next failure restarts it after the
# shortest pause rather than the longest.
HEALTHY_AFTER_SECONDS = 60.0
MAX_PAUSE_SECONDS = 30.0
# A process asked to stop (SIGTERM) drains and exits within 30 s (runtime.service.main); past this it is killed.
STOP_SECONDS = 35.0


@dataclass
class Backoff:
    """Restart pauses of one supervised process: 1 s, 2 s, 4 s ... up to 30 s while it keeps failing,
    back to 1 s once it has run HEALTHY_AFTER_SECONDS. Times are given, so it can be tested without
    waiting."""

    healthy_after: float = HEALTHY_AFTER_SECONDS
    failures: int = 0
    started_at: float = 0.0

    def started(self, now: float) -> None:
        self.started_at = now

    def failed(self, now: float) -> float:
        """The pause before the next start."""
        if now - self.started_at >= self.healthy_after:
            self.failures = 0
        self.failures += 1
        return min(2.0 ** (self.failures - 1), MAX_PAUSE_SECONDS)


class Supervised:
    """What `_watch` needs of a process it keeps running."""

    name: str
    backoff: Backoff
    restart_at: float | None = None
    # Being restarted on purpose (a rolling restart): the watcher leaves it alone meanwhile.
    held: bool = False

    def running(self) -> bool:
        raise NotImplementedError

    def exit_reason(self) -> str:
        return "stopped"

    async def start(self) -> None:
        raise NotImplementedError


@dataclass
class Server(Supervised):
    """An embedded NATS or Postgres: restarted on the same port with the same data when it dies."""

    name: str
    server: EmbeddedNats | EmbeddedPostgres
    backoff: Backoff = field(default_factory=Backoff)
    restart_at: float | None = None

    def running(self) -> bool:
        return self.server.alive()

    def exit_reason(self) -> str:
        return "is not running"

    async def start(self) -> None:
        await asyncio.to_thread(self.server.start)
        self.backoff.started(time.monotonic())


@dataclass
class Child(Supervised):
    name: str
    args: list[str]
    env: dict[str, str]
    proc: asyncio.subprocess.Process | None = None
    backoff: Backoff = field(default_factory=Backoff)
    restart_at: float | None = None
    pump: asyncio.Task[None] | None = field(default=None, repr=False)
    # File descriptors the process inherits (the gateway replicas' shared listening socket).
    pass_fds: tuple[int, ...] = ()
    # The name it answers health requests under (a service, the gateway); none for helpers (the mailbox).
    health_name: str | None = None
    # Whether a new process may start while the old one still runs (a rolling restart, `replace`): nothing it
    # binds is exclusive. A service's metrics port is bound with SO_REUSEPORT (runtime.metrics.serve), gateway
    # replicas share one listening socket; a lone gateway binds its port itself, the mailbox its SMTP port.
    overlaps: bool = False

    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def exit_reason(self) -> str:
        return f"exited with {self.proc.returncode if self.proc else None}"

    async def start(self) -> None:
        self.backoff.started(time.monotonic())
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, *self.args, env=self.env, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_parent,
            pass_fds=self.pass_fds,
        )
        self.pump = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        assert self.proc and self.proc.stdout
        prefix = f"{self.name:<13}| "
        async for line in self.proc.stdout:
            if self.name.startswith("gateway") and b"Uvicorn running on" in line:
                continue  # the gateway's address is printed once, with "ready", when it can be used
            sys.stdout.write(prefix + line.decode(errors="replace"))
            sys.stdout.flush()

    async def stop(self, timeout: float = STOP_SECONDS) -> None:
        await _terminate(self.proc, self.pump, timeout)

    async def replace(self) -> Awaitable[None]:
        """Start a new process beside the running one, which is told to stop (SIGTERM: it drains) at the same
        moment; returns what to await for the old one's exit. A rolling restart's step then takes the longer
        of the old one's drain and the new one's start instead of both in turn. Only where nothing the
        process binds is exclusive (`overlaps`)."""
        old, pump = self.proc, self.pump
        if old is not None and old.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                old.send_signal(signal.SIGTERM)
        await self.start()
        return _terminate(old, pump, STOP_SECONDS)


async def _terminate(proc: asyncio.subprocess.Process | None, pump: asyncio.Task[None] | None,
                     timeout: float) -> None:
    """SIGTERM (again: harmless to a process already stopping), its exit awaited, SIGKILL past `timeout`;
    then the rest of its output."""
    if proc is None or proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
    if pump:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(pump, 2)


# Generous: on a loaded two-core machine eight processes importing and connecting take minutes; a fast one is
# healthy in seconds (the wait ends then).
HEALTHY_WITHIN = 600.0


async def wait_healthy(url: str, timeout: float = HEALTHY_WITHIN) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{url}/healthz", timeout=2)).status_code == 200:
                    return
            await asyncio.sleep(0.3)
    raise TimeoutError(f"the platform did not become healthy at {url} within {timeout:.0f}s")


def say(text: str) -> None:
    print(f"{'partnerops':<13}| {text}", flush=True)


class _Columns(logging.Formatter):
    """The supervisor's own log lines in the children's `name | text` columns: migrations as `migrate`,
    one line each (the first line of a revision's description)."""

    def format(self, record: logging.LogRecord) -> str:
        who = "migrate" if record.name.startswith("alembic") else "partnerops"
        text = record.getMessage()
        first, _, rest = text.partition("\n")
        return f"{who:<13}| {first}{' …' if rest else ''}"


def _log_in_columns() -> None:
    for handler in logging.getLogger().handlers:
        handler.setFormatter(_Columns())
    # Alembic's per-owner preamble ("Context impl PostgresqlImpl.", "Will assume transactional DDL.") and
    # httpx's line per health probe are noise to someone starting the platform.
    logging.getLogger("alembic.runtime.migration").addFilter(
        lambda r: not r.getMessage().startswith(("Context impl", "Will assume")))
    logging.getLogger("httpx").setLevel(logging.WARNING)


def lock_data_dir(data_dir: Path) -> int:
    """Hold the data directory for this supervisor's life (the kernel drops the lock when the process
    dies, however it dies). A second `up` on the same directory is refused: two NATS servers on one
    JetStream directory corrupt each other's view of the streams."""
    # Not 0700: when root, the Postgres system user must be able to reach data_dir/postgres; every file
    # with a secret in it is 0600 on its own.
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "supervisor.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise SystemExit(f"another `partnerops up` (pid {holder}) is running on {data_dir.resolve()}; "
                         "stop it first (Ctrl-C in its terminal), or use another DATA_DIR") from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd


def replica_names(name: str, replicas: int) -> list[str]:
    """The log names of a process's replicas: `pipeline` alone, `pipeline-1`, `pipeline-2` with two."""
    return [name] if replicas == 1 else [f"{name}-{i}" for i in range(1, replicas + 1)]


def shared_listener(host: str, port: int) -> socket.socket:
    """The gateway replicas' one listening socket, inherited by each: the kernel hands every
    connection to one of them, and a replica restarting leaves the port served by the others."""
    sock = socket.create_server((host, port), backlog=2048, reuse_port=False)
    sock.set_inheritable(True)
    return sock


async def up(settings: Settings, *, seed: bool = True, replicas: int = 1, nats_nodes: int = 1) -> int:
    _log_in_columns()
    lock = lock_data_dir(settings.data_dir)
    try:
        return await _up(settings, seed=seed, replicas=replicas, nats_nodes=nats_nodes)
    finally:
        os.close(lock)


async def _up(settings: Settings, *, seed: bool, replicas: int = 1, nats_nodes: int = 1) -> int:
    stop = asyncio.Event()
    rolling = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # SIGHUP: restart every process one at a time, each drained and healthy again before the next.
    loop.add_signal_handler(signal.SIGHUP, rolling.set)
    platform = Platform(settings, nats_nodes=nats_nodes)
    children: list[Child] = []
    listener: socket.socket | None = None
    try:
        say("starting NATS and Postgres" if not settings.nats_url else "using the given servers")
        await platform.start()
        say(f"NATS {bus.redact(platform.nats_url)}; Postgres ready; preparing schemas, roles, migrations, streams")
        await platform.prepare()
        platform.write_runtime_file()
        url = f"http://{settings.gateway_host}:{settings.gateway_port}"
        mail = await _local_mailbox(settings) if not settings.smtp_url else {}
        if mail:
            children.append(mail.pop("child"))  # type: ignore[arg-type]
        if replicas > 1:
            listener = shared_listener(settings.gateway_host, settings.gateway_port)
        for part in PROCESSES:
            # Sync workers run only when configured (a fresh clone has no AWS account), and once.
            if part.enabled_by and not getattr(settings, part.enabled_by):
                say(f"{part.name}: not configured (set {part.enabled_by.upper()}=true; docs/integrations.md)")
                continue
            assert part.schema, f"{part.name} runs without a schema of its own"
            for replica in replica_names(part.name, replicas if part.kind != "integration" else 1):
                extra = {"SERVICE_NAME": part.name}
                fds: tuple[int, ...] = ()
                if part.kind == "integration":
                    extra |= {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
                else:
                    extra |= {"GATEWAY_PORT": str(settings.gateway_port), "GATEWAY_HOST": settings.gateway_host,
                              "PUBLIC_URL": settings.public_url if os.environ.get("PUBLIC_URL") else url, **mail}
                if part.kind == "service":  # the gateway serves its metrics at /metrics; a service on a port
                    extra["METRICS_PORT"] = str(free_port())
                    say(f"{replica}: Prometheus metrics at http://{settings.metrics_host}:{extra['METRICS_PORT']}"
                        "/metrics")
                elif part.kind == "gateway" and listener is not None:
                    extra["GATEWAY_FD"] = str(listener.fileno())
                    fds = (listener.fileno(),)
                child = Child(replica, part.argv, platform.env_for(part.schema, extra, nats_user=part.name),
                              pass_fds=fds, health_name=part.name if part.kind != "integration" else None,
                              overlaps=part.kind == "service" or bool(fds))
                await child.start()
                children.append(child)
        # Replicas and a NATS cluster are more processes starting on the same cores: a longer wait.
        await _until(wait_healthy(url, timeout=HEALTHY_WITHIN * replicas * (2 if nats_nodes > 1 else 1)), stop)
        if seed and not stop.is_set() and await database_setup.get_meta(platform.admin_url, "demo_seeded") is None:
            say("seeding demo data (once)")
            # The demo plays the billing system and the sync workers too: the operator's login.
            seeder = Child("seed", ["-m", "gateway", "seed"], platform.env_for("gateway", nats_user=bus_auth.OPERATOR))
            await seeder.start()
            assert seeder.proc
            if await seeder.proc.wait() == 0:
                await database_setup.set_meta(platform.admin_url, "demo_seeded", time.strftime("%FT%TZ"))
            else:
                say("demo seed failed; see its log above")
        if not stop.is_set():
            say(f"ready: open {url}  (Ctrl-C stops everything; SIGHUP restarts every process in turn)")
        servers = platform.servers()
        watcher = asyncio.create_task(_watch([*servers, *children], stop))
        try:
            while not stop.is_set():
                await _until(rolling.wait(), stop)
                if rolling.is_set() and not stop.is_set():
                    rolling.clear()
                    await rolling_restart(platform, servers, children, url, stop)
        finally:
            await watcher
        return 0
    finally:
        say("stopping")
        # The edge (the gateway, a sync worker) first, so no new work arrives while the services drain; then every
        # service's replicas at once: each drains on its own, and what one still publishes waits in the others'
        # durable consumers (one service after another, each waiting out its last fetch, took seconds apiece).
        started = {p.name: replica_names(p.name, replicas if p.kind != "integration" else 1) for p in PROCESSES}
        edge = {r for p in PROCESSES if p.kind != "service" for r in started[p.name]}
        services = {r for p in PROCESSES if p.kind == "service" for r in started[p.name]}
        for group in (edge, services):
            await asyncio.gather(*(c.stop() for c in children if c.name in group))
        await asyncio.gather(*(c.stop() for c in children if c.name not in edge | services))
        if listener is not None:
            listener.close()
        platform.stop()
        say("stopped")


async def rolling_restart(platform: Platform, servers: list[Server], children: list[Child], url: str,
                          stop: asyncio.Event) -> None:
    """Restart every process one at a time: the NATS nodes of a cluster (each back in the cluster
    before the next), then each service and gateway replica, each stopped with SIGTERM (it drains) and
    the platform healthy again before the next goes. With one replica of each, a service is briefly
    away; its events wait in its durable."""
    say("rolling restart: begins")
    for server in servers:
        if stop.is_set() or not isinstance(server.server, EmbeddedNats) or not server.server.cluster_port:
            continue
        server.held = True
        try:
            await asyncio.to_thread(server.server.stop)
            await server.start()
            if isinstance(platform.nats, NatsCluster):
                await asyncio.to_thread(platform.nats.wait_ready)
        finally:
            server.held, server.restart_at = False, None
        say(f"rolling restart: {server.name} restarted")
    nc = await bus.connect(platform.nats_url, name="supervisor")
    try:
        for child in children:
            if stop.is_set():
                return
            began = time.monotonic()
            child.held = True
            old_gone: Awaitable[None] | None = None
            try:
                if child.overlaps:
                    old_gone = await child.replace()
                else:
                    await child.stop()
                    await child.start()
                if child.health_name and child.proc is not None:
                    # The new process itself ready, not just the platform: its replica answers the platform's
                    # health checks (and shares the gateway's port) while it starts.
                    with contextlib.suppress(TimeoutError):
                        await _until(_instance_ready(nc, child.health_name, child.proc.pid), stop)
                with contextlib.suppress(TimeoutError):
                    await _until(wait_healthy(url), stop)
            finally:
                ready = time.monotonic()
                if old_gone is not None:
                    await old_gone  # the old one drained and gone before the next step
                child.held, child.restart_at = False, None
            say(f"rolling restart: {child.name} restarted ({ready - began:.1f} s to ready, "
                f"{time.monotonic() - began:.1f} s in all)")
    finally:
        await nc.close()
    say("rolling restart: done")


async def _instance_ready(nc: Any, service: str, pid: int, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if (await health.ask(nc, service, timeout=2.0, pid=pid)).get("status") == "ok":
                return
        await asyncio.sleep(0.5)
    raise TimeoutError(f"{service} (pid {pid}) not ready after {timeout:.0f}s")


async def _local_mailbox(settings: Settings) -> dict[str, object]:
    """Without SMTP_URL, a local SMTP sink (runtime/mailbox.py) receives every email, kept in
    <data_dir>/mailbox and shown to admins at /admin/mailbox: a new installation sees its alerts and the
    weekly digest without a mail server."""
    port = free_port()
    directory = (settings.data_dir / "mailbox").resolve()
    env = {k: v for k, v in os.environ.items() if not _operator_only(k) and k not in ("SECRET_KEY", "SECRET_KEY_FILE")}
    child = Child("mailbox", ["-m", "runtime.mailbox", "--dir", str(directory), "--port", str(port)],
                  {**env, "PYTHONUNBUFFERED": "1"})
    await child.start()
    say("no SMTP_URL: emails go to the local mailbox (admins read it at Admin → Mailbox)")
    return {"child": child, "SMTP_URL": f"smtp://127.0.0.1:{port}", "MAILBOX_DIR": str(directory)}


async def _until(coro: object, stop: asyncio.Event) -> None:
    task = asyncio.ensure_future(coro)  # type: ignore[arg-type]
    stopper = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    if task in done:
        task.result()
    else:
        task.cancel()


async def _watch(processes: list[Supervised], stop: asyncio.Event) -> None:
    """Restart whatever dies, each after its own growing pause (one process waiting never delays
    another), until asked to stop. The servers come first in `processes`: the services reconnect."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)
        for p in processes:
            if stop.is_set() or p.running() or p.held:
                continue
            now = time.monotonic()
            if p.restart_at is None:
                pause = p.backoff.failed(now)
                p.restart_at = now + pause
                say(f"{p.name} {p.exit_reason()}; restarting in {pause:.0f}s")
            elif now >= p.restart_at:
                p.restart_at = None
                try:
                    await p.start()
                    say(f"{p.name} restarted")
                except Exception as exc:
                    # Counts as another failure: the next round schedules the next, longer pause.
                    say(f"{p.name} failed to restart: {exc}")
