"""KPI read benchmark: GET /api/kpis/pipeline with a million opportunities under concurrent clients,
against a bare FastAPI endpoint serving the same JSON on the same machine in the same run.

    .venv/bin/python -m bench.kpi_read [--opportunities 1000000] [--partners 10000] [--clients 16] [--seconds 15]

The gateway runs as a process of its own (`python -m gateway serve`, as `partnerops up` runs it); the
bare endpoints run in another uvicorn process with the same options. Servers: embedded NATS and
Postgres under .data/bench-<random> (removed afterwards) unless TEST_DATABASE_URL and TEST_NATS_URL
name existing servers. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.harness import Servers, log, servers, wait_until
from bench.pipeline_ingest import Process, env_for, load_scale, make_token, percentile, versions
from contracts import pipeline as pc
from contracts import sync
from runtime import bus
from runtime.db import plain_dsn
from runtime.embedded import free_port
from runtime.testing import platform_database, unique

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"

# The bare endpoints: the gateway's JSON, read from a file, served by FastAPI with nothing else.
# `/dict` is what an endpoint returning the figures as a dict costs (FastAPI encodes it per request);
# `/bytes` returns the encoded JSON as it is (the least a FastAPI endpoint can do).
BARE_APP = """
import json, sys
import uvicorn
from fastapi import FastAPI, Response

body = open(sys.argv[1], "rb").read()
figures = json.loads(body)
app = FastAPI()

@app.get("/dict")
async def as_dict():
    return figures

@app.get("/bytes")
async def as_bytes():
    return Response(body, media_type="application/json")

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_config=None, access_log=False)
"""

# The tail's summary: requests slower than the p99 target, bunched by when they ended.
TAIL_MS = 50.0
TAIL_BUCKET_S = 0.25
TAIL_WORST = 5


@dataclass
class Load:
    requests: int
    seconds: float
    latencies_ms: list[float]
    errors: int
    warmup_requests: int = 0
    # When each timed request ended, in seconds from the start of the timed part (same order as latencies).
    ended_s: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        lat = self.latencies_ms
        return {"requests": self.requests, "seconds": round(self.seconds, 2),
                "requests_per_second": round(self.requests / self.seconds, 1), "errors": self.errors,
                "p50_ms": round(percentile(lat, 0.5), 2), "p99_ms": round(percentile(lat, 0.99), 2),
                "max_ms": round(max(lat), 2), "tail": self.tail()}

    def tail(self, over_ms: float = TAIL_MS, bucket_s: float = TAIL_BUCKET_S) -> dict[str, Any]:
        """Where the slow requests were: spread over the case (a busy machine, a cost per request) or
        bunched in a few moments (a pause: a garbage collection, a reload on the request path)."""
        buckets: dict[int, list[float]] = {}
        for ended, ms in zip(self.ended_s, self.latencies_ms, strict=True):
            if ms > over_ms:
                buckets.setdefault(int(ended / bucket_s), []).append(ms)
        slow = sum(len(b) for b in buckets.values())
        worst = sorted(buckets.items(), key=lambda kv: -len(kv[1]))[:TAIL_WORST]
        return {f"over_{over_ms:g}_ms": slow, "share": round(slow / max(len(self.latencies_ms), 1), 4),
                f"in_{bucket_s:g}_s_buckets": len(buckets),
                "worst_buckets": [{"at_s": round(k * bucket_s, 2), "requests": len(v), "max_ms": round(max(v), 1)}
                                  for k, v in worst]}


async def _client(host: str, port: int, request: bytes, until: float, out: list[float],
                  errors: list[int], ended: list[float] | None = None, t0: float = 0.0) -> None:
    """One keep-alive HTTP/1.1 connection sending requests back to back: a client costs next to
    nothing, so the servers' rates, not the load generator's, are measured."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < until:
            sent = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            t1 = time.perf_counter()
            out.append((t1 - sent) * 1000)
            if ended is not None:
                ended.append(t1 - t0)
            if not head.startswith(b"HTTP/1.1 200"):
                errors.append(1)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def load(url: str, path: str, headers: dict[str, str], clients: int, seconds: float,
               timed: Callable[[], None] = lambda: None) -> Load:
    u = httpx.URL(url)
    request = (f"GET {path} HTTP/1.1\r\nHost: {u.host}:{u.port}\r\n"
               + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode()
    # Warm up (connections, caches, the first computation) without timing.
    warm: list[float] = []
    await asyncio.gather(*(_client(u.host, u.port, request, time.perf_counter() + 1.0, warm, [])
                           for _ in range(clients)))
    latencies: list[float] = []
    ended: list[float] = []
    errors: list[int] = []
    timed()
    t0 = time.perf_counter()
    await asyncio.gather(*(_client(u.host, u.port, request, t0 + seconds, latencies, errors, ended, t0)
                           for _ in range(clients)))
    return Load(len(latencies), time.perf_counter() - t0, latencies, len(errors), warmup_requests=len(warm),
                ended_s=ended)


def loadavg() -> float:
    return round(os.getloadavg()[0], 2)


GATEWAY_CASES = [
    ("GET /api/kpis/pipeline (department)", "/api/kpis/pipeline"),
    ("GET /api/kpis/pipeline?owner=owner07", "/api/kpis/pipeline?owner=owner07"),
    ("GET /api/kpis/pipeline?top=11 (not kept: computed per request)", "/api/kpis/pipeline?top=11"),
]
BARE_CASES = [
    ("bare FastAPI, the same JSON returned as a dict", "/dict"),
    ("bare FastAPI, the same JSON returned as bytes", "/bytes"),
]


async def _up(url: str, path: str, headers: dict[str, str]) -> int:
    try:
        async with httpx.AsyncClient(timeout=5, headers=headers) as client:
            return int((await client.get(f"{url}{path}")).status_code == 200)
    except httpx.HTTPError:
        return 0


async def measure(args: argparse.Namespace, process: Process, others: list[Process], url: str, path: str,
                  headers: dict[str, str], idle_rate: float) -> dict[str, Any]:
    """One case: its rate, latencies and tail, the load around it and the serving process's CPU per request."""
    before = loadavg()
    cpu_before = {p.name: p.cpu_seconds() for p in (process, *others)}
    wall = time.perf_counter()
    at_timed: list[float] = []

    def timed() -> None:
        at_timed.extend((process.cpu_seconds(), time.perf_counter(), time.time()))

    measured = await load(url, path, headers, args.clients, args.seconds, timed)
    end = time.perf_counter()
    cpu = {p.name: round(p.cpu_seconds() - cpu_before[p.name], 2) for p in (process, *others)}
    # The server's CPU per request answered, warm-up included (its CPU is in the figure too); the
    # process's idle rate over the case's wall time is taken off first. And the timed part's alone:
    # a warm-up that computed something (a snapshot not kept yet) weighs on the first, not the second.
    busy = cpu[process.name] - idle_rate * (end - wall)
    per_request = busy / max(measured.requests + measured.warmup_requests, 1) * 1000
    timed_busy = process.cpu_seconds() - at_timed[0] - idle_rate * (end - at_timed[1])
    return {**measured.as_dict(), "load_before": before, "load_after": loadavg(), "server_cpu_seconds": cpu,
            "server_cpu_ms_per_request": round(per_request, 3),
            "server_cpu_ms_per_timed_request": round(timed_busy / max(measured.requests, 1) * 1000, 3),
            "warmup_cpu_seconds": round(at_timed[0] - cpu_before[process.name], 2),
            "timed_from_unix": round(at_timed[2], 3)}


async def run(s: Servers, args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    urls = await platform_database(s.admin_url, unique("bench_kpi_"))
    nc = await bus.connect(s.nats_url, name="bench-setup")
    await bus.ensure_streams(nc.jetstream(), [pc.STREAM, sync.STREAM])
    await nc.close()
    bare_port = free_port()
    bare_url = f"http://127.0.0.1:{bare_port}"
    data_dir.mkdir(parents=True, exist_ok=True)
    # The gateway of this tree, and of --compare-root's (the same data; each served in turn, never both).
    trees = [("", ROOT)] + [(f"[{root.name}] ", root.resolve()) for root in args.compare_root]
    result: dict[str, Any] = {"servers": s.how, "versions": versions(),
                              "trees": {label.strip() or "[this]": str(root) for label, root in trees}}
    bare: Process | None = None
    running: Process | None = None
    try:
        token: str | None = None
        auth: dict[str, str] = {}
        figures: dict[str, Any] = {}
        ratios: dict[str, float] = {}
        for round_ in range(args.rounds):
            for label, root in trees:
                port = free_port()
                gateway_url = f"http://127.0.0.1:{port}"
                name = f"gateway{len(figures)}"
                running = Process(name, ["-m", "gateway", "serve"],
                                  env_for(urls, "gateway", s.nats_url, GATEWAY_PORT=str(port)), data_dir, cwd=root)
                await running.start()
                if token is None:
                    token = await make_token(urls)
                    auth = {"authorization": f"Bearer {token}"}
                await wait_until(lambda u=gateway_url, h=auth: _up(u, "/api/kpis/pipeline", h), 1, "gateway up",
                                 interval=0.2, stall=120.0)
                if bare is None:
                    if args.opportunities:
                        result["scale"] = await load_scale(args, urls)
                    async with httpx.AsyncClient(timeout=60, headers=auth) as client:
                        response = await client.get(f"{gateway_url}/api/kpis/pipeline")
                        response.raise_for_status()
                        body_file = data_dir / "kpis.json"
                        body_file.write_bytes(response.content)
                        sample = response.json()
                    result["response_bytes"] = len(response.content)
                    result["sample"] = {"won": sample["won"], "lost": sample["lost"],
                                        "stuck": sample["stuck"]["count"],
                                        "pipeline_by_stage": len(sample["pipeline_by_stage"])}
                    bare = Process("bare", ["-c", BARE_APP, str(body_file), str(bare_port)], dict(os.environ),
                                   data_dir)
                    await bare.start()
                    await wait_until(lambda: _up(bare_url, "/bytes", {}), 1, "bare FastAPI up", interval=0.2,
                                     stall=60.0)
                prefix = label + (f"(round {round_ + 1}) " if args.rounds > 1 else "")
                # The bare cases beside each gateway's, so each has its own reference of the same moment.
                bare_rps: list[float] = []
                for case, path in BARE_CASES:
                    figures[prefix + case] = await measure(args, bare, [running], bare_url, path, {}, 0.0)
                    bare_rps.append(figures[prefix + case]["requests_per_second"])
                    log(f"{prefix + case}: {figures[prefix + case]}")
                # What the gateway uses when nothing is asked of it (consumers, pings, housekeeping):
                # subtracted from a case's CPU, so the CPU per request does not grow as the rate falls.
                idle_before, idle_t0 = running.cpu_seconds(), time.perf_counter()
                await asyncio.sleep(args.idle_seconds)
                idle_rate = (running.cpu_seconds() - idle_before) / (time.perf_counter() - idle_t0)
                result.setdefault("gateway_idle_cpu_per_second", {})[prefix.strip() or "[this]"] = round(idle_rate, 4)
                for case, path in GATEWAY_CASES:
                    if args.only and not any(only in case for only in args.only):
                        continue
                    f = await measure(args, running, [bare], gateway_url, path, auth, idle_rate)
                    figures[prefix + case] = f
                    log(f"{prefix + case}: {f}")
                    ratios[f"{prefix + case} / bare (dict)"] = round(f["requests_per_second"] / bare_rps[0], 4)
                    ratios[f"{prefix + case} / bare (bytes)"] = round(f["requests_per_second"] / bare_rps[1], 4)
                await running.stop()
                running = None
        result["cases"] = figures
        result["ratios"] = ratios
    finally:
        for p in (running, bare):
            if p is not None:
                await p.stop()
        if s.how != "embedded":
            with contextlib.suppress(Exception):
                conn = await asyncpg.connect(plain_dsn(s.admin_url))
                from sqlalchemy.engine import make_url

                await conn.execute(f'DROP DATABASE "{make_url(urls["admin"]).database}" WITH (FORCE)')
                await conn.close()
    return result


def print_table(result: dict[str, Any]) -> None:
    rows = result.get("scale", {}).get("rows", {})
    print(f"\nKPI reads — {rows.get('gateway.pipeline_opportunity', 0):,} opportunities, "
          f"{result['clients']} clients, {result['machine']['cpus']} CPUs")
    for name, f in result["cases"].items():
        print(f"  {name}: {f['requests_per_second']:,.0f}/s, p50 {f['p50_ms']} ms, p99 {f['p99_ms']} ms, "
              f"{f['server_cpu_ms_per_request']} ms CPU per request ({f['server_cpu_ms_per_timed_request']} timed "
              f"part only, warm-up {f['warmup_cpu_seconds']} s) "
              f"(load {f['load_before']}→{f['load_after']}, errors {f['errors']})")
        tail = f["tail"]
        worst = ", ".join(f"{b['requests']} at {b['at_s']} s (max {b['max_ms']} ms)" for b in tail["worst_buckets"][:3])
        print(f"      over {TAIL_MS:g} ms: {tail[f'over_{TAIL_MS:g}_ms']} ({tail['share'] * 100:.2f} %) in "
              f"{tail[f'in_{TAIL_BUCKET_S:g}_s_buckets']} of the {TAIL_BUCKET_S:g} s buckets; most: {worst or '-'}")
    for name, value in result["ratios"].items():
        print(f"  {name}: {value * 100:.1f} %")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.kpi_read", description=__doc__.split("\n\n")[0])
    parser.add_argument("--opportunities", type=int, default=1_000_000, help="opportunities in the read model")
    parser.add_argument("--partners", type=int, default=10_000, help="partners")
    parser.add_argument("--clients", type=int, default=16, help="concurrent keep-alive connections")
    parser.add_argument("--seconds", type=float, default=15.0, help="timed seconds per case")
    parser.add_argument("--idle-seconds", type=float, default=3.0,
                        help="seconds the gateway's idle CPU is measured for, before the cases")
    parser.add_argument("--only", action="append", default=[],
                        help="run only the gateway cases whose name contains this (may be given again; the bare "
                             "cases always run)")
    parser.add_argument("--compare-root", type=Path, action="append", default=[],
                        help="also serve the same data from the gateway of this source tree (e.g. a worktree of "
                             "main), in turn with this tree's, each beside its own bare cases (may be given again)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="serve every tree's cases this many times, alternating trees")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    tag = uuid.uuid4().hex[:10]
    wall = time.perf_counter()
    with servers(ROOT / ".data" / f"bench-{tag}") as s:
        result = asyncio.run(run(s, args, ROOT / ".data" / f"bench-logs-{tag}"))
    result.update(benchmark="kpi_read", started_at=started_at, clients=args.clients, seconds=args.seconds,
                  machine={"cpus": os.cpu_count(), "platform": platform.platform()},
                  wall_seconds=round(time.perf_counter() - wall, 1))
    print_table(result)
    out = args.out or RESULTS_DIR / f"kpi-read-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"\nwall time {result['wall_seconds']}s; results written to {out}")


if __name__ == "__main__":
    main()
