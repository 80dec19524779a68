"""Chaos: external events flowing into a platform of two replicas of every process on a three-node NATS
cluster (`partnerops up --replicas 2 --nats-nodes 3`) while faults are injected, then a checker that
compares the end state with the one a fault-free run gives.

    .venv/bin/python -m bench.chaos [--events 100000] [--rate 500]

SIGTERM or SIGINT (Ctrl-C, `timeout`) stops a run cleanly: every process it started is stopped, the
windows measured so far are printed marked `"interrupted"` (not checked, not written to results/), and
it exits 128 + the signal's number.

The faults, one after the other, events flowing throughout:
1. `nats-node`: SIGKILL of the NATS node that leads the SYNC stream (the supervisor restarts it);
2. `disk-lost`: the JetStream data directory of the node leading the SYNC stream taken away and the node
   SIGKILLed at once, so the supervisor restarts it empty under the same name: it must rejoin and catch
   up from the other two (R3), and nothing acknowledged may be lost (Jepsen's NATS 2.12.1 analysis
   found loss in this case under the default fsync interval; the cluster here syncs always);
3. `replicas`: SIGKILL of one replica of each service and of the gateway at once (restarted too);
4. `rolling`: a rolling restart of every process (SIGHUP to the supervisor: each NATS node, then each
   replica, stopped with SIGTERM - it drains - and the platform healthy again before the next).

The input: external opportunity upserts (`sync.opportunity.external.upserted.v1`, as a sync worker
publishes them), each opportunity updated again and again (newer `last_modified`, another stage and
amount), and paid invoices (`billing.invoice.paid.v1`) of one partner with a 10 % agreement. Its
fault-free end state is known from the input alone, since the platform is deterministic in it: each
opportunity as its last upsert describes it, the gateway's read model equal to the pipeline's records
with its KPI aggregates equal to a recount (no event counted twice or lost), and one 10 % accrual
per invoice in the commission ledger. `check` lists every lost and unexpected record.

Measured per fault window: events published per second, the p50, p99 and largest event-to-read-model
latency (publish to the gateway's read model showing that version, sampled every POLL seconds; the
largest says whether any event waited out an ack wait), and recovery: the time from the fault to the
read model's next progress, and the longest stall of progress in the window.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import nats.errors

from bench.harness import wait_until
from contracts import billing as b
from contracts import commissions as c
from contracts import pipeline as pc
from contracts import sync
from runtime import bus
from runtime.commands import send
from runtime.db import plain_dsn
from runtime.embedded import free_port
from runtime.errors import CommandFailed
from runtime.testing import STARTUP_PATIENCE, TEST_SECRET, eventually

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
# Consumers must make progress again within this long of each fault (issue 18).
RECOVERY_BOUND = 15.0
POLL = 0.25
OPEN_STAGES = ("prospect", "qualified", "technical_validation", "business_validation", "committed")
CLOSED_STAGES = ("launched", "closed_lost")
RATE_PERCENT = Decimal(10)
SERVICES = ("pipeline", "commissions", "relationships", "notifications")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# ------------------------------------------------------------------------------------- the input


@dataclass
class Workload:
    """The events, made as they are published: opportunity j % K at its next version; every fifth
    event a paid invoice instead. Remembers what the fault-free end state must be."""

    tag: str
    partner_id: uuid.UUID
    opportunities: int = 60
    published: int = 0
    versions: dict[int, int] = field(default_factory=dict)  # opportunity -> last version published
    sent_at: dict[tuple[int, int], float] = field(default_factory=dict)  # (opportunity, version) -> time
    invoices: dict[str, Decimal] = field(default_factory=dict)
    base: datetime = field(default_factory=lambda: datetime.now(UTC) - timedelta(days=30))

    def name(self, i: int) -> str:
        return f"Chaos {self.tag} {i:05d}"

    def state(self, i: int, version: int) -> tuple[str, Decimal]:
        """Stage and amount of opportunity i at a version; the amount says the version (1000 + v)."""
        stages = OPEN_STAGES if version % 7 else (*OPEN_STAGES, *CLOSED_STAGES)
        return stages[(i + version) % len(stages)], Decimal(1000 + version)

    def next(self) -> sync.OpportunityExternalUpsertedV1 | b.InvoicePaidV1:
        n = self.published
        self.published += 1
        if n % 5 == 4:
            invoice = f"CH-{self.tag}-{n:07d}"
            amount = Decimal(100 + n % 90)
            self.invoices[invoice] = amount
            return b.InvoicePaidV1(invoice_id=invoice, customer=f"Chaos customer {self.tag}",
                                   partner_id=self.partner_id, amount=amount, currency="USD",
                                   paid_at=datetime.now(UTC) - timedelta(minutes=1), deal_model="cosell")
        i = n % self.opportunities
        version = self.versions.get(i, 0) + 1
        self.versions[i] = version
        stage, amount = self.state(i, version)
        return sync.OpportunityExternalUpsertedV1(
            source=pc.ExternalSource.gcp, external_id=f"CH{self.tag}{i:05d}",
            last_modified=self.base + timedelta(seconds=version), created_at=self.base, name=self.name(i),
            customer=f"Chaos customer {self.tag}", stage=stage, amount=amount, currency="USD",
            expected_close_date=date(2027, 3, 31), owner="chaos@example.com",
            gcp=pc.GcpState(status=pc.GcpStatus.accepted))

    def expected_opportunities(self) -> dict[str, tuple[str, Decimal]]:
        return {self.name(i): self.state(i, v) for i, v in self.versions.items()}

    def expected_ledger(self) -> dict[str, Decimal]:
        return {k: (v * RATE_PERCENT / 100).quantize(Decimal("0.01")) for k, v in self.invoices.items()}


# -------------------------------------------------------------------------------- the platform


@dataclass
class Platform:
    """`partnerops up --replicas R --nats-nodes 3 --no-seed` as a process of its own."""

    admin_url: str
    data_dir: Path
    replicas: int = 2
    nats_nodes: int = 3
    proc: subprocess.Popen[bytes] | None = None
    port: int = 0

    @property
    def log(self) -> Path:
        return self.data_dir / "up.log"

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        env = {**os.environ, "DATABASE_URL": self.admin_url, "SECRET_KEY": TEST_SECRET, "DATA_DIR": str(self.data_dir),
               "GATEWAY_PORT": str(self.port), "OTEL_TRACES_EXPORTER": "none", "LOG_LEVEL": "WARNING",
               "BUS_ACK_WAIT_SECONDS": "10", "COMMISSIONS_SECOND_APPROVER": "false"}
        env.pop("NATS_URL", None)
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "runtime.cli", "up", "--no-seed", "--replicas", str(self.replicas),
                 "--nats-nodes", str(self.nats_nodes)],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"partnerops up exited: {self.log.read_text()[-4000:]}")
        return "ready: open" in self.log.read_text(errors="replace")

    @property
    def nats_url(self) -> str:
        return str(json.loads((self.data_dir / "runtime.json").read_text())["nats_url"])

    def children(self) -> dict[str, list[int]]:
        """The supervisor's processes by kind: pipeline, ..., gateway, nats-n1, nats-n2, nats-n3."""
        assert self.proc is not None
        out = subprocess.run(["ps", "-ww", "-o", "pid=,args=", "--ppid", str(self.proc.pid)], capture_output=True,
                             text=True)
        kinds: dict[str, list[int]] = {}
        for line in out.stdout.splitlines():
            pid, _, args = line.strip().partition(" ")
            kind = None
            if "nats-server" in args and " -c " in args:  # a node (not e.g. a process whose path names it)
                kind = "nats-" + Path(args.split(" -c ")[1].split()[0]).parent.name
            elif "-m gateway serve" in args:
                kind = "gateway"
            else:
                kind = next((s for s in SERVICES if f"-m services.{s}" in args), None)
            if kind:
                kinds.setdefault(kind, []).append(int(pid))
        return kinds

    def full(self) -> bool:
        """Every process running: each service and the gateway with all its replicas, every NATS node."""
        kinds = self.children()
        return all(len(kinds.get(k, [])) == self.replicas for k in (*SERVICES, "gateway")) \
            and all(len(kinds.get(f"nats-n{i}", [])) == 1 for i in range(1, self.nats_nodes + 1))

    def kill(self, pid: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    def jetstream_dir(self, node: str) -> Path:
        """Where node `n1`..`n3` keeps its streams (runtime.embedded.NatsCluster, `<store_dir>/jetstream`)."""
        return self.data_dir / "nats-cluster" / node / "jetstream"

    def lose_disk(self, node: str) -> Path:
        """The node's JetStream data gone as a failed disk takes it: the directory moved away (the running
        server loses its path at that instant) and the server SIGKILLed straight after, before it can
        write anything anew; the supervisor restarts it on an empty directory. Returns where the old
        data went (for the caller to delete)."""
        live = self.jetstream_dir(node)
        lost = live.with_name(f"jetstream.lost-{time.time_ns()}")
        pid = self.children()[f"nats-{node}"][0]
        live.rename(lost)
        self.kill(pid)
        return lost

    def rolling_restarts_done(self) -> int:
        return self.log.read_text(errors="replace").count("rolling restart: done")

    def stop(self) -> None:
        """Ctrl-C to the supervisor: it stops every replica and the NATS nodes. Past the bound (or if it
        died without doing so) whatever is still running on the data directory is SIGKILLed: its
        children and the NATS nodes are sessions of their own, which killing its group would miss."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(120)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        for pid in processes_using(self.data_dir):
            self.kill(pid)


def processes_using(*paths: Path) -> list[int]:
    """Live processes (not this one) whose command line or environment names one of `paths`: the
    supervisor and its processes (DATA_DIR), the NATS nodes (their config under it), the bench's own
    servers (see `footprint`)."""
    needles = [str(path.resolve()).encode() for path in paths]
    found, mine = [], _ancestry()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in mine:
            continue
        try:
            if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":  # exited, not yet reaped
                continue
            seen = (entry / "cmdline").read_bytes() + b"\0" + (entry / "environ").read_bytes()
            if any(needle in seen for needle in needles):
                found.append(int(entry.name))
        except OSError:  # gone meanwhile, or another user's
            continue
    return found


def _ancestry() -> set[int]:
    """This process and those that started it: a launcher's command line names the data directory too
    (`timeout … bench.chaos --data-dir D`), and it is neither another run nor ours to kill."""
    pids, pid = set(), os.getpid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return pids


def footprint(data_dir: Path) -> tuple[Path, ...]:
    """The paths a run's processes are known by: its data directory, and the directory its Postgres
    (bench.harness.servers) runs in, which is elsewhere when we are root (runtime.embedded)."""
    from runtime.embedded import EmbeddedPostgres

    return data_dir, EmbeddedPostgres(base_dir=data_dir / "servers" / "postgres").cluster_dir


# ------------------------------------------------------------------------------------- a run


@dataclass
class Window:
    name: str
    started: float
    ended: float = 0.0
    recovery_seconds: float | None = None

    def as_dict(self, run: Run) -> dict[str, Any]:
        end = self.ended or time.monotonic()
        lat = [run.latency[k] for k, t in run.workload.sent_at.items() if self.started <= t < end and k in run.latency]
        published = sum(1 for t in run.publish_times if self.started <= t < end)
        changes = [t for t in run.progress_times if self.started <= t < end]
        gaps = [b_ - a for a, b_ in zip([self.started, *changes], [*changes, end], strict=True)]
        seconds = end - self.started
        recovery = None if self.recovery_seconds is None else round(self.recovery_seconds, 2)
        return {"seconds": round(seconds, 1), "published_per_second": round(published / seconds, 1),
                "p50_latency_ms": round(percentile(lat, 0.5) * 1000),
                "p99_latency_ms": round(percentile(lat, 0.99) * 1000),
                "max_latency_ms": round(max(lat, default=0.0) * 1000), "latency_samples": len(lat),
                "recovery_seconds": recovery, "longest_stall_seconds": round(max(gaps), 2) if gaps else None}


@dataclass
class Run:
    platform: Platform
    workload: Workload
    rate: float
    total: int
    publish_times: list[float] = field(default_factory=list)
    latency: dict[tuple[int, int], float] = field(default_factory=dict)
    progress_times: list[float] = field(default_factory=list)
    progress: int = 0
    windows: list[Window] = field(default_factory=list)
    publish_errors: int = 0
    # The supervisor's "rolling restart: <process> restarted" lines, with the time the sampler saw each.
    steps: list[tuple[float, str]] = field(default_factory=list)
    # Set once every fault has been injected and recovered from: until then the load goes on past `total`,
    # so a small run (the test's) still has events flowing through every fault.
    faults_done: asyncio.Event = field(default_factory=asyncio.Event)

    async def publisher(self, js: Any) -> None:
        """Publish at `rate` per second until `total`, and on until the faults are done; a publish that
        fails (its node was killed) is sent again with the same Nats-Msg-Id, so the stream keeps it once."""
        start = time.monotonic()
        while self.workload.published < self.total or not self.faults_done.is_set():
            event = self.workload.next()
            while True:
                try:
                    await js.publish(event.subject, event.model_dump_json().encode(),
                                     headers={"Nats-Msg-Id": str(event.event_id)}, timeout=5)
                    break
                except Exception:
                    self.publish_errors += 1
                    await asyncio.sleep(0.2)
            now = time.monotonic()
            self.publish_times.append(now)
            if isinstance(event, sync.OpportunityExternalUpsertedV1):
                i = int(event.external_id[-5:])
                self.workload.sent_at[(i, self.workload.versions[i])] = now
            ahead = (self.workload.published / self.rate) - (now - start)
            if ahead > 0:
                await asyncio.sleep(ahead)

    async def sampler(self, dsn: str, stop: asyncio.Event) -> None:
        """Every POLL seconds: which version of each opportunity the gateway's read model shows."""
        conn = await asyncpg.connect(dsn)
        seen: dict[int, int] = {}
        try:
            while not stop.is_set():
                with contextlib.suppress(Exception):
                    rows = await conn.fetch("SELECT name, amount FROM gateway.pipeline_opportunity WHERE name LIKE $1",
                                            f"Chaos {self.workload.tag} %")
                    now = time.monotonic()
                    total = 0
                    for r in rows:
                        i, version = int(r["name"].rsplit(" ", 1)[1]), int(r["amount"]) - 1000
                        total += version
                        for v in range(seen.get(i, 0) + 1, version + 1):
                            if (i, v) in self.workload.sent_at:
                                self.latency[(i, v)] = now - self.workload.sent_at[(i, v)]
                        seen[i] = max(seen.get(i, 0), version)
                    if total != self.progress:
                        self.progress = total
                        self.progress_times.append(now)
                    self._read_steps(now)
                await asyncio.sleep(POLL)
        finally:
            await conn.close()

    def _read_steps(self, now: float) -> None:
        lines = [line for line in self.platform.log.read_text(errors="replace").splitlines()
                 if "rolling restart:" in line]
        for line in lines[len(self.steps):]:
            # "pipeline-1 restarted (3.1 s to ready, 3.4 s in all)": keyed by the step, without its timings.
            self.steps.append((now, line.split("rolling restart:", 1)[1].split(" (", 1)[0].strip()))

    def step_stalls(self) -> dict[str, float]:
        """Per step of the rolling restarts: the longest time the read model did not move while that
        step ran (from the previous step's end to its own, as the sampler saw them)."""
        out: dict[str, float] = {}
        for (start, _), (end, text) in zip(self.steps, self.steps[1:], strict=False):
            changes = [t for t in self.progress_times if start <= t < end]
            gaps = [b_ - a for a, b_ in zip([start, *changes], [*changes, end], strict=True)]
            out[text] = round(max(gaps), 2)
        return out

    async def fault(self, name: str, inject: Any) -> Window:
        """Inject a fault and wait (at most RECOVERY_BOUND) until the read model moves again."""
        window = Window(name, time.monotonic())
        self.windows.append(window)
        before = len(self.progress_times)
        await inject()
        await eventually(lambda: len(self.progress_times) > before, f"progress after the fault {name}",
                         timeout=RECOVERY_BOUND, interval=POLL / 2)
        window.recovery_seconds = self.progress_times[before] - window.started
        return window

    def interrupt(self) -> None:
        """Stopped from outside (a signal): the open windows end now, not once the platform has been stopped
        (its stopping would read as a stall of progress)."""
        now = time.monotonic()
        for window in self.windows:
            window.ended = window.ended or now

    def report(self) -> dict[str, Any]:
        out: dict[str, Any] = {w.name: w.as_dict(self) for w in self.windows}
        if "rolling" in out:
            out["rolling"]["longest_stall_per_step"] = self.step_stalls()
        return out


async def setup_partner(nc: Any, tag: str) -> uuid.UUID:
    """A partner (a command any pipeline replica answers) and a 10 % agreement with it."""
    partner = await send(nc, pc.CreatePartner(name=f"Chaos partner {tag}", type=pc.PartnerType.reseller,
                                              status=pc.PartnerStatus.active))

    async def agreement() -> bool:
        try:
            await send(nc, c.CreateAgreement(
                partner_id=partner.id, name=f"Chaos {tag}", direction=c.Direction.payable, currency="USD",
                effective_from=date(2026, 1, 1), actor="chaos",
                terms=c.Terms(rate=c.FlatRate(rate=RATE_PERCENT), basis=c.Basis.invoice, duration=c.Duration.lifetime)))
            return True
        except CommandFailed:  # the commissions service has not heard of the partner yet
            return False

    await eventually(agreement, "the agreement (commissions knows the partner)", timeout=120, interval=0.5)
    return partner.id


# ------------------------------------------------------------------------------------ the checker


async def check(dsn: str, workload: Workload) -> dict[str, list[str]]:
    """Lost and unexpected records against the fault-free end state; empty lists when they are equal."""
    conn = await asyncpg.connect(dsn)
    problems: dict[str, list[str]] = {"lost": [], "unexpected": []}
    try:
        expected = workload.expected_opportunities()
        like = f"Chaos {workload.tag} %"
        stored = {r["name"]: (r["stage"], r["amount"]) for r in await conn.fetch(
            "SELECT name, stage, amount FROM pipeline.opportunity WHERE name LIKE $1", like)}
        view = {r["name"]: (r["stage"], r["amount"], r["id"], r["version"]) for r in await conn.fetch(
            "SELECT name, stage, amount, id, version FROM gateway.pipeline_opportunity WHERE name LIKE $1", like)}
        records = {r["name"]: (r["id"], r["version"]) for r in await conn.fetch(
            "SELECT name, id, version FROM pipeline.opportunity WHERE name LIKE $1", like)}
        for name, want in expected.items():
            if stored.get(name) != want:
                problems["lost"].append(f"pipeline opportunity {name}: want {want}, have {stored.get(name)}")
            got = view.get(name)
            if got is None or (got[0], got[1]) != want or (got[2], got[3]) != records.get(name):
                problems["lost"].append(f"read model opportunity {name}: want {want} {records.get(name)}, have {got}")
        for name in set(stored) - set(expected):
            problems["unexpected"].append(f"pipeline opportunity {name}")
        for name in set(view) - set(expected):
            problems["unexpected"].append(f"read model opportunity {name}")
        # The KPI aggregates equal a recount of the read model: nothing counted twice, nothing missed.
        drift = await kpi_drift(dsn)
        problems["unexpected"] += [f"KPI aggregate {k}: {n} row(s) differ from a recount"
                                   for k, n in drift.items() if n]
        ledger: dict[str, Decimal] = {}
        for r in await conn.fetch("SELECT revenue_key, amount FROM commissions.ledger_entry"):
            invoice = next((k for k in workload.invoices if k in r["revenue_key"]), None)
            if invoice is None:
                problems["unexpected"].append(f"ledger entry for {r['revenue_key']}")
                continue
            ledger[invoice] = ledger.get(invoice, Decimal(0)) + r["amount"]
        for invoice, want in workload.expected_ledger().items():
            if ledger.get(invoice) != want:
                problems["lost" if invoice not in ledger else "unexpected"].append(
                    f"ledger of invoice {invoice}: want {want}, have {ledger.get(invoice)}")
    finally:
        await conn.close()
    return problems


async def kpi_drift(dsn: str) -> dict[str, int]:
    from sqlalchemy.ext.asyncio import AsyncSession

    from gateway.read_models.pipeline import aggregate_drift
    from runtime.db import create_engine

    engine = create_engine(dsn, trace_sql=False)
    try:
        async with AsyncSession(engine) as session:
            return await aggregate_drift(session)
    finally:
        await engine.dispose()


# ---------------------------------------------------------------------------------- the scenario


async def scenario(platform: Platform, dsn: str, *, rate: float, total: int, opportunities: int,
                   say: Any = print, started: Any = None) -> tuple[Run, dict[str, list[str]]]:
    """Start the load, inject the four faults one after the other, let the load finish, check.
    `started(run)` is called once the load begins (what an interrupted run reports from)."""
    nc = await bus.connect(platform.nats_url, name="chaos")
    tag = uuid.uuid4().hex[:6]
    try:
        partner_id = await setup_partner(nc, tag)
        run = Run(platform, Workload(tag, partner_id, opportunities), rate, total)
        if started is not None:
            started(run)
        stop = asyncio.Event()
        sampler = asyncio.create_task(run.sampler(dsn, stop))
        publisher = asyncio.create_task(run.publisher(nc.jetstream()))
        share = max(total // 10, 20)
        say(f"load: {total} events at {rate:g}/s over {opportunities} opportunities")
        try:
            steady = Window("steady", time.monotonic())
            run.windows.append(steady)
            await eventually(lambda: run.progress_times and run.workload.published >= share, "steady load",
                             timeout=STARTUP_PATIENCE)
            steady.ended = time.monotonic()
            say(f"steady: {run.workload.published} published, the read model moving; now the faults")

            leader = await sync_leader(nc)
            node = run.fault("nats-node", _inject(lambda: platform.kill(platform.children()[f"nats-{leader}"][0])))
            window = await node
            say(f"killed NATS node {leader}; progress again after {window.recovery_seconds:.2f}s")
            await eventually(platform.full, "the NATS node restarted", timeout=120, interval=0.5)
            mark = run.workload.published
            await eventually(lambda: run.workload.published >= mark + share, "load after the node's return",
                             timeout=STARTUP_PATIENCE)
            window.ended = time.monotonic()

            leader = await sync_leader(nc)
            lost: list[Path] = []
            window = await run.fault("disk-lost", _inject(lambda: lost.append(platform.lose_disk(leader))))
            say(f"lost NATS node {leader}'s data; progress again after {window.recovery_seconds:.2f}s")
            await eventually(platform.full, "the emptied NATS node restarted", timeout=120, interval=0.5)
            await eventually(lambda: platform.jetstream_dir(leader).exists(), "the node's new store",
                             timeout=60, interval=0.5)
            await eventually(lambda: caught_up(nc, leader), "the emptied node caught up", timeout=STARTUP_PATIENCE,
                             interval=1.0)
            for path in lost:
                shutil.rmtree(path, ignore_errors=True)
            mark = run.workload.published
            await eventually(lambda: run.workload.published >= mark + share, "load after the node rejoined",
                             timeout=STARTUP_PATIENCE)
            window.ended = time.monotonic()

            def kill_replicas() -> None:
                kinds = platform.children()
                for kind in (*SERVICES, "gateway"):
                    platform.kill(kinds[kind][0])

            window = await run.fault("replicas", _inject(kill_replicas))
            say(f"killed one replica of each process; progress again after {window.recovery_seconds:.2f}s")
            await eventually(platform.full, "the replicas restarted", timeout=120, interval=0.5)
            mark = run.workload.published
            await eventually(lambda: run.workload.published >= mark + share, "load after the replicas' return",
                             timeout=STARTUP_PATIENCE)
            window.ended = time.monotonic()

            done = platform.rolling_restarts_done()
            assert platform.proc is not None
            window = await run.fault("rolling", _inject(lambda: platform.proc.send_signal(signal.SIGHUP)))
            await eventually(lambda: platform.rolling_restarts_done() > done, "the rolling restart",
                             timeout=STARTUP_PATIENCE, interval=1.0)
            window.ended = time.monotonic()
            say(f"rolling restart done in {window.ended - window.started:.0f}s")
            run.faults_done.set()

            # The rest of the load may take long (a 100k run publishing below its rate: each publish waits for
            # an R3, fsynced store): bounded by a stall of the publisher, not by a fixed time.
            async def published() -> int:
                if publisher.done():
                    publisher.result()  # what killed it, if anything
                    return run.total
                return run.workload.published

            await wait_until(published, run.total, "the load", stall=STARTUP_PATIENCE, report_every=60.0)
            await publisher
            tail = Window("after", time.monotonic())
            run.windows.append(tail)

            # The platform may end the load far behind it (a 100k run): wait while the differences from the
            # fault-free end state keep shrinking, and judge once they are gone or have not shrunk for
            # STARTUP_PATIENCE - not after a fixed time, which would call a backlog "lost".
            async def differences() -> int:
                problems = await check(dsn, run.workload)
                return len(problems["lost"]) + len(problems["unexpected"])

            fewest, since = await differences(), time.monotonic()
            # A check reads every record of the run: not too often under a large run's load (every 5 s at 100k
            # events); a small run's (the test's 400) is read in milliseconds and caught up within a second.
            pause = min(5.0, 0.5 + run.total / 20_000)
            while fewest and time.monotonic() - since < STARTUP_PATIENCE:
                await asyncio.sleep(pause)
                if (now := await differences()) < fewest:
                    fewest, since = now, time.monotonic()
            tail.ended = time.monotonic()
        finally:
            publisher.cancel()
            stop.set()
            with contextlib.suppress(BaseException):
                await sampler
        return run, await check(dsn, run.workload)
    finally:
        await nc.close()


def _inject(action: Any) -> Any:
    async def inject() -> None:
        action()

    return inject


async def caught_up(nc: Any, node: str) -> bool:
    """Whether `node` is a current replica of every stream again (not offline, not lagging)."""
    js = nc.jetstream()
    try:
        streams = await js.streams_info()
    except (nats.errors.Error, TimeoutError):  # during an election the API may time out: not yet
        return False
    for stream in streams:
        cluster = stream.cluster
        if cluster is None:
            continue
        if cluster.leader == node:
            continue
        replica = next((r for r in cluster.replicas or [] if r.name == node), None)
        if replica is None or not replica.current or replica.offline:
            return False
    return True


async def sync_leader(nc: Any) -> str:
    info = await nc.jetstream().stream_info(sync.STREAM.name)
    return str(info.cluster.leader)


# ----------------------------------------------------------------------------------- the bench


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    """The run; SIGTERM (e.g. from `timeout`) or SIGINT stops it cleanly: the platform and the servers
    are stopped as at the end of a run, and what was measured until then is returned, marked
    `interrupted` (not checked: the load did not finish)."""
    from bench.harness import log, servers
    from runtime.database_setup import create_database
    from runtime.testing import unique

    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None
    runs: list[Run] = []
    received: list[str] = []

    def interrupted(sig: signal.Signals) -> None:
        if received:  # stopping already; a second signal must not cut the cleanup short
            log(f"{sig.name} again: still stopping the platform")
            return
        received.append(sig.name)
        for run in runs:
            run.interrupt()
        log(f"{sig.name}: stopping the platform and the servers; the report will be partial")
        main.cancel()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, interrupted, sig)
    data_dir = args.data_dir.resolve()
    if busy := processes_using(*footprint(data_dir)):
        raise SystemExit(f"processes {busy} are running on {data_dir}: another run? stop them first")
    # A fresh platform: an earlier run's streams (the NATS nodes keep theirs there) would be consumed anew.
    shutil.rmtree(data_dir / "platform", ignore_errors=True)
    problems: dict[str, list[str]] | None = None
    try:
        with servers(data_dir / "servers") as s:
            admin = await create_database(s.admin_url, unique("chaos_"))
            platform = Platform(admin, data_dir / "platform", replicas=args.replicas)
            platform.start()
            try:
                await eventually(platform.ready, "the platform", timeout=STARTUP_PATIENCE, interval=1.0)
                assert platform.proc is not None
                log(f"platform ready: partnerops up pid {platform.proc.pid}, data in {data_dir}")
                _, problems = await scenario(platform, plain_dsn(admin), rate=args.rate, total=args.events,
                                             opportunities=args.opportunities, say=log, started=runs.append)
            finally:
                platform.stop()
    except asyncio.CancelledError:
        if not received:
            raise
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    run = runs[0] if runs else None
    result: dict[str, Any] = {"events": args.events, "rate": args.rate, "opportunities": args.opportunities}
    if run is not None:
        result |= {"published": run.workload.published, "publish_retries": run.publish_errors,
                   "windows": run.report()}
    if received or problems is None:
        left = processes_using(*footprint(data_dir))
        log(f"stopped, but processes {left} remain" if left else "stopped; nothing it started is left running")
        return result | {"interrupted": received[0] if received else "before the load began",
                         "checked": False}
    result |= {"lost": len(problems["lost"]), "unexpected": len(problems["unexpected"]),
               "first_problems": (problems["lost"] + problems["unexpected"])[:20]}
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / "chaos.json").write_text(json.dumps(result, indent=2))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=500.0, help="events published per second")
    parser.add_argument("--opportunities", type=int, default=2000)
    parser.add_argument("--replicas", type=int, default=2, help="processes of each service and of the gateway")
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".data" / "bench-chaos",
                        help="where the servers and the platform keep their data (emptied first)")
    result = asyncio.run(main_async(parser.parse_args()))
    print(json.dumps(result, indent=2))
    if "interrupted" in result:  # partial: never mistaken for a verdict (128 + the signal, as a shell says)
        code = {"SIGTERM": 128 + signal.SIGTERM, "SIGINT": 128 + signal.SIGINT}.get(result["interrupted"], 1)
        raise SystemExit(code)
    raise SystemExit(1 if result["lost"] or result["unexpected"] else 0)


if __name__ == "__main__":
    main()
