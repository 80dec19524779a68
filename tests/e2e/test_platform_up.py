"""The slice end to end through the real processes `partnerops up` starts: sign in, create a
partner over HTTP, watch the KPI read model count it, follow one trace through every hop, rebuild
the read model by replay, and stop everything with Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import httpx
import pytest

from runtime.database_setup import create_database
from runtime.embedded import free_port
from runtime.testing import STARTUP_PATIENCE, TEST_SECRET, eventually_blocking, unique

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
async def platform(servers, private_nats, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("data")
    admin_url = await create_database(servers.admin_url, unique("e2e_"))
    port = free_port()
    log_path = data_dir / "up.log"
    env = {**os.environ, "NATS_URL": private_nats, "DATABASE_URL": admin_url, "SECRET_KEY": TEST_SECRET,
           "DATA_DIR": str(data_dir), "GATEWAY_PORT": str(port), "OTEL_TRACES_EXPORTER": "console",
           "BUS_ACK_WAIT_SECONDS": "5"}
    log = open(log_path, "wb")
    # No demo data: it is not what these tests look at, and seeding it was minutes of a loaded machine's time.
    proc = subprocess.Popen([sys.executable, "-m", "runtime.cli", "up", "--no-seed"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        # Generous: a wait, not a measure (under a loaded CI machine the demo-free start still migrates
        # five schemas and starts eight processes).
        eventually_blocking(lambda: "ready: open" in log_path.read_text() or proc.poll() is not None, "platform ready",
                            timeout=STARTUP_PATIENCE)
        assert proc.poll() is None, log_path.read_text()[-4000:]
        people = {"admin": create_admin(env), "viewer": (f"{unique('viewer')}@example.com", "a viewer's pass phrase 7")}
        admin, csrf = signed_in(base, *people["admin"])
        created = admin.post("/api/users", headers={"x-csrf-token": csrf}, json={
            "email": people["viewer"][0], "name": "Vera Viewer", "role": "viewer", "password": people["viewer"][1]})
        assert created.status_code == 201, created.text
        yield {"proc": proc, "base": base, "log": log_path, "data_dir": data_dir, "env": env, "people": people}
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def create_admin(env: dict[str, str]) -> tuple[str, str]:
    """`partnerops create-admin` with nothing but the data directory: it finds the servers `up` runs and the
    gateway's own login (issue 16: the README's command needed DATABASE_URL set by hand)."""
    email, password = f"{unique('first')}@example.com", "a long pass phrase 42"
    result = subprocess.run(_create_admin_command(email, password), cwd=ROOT, env=_found_only(env),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"created admin {email}"
    return email, password


def _create_admin_command(email: str, password: str) -> list[str]:
    return [sys.executable, "-m", "runtime.cli", "create-admin", "--email", email, "--password", password]


def _found_only(env: dict[str, str]) -> dict[str, str]:
    """The environment without the servers: a CLI command must find them through the data directory."""
    return {k: v for k, v in env.items() if k not in ("NATS_URL", "DATABASE_URL", "SECRET_KEY")}


def signed_in(base: str, email: str, password: str) -> tuple[httpx.Client, str]:
    # A hang guard, not a measure: argon2 sign-ins queue for a CPU on a loaded machine.
    client = httpx.Client(base_url=base, follow_redirects=False, timeout=120)
    page = client.get("/signin")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)[1]
    response = client.post("/signin", data={"email": email, "password": password, "csrf_token": token, "next": "/"})
    assert response.status_code == 303, response.text
    home = client.get("/")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', home.text)[1]
    return client, csrf


def kpis(client: httpx.Client) -> dict:
    response = client.get("/api/kpis")
    assert response.status_code == 200, response.text
    return response.json()


class TestPlatform:
    def test_the_start_up_log_reads_as_a_clean_start(self, platform):
        """What a newcomer reads up to "ready": every line in a `name | ` column, no disconnection the
        supervisor caused itself, no alembic preamble or health-probe lines, the address once."""
        log = platform["log"].read_text()
        start = log[:log.index("ready: open") + 200].splitlines()
        start = start[:next(i for i, line in enumerate(start) if "ready: open" in line) + 1]
        assert [line for line in start if not re.match(r"^[a-z][a-z-]* *\| ", line)] == []
        assert [line for line in start if "disconnected from NATS" in line or "Context impl" in line
                or "Will assume transactional DDL" in line or "/healthz" in line] == []
        assert any(line.startswith("migrate      | Running upgrade") for line in start)
        address = re.compile(re.escape(platform["base"]) + r"(?!\d)")  # not a longer port that starts alike
        assert sum(bool(address.search(line)) for line in start) == 1, start

    def test_a_person_signs_in_and_creates_a_partner_that_the_kpis_count(self, platform):
        base = platform["base"]
        assert httpx.get(f"{base}/api/kpis").status_code == 401
        assert httpx.get(f"{base}/", headers={"accept": "text/html"}).status_code == 303
        assert httpx.get(f"{base}/").status_code == 401
        client, csrf = signed_in(base, *platform["people"]["admin"])
        before = kpis(client)

        name = unique("Acme Data ")
        owner = platform["people"]["admin"][0]
        created = client.post("/api/partners", json={"name": name, "type": "isv", "owner": owner},
                              headers={"x-csrf-token": csrf})
        assert created.status_code == 201, created.text
        eventually_blocking(lambda: kpis(client)["partners_by_type"]["isv"] == before["partners_by_type"]["isv"] + 1,
                            "the new partner counted")
        page = client.get("/")
        assert page.status_code == 200 and 'data-testid="partners-total"' in page.text
        assert f">{before['partners_total'] + 1}<" in page.text

        # Typed errors from the service arrive as HTTP statuses with the field.
        dup = client.post("/api/partners", json={"name": name, "type": "msp"}, headers={"x-csrf-token": csrf})
        assert dup.status_code == 409 and dup.json()["detail"][0]["loc"] == ["body", "name"]
        bad = client.post("/api/partners", json={"name": "", "type": "spaceship"}, headers={"x-csrf-token": csrf})
        assert bad.status_code == 422
        assert {tuple(d["loc"]) for d in bad.json()["detail"]} >= {("body", "name"), ("body", "type")}
        missing = client.get("/api/partners/00000000-0000-0000-0000-000000000000")
        assert missing.status_code == 404
        no_csrf = client.post("/api/partners", json={"name": unique("X"), "type": "isv"})
        assert no_csrf.status_code == 403
        audit = client.get("/api/audit", params={"entity": "partner"}).json()
        assert audit[0]["action"] == "partner.created" and audit[0]["after"]["name"] == name

    def test_one_trace_follows_the_request_through_every_hop(self, platform):
        base = platform["base"]
        client, csrf = signed_in(base, *platform["people"]["admin"])
        name = unique("Traced ")
        response = client.post("/api/partners", json={"name": name, "type": "referral"},
                               headers={"x-csrf-token": csrf})
        assert response.status_code == 201
        partner_id = response.json()["id"]

        def spans_by_trace() -> dict[str, set[tuple[str, str]]]:
            found: dict[str, set[tuple[str, str]]] = defaultdict(set)
            per_process: dict[str, list[str]] = defaultdict(list)
            for line in platform["log"].read_text(errors="replace").splitlines():
                if "| " in line:
                    who, _, rest = line.partition("| ")
                    per_process[who.strip()].append(rest)
            for who, lines in per_process.items():
                text = "\n".join(lines)
                for m in re.finditer(r'"name": "([^"]+)",\s*"context": \{\s*"trace_id": "(0x[0-9a-f]+)"', text):
                    found[m[2]].add((who, m[1]))
            return found

        def the_trace():
            for spans in spans_by_trace().values():
                names = {n for _, n in spans}
                if "POST /api/partners" in names and ("gateway", "consume pipeline.partner.created.v1") in spans:
                    # The relay carries the context stored with the outbox row as the message's
                    # headers (no span of its own), so the consumer's span is in the command's trace.
                    hops = {("pipeline", "command cmd.pipeline.partner.create")}
                    if hops <= spans and any(w == "pipeline" and n.startswith("INSERT") for w, n in spans):
                        return spans
            return None

        spans = eventually_blocking(the_trace, f"one trace for partner {partner_id} across gateway and pipeline")
        assert any(w == "gateway" and n.startswith(("INSERT", "SELECT")) for w, n in spans)

    def test_metrics_show_consumer_lag_and_http_counts_to_admins_only(self, platform):
        base = platform["base"]
        assert httpx.get(f"{base}/metrics").status_code == 401
        viewer, _ = signed_in(base, *platform["people"]["viewer"])
        assert viewer.get("/metrics").status_code == 403
        admin, _ = signed_in(base, *platform["people"]["admin"])
        text = admin.get("/metrics").text
        lag = 'partnerops_consumer_pending{consumer="gateway__PIPELINE",service="gateway"} 0.0'
        assert lag in text, text
        assert "process_cpu_seconds_total" in text
        # Each service answers its own scrape, on the port `up` printed for it.
        found = re.search(r"pipeline: Prometheus metrics at (http://\S+/metrics)", platform["log"].read_text())
        assert found, "up names each service's metrics endpoint"
        service = httpx.get(found[1], timeout=10).text
        assert 'partnerops_consumer_applied_total{consumer="pipeline__' in service, service
        assert 'partnerops_http_requests_total{method="GET",route="/api/kpis",status="200"}' in text, text

    def test_read_model_rebuilds_by_replay_to_the_same_counts(self, platform):
        base = platform["base"]
        client, _ = signed_in(base, *platform["people"]["admin"])
        before = kpis(client)
        result = subprocess.run([sys.executable, "-m", "runtime.cli", "rebuild-read-models"], cwd=ROOT,
                                env=platform["env"], capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        applied = json.loads(result.stdout.strip().splitlines()[-1])
        assert applied["gateway__pipeline_partner_created_v1"] == before["partners_total"]
        assert kpis(client) == before

    def test_create_admin_refuses_an_email_already_taken(self, platform):
        email, password = platform["people"]["admin"]
        again = subprocess.run(_create_admin_command(email.upper(), password), cwd=ROOT,
                               env=_found_only(platform["env"]), capture_output=True, text=True, timeout=300)
        assert again.returncode == 1 and f"a user with email {email.upper()} already exists" in again.stderr

    def test_ctrl_c_stops_every_process(self, platform):
        proc = platform["proc"]
        pids = _descendants(proc.pid)
        assert len(pids) >= 5, "gateway and four services run as processes of their own"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
        # Processes whose parent has gone are reaped by init a moment later: wait for that, not a fixed time.
        eventually_blocking(lambda: not [p for p in pids if _alive(p)], "every process to stop after Ctrl-C")
        assert "stopped" in platform["log"].read_text()


def _descendants(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True).stdout
    children: dict[int, list[int]] = defaultdict(list)
    for line in out.splitlines():
        p, pp = (int(x) for x in line.split())
        children[pp].append(p)
    found, todo = [], [pid]
    while todo:
        for c in children[todo.pop()]:
            found.append(c)
            todo.append(c)
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"
