"""bench/chaos.py stopped from outside: SIGTERM (what `timeout` sends) in the middle of a run stops every
process the bench started - its Postgres and NATS, the supervisor, each service and gateway process,
the three NATS nodes - prints what it had measured, marked interrupted, and exits 128 + 15. Found by
their data directories (in the command line or the environment of each), so nothing it started can
hide in a session of its own."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bench.chaos import footprint, processes_using
from runtime.testing import STARTUP_PATIENCE, eventually_blocking

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.faults, pytest.mark.timeout(900)]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_sigterm_mid_run_stops_everything_the_bench_started_and_reports_what_it_measured(tmp_path):
    data_dir = tmp_path / "chaos"
    # The bench's own servers, as in a real run (not the test session's).
    env = {k: v for k, v in os.environ.items() if k not in ("TEST_DATABASE_URL", "TEST_NATS_URL")}
    err = tmp_path / "bench.log"
    with open(err, "wb") as log:
        bench = subprocess.Popen(
            [sys.executable, "-m", "bench.chaos", "--events", "300", "--rate", "15", "--opportunities", "10",
             "--replicas", "1", "--data-dir", str(data_dir)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log)
    try:
        eventually_blocking(lambda: "steady:" in err.read_text() or bench.poll() is not None,
                            "the load running (the steady window measured)", timeout=STARTUP_PATIENCE)
        assert bench.poll() is None, err.read_text()[-4000:]
        started = {pid: _cmdline(pid) for pid in processes_using(*footprint(data_dir))}
        kinds = " ".join(started.values())
        # What there is to stop: the supervisor, its processes and three nodes, the bench's own servers.
        assert "runtime.cli up" in kinds and "-m gateway serve" in kinds and "-m services.pipeline" in kinds, kinds
        # Three nodes, or two while the first fault (a node killed) has just begun.
        assert sum("nats-server" in args and "nats-cluster" in args for args in started.values()) >= 2, kinds
        assert sum("nats-server" in args for args in started.values()) >= 3, kinds
        assert "bin/postgres" in kinds, kinds

        bench.send_signal(signal.SIGTERM)
        out, _ = bench.communicate(timeout=300)
    finally:
        if bench.poll() is None:  # the test failed before its SIGTERM: still let the bench clean up
            bench.terminate()
            try:
                bench.wait(300)
            except subprocess.TimeoutExpired:
                bench.kill()
                bench.wait()
        left = processes_using(*footprint(data_dir))
        for pid in left:  # never leave them to the next test, whatever failed
            os.kill(pid, signal.SIGKILL)
    assert left == [], {pid: _cmdline(pid) for pid in left}
    assert bench.returncode == 128 + signal.SIGTERM, err.read_text()[-4000:]
    report = json.loads(out)
    assert report["interrupted"] == "SIGTERM" and report["checked"] is False
    assert report["published"] > 0
    assert report["windows"]["steady"]["latency_samples"] > 0, report
    print(json.dumps(report, indent=2), err.read_text()[-1500:], sep="\n")
