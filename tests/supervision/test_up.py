"""`partnerops up` keeps its servers alive and owns its data directory (issue 10): NATS and Postgres
killed under it come back with the same data; a second `up` on the same directory is refused; the
servers a killed supervisor leaves behind are cleaned up by the next `up`; restart pauses start
short again once a process has been healthy for a while."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from runtime.embedded import EmbeddedPostgres, _read_pid, free_port, pid_alive
from runtime.supervisor import MAX_PAUSE_SECONDS, Backoff
from runtime.testing import eventually_blocking, unique

ROOT = Path(__file__).resolve().parents[2]
# Generous: the machine is shared, and `up` runs initdb, migrations and five processes.
PATIENCE = 240.0


def test_backoff_grows_while_failing_and_resets_after_a_healthy_period() -> None:
    backoff = Backoff(healthy_after=60.0)
    backoff.started(0.0)
    pauses = []
    now = 1.0
    for _ in range(7):
        pauses.append(backoff.failed(now))
        backoff.started(now + pauses[-1])
        now += pauses[-1] + 1.0  # crashes a second after each start
    assert pauses == [1.0, 2.0, 4.0, 8.0, 16.0, MAX_PAUSE_SECONDS, MAX_PAUSE_SECONDS]
    backoff.started(1000.0)
    assert backoff.failed(1000.0 + 59.0) == MAX_PAUSE_SECONDS  # not yet healthy long enough
    backoff.started(2000.0)
    assert backoff.failed(2000.0 + 60.0) == 1.0  # ran a healthy minute: back to the shortest pause
    backoff.started(2061.0)
    assert backoff.failed(2061.5) == 2.0  # and grows again if it keeps failing


class Up:
    def __init__(self, data_dir: Path, port: int, log: Path) -> None:
        self.data_dir, self.port, self.log = data_dir, port, log
        env = {k: v for k, v in os.environ.items()
               if k not in ("NATS_URL", "DATABASE_URL", "DATABASE_ADMIN_URL") and not k.startswith("TEST_")}
        self.env = {**env, "DATA_DIR": str(data_dir), "ENVIRONMENT": "development", "PYTHONUNBUFFERED": "1"}
        self.proc: subprocess.Popen[bytes] | None = None

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "runtime.cli", "up", "--no-seed", "--port", str(self.port)]

    def start(self) -> Up:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.argv(), env=self.env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        return self

    def healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"`up` exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=3).status_code == 200
        except httpx.HTTPError:
            return False

    def nats_pid(self) -> int | None:
        return _read_pid(self.data_dir / "nats" / "nats-server.pid")

    def postgres_pid(self) -> int | None:
        # Where the cluster really is: under /var/lib/partnerops-pg when the checkout's directories
        # are closed to Postgres's system user (a fresh clone in a 0700 temporary directory).
        return EmbeddedPostgres(base_dir=self.data_dir / "postgres").pid

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Under the project's .data: a directory the Postgres system user may reach as it is.
    path = ROOT / ".data" / unique("up-")
    yield path
    for pid in (_read_pid(path / "nats" / "nats-server.pid"),):
        if pid and pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
    subprocess.run([str(_pg_ctl()), "-D", str(path / "postgres" / "data"), "-m", "immediate", "stop"],
                   user="partnerops-pg" if os.geteuid() == 0 else None, capture_output=True)
    shutil.rmtree(path, ignore_errors=True)


def _pg_ctl() -> Path:
    from runtime.embedded import _pg_bin

    return _pg_bin() / "pg_ctl"


def test_up_restarts_its_servers_refuses_a_second_up_and_cleans_up_after_a_killed_supervisor(
    data_dir: Path, tmp_path: Path,
) -> None:
    up = Up(data_dir, free_port(), tmp_path / "up.log").start()
    try:
        eventually_blocking(up.healthy, "the platform to be healthy", timeout=PATIENCE)

        # A second `up` on the same directory is refused, and the first keeps running.
        second = subprocess.run(Up(data_dir, free_port(), tmp_path / "second.log").argv(), env=up.env, cwd=ROOT,
                                capture_output=True, text=True, timeout=120)
        assert second.returncode != 0
        assert "another `partnerops up`" in second.stderr and str(up.proc.pid) in second.stderr  # type: ignore[union-attr]
        assert up.healthy()

        # NATS killed: restarted with the same data (the streams are still there), services reconnect.
        nats_pid = up.nats_pid()
        assert nats_pid and pid_alive(nats_pid)
        os.kill(nats_pid, signal.SIGKILL)
        eventually_blocking(lambda: up.nats_pid() not in (None, nats_pid) and pid_alive(up.nats_pid() or 0),
                            "NATS restarted", timeout=PATIENCE)
        eventually_blocking(up.healthy, "healthy after NATS came back", timeout=PATIENCE)

        # Postgres killed: restarted on the same port with the same data.
        pg_pid = up.postgres_pid()
        assert pg_pid and pid_alive(pg_pid)
        os.kill(pg_pid, signal.SIGKILL)
        eventually_blocking(lambda: up.postgres_pid() not in (None, pg_pid) and pid_alive(up.postgres_pid() or 0),
                            "Postgres restarted", timeout=PATIENCE)
        eventually_blocking(up.healthy, "healthy after Postgres came back", timeout=PATIENCE)

        # The supervisor itself killed: its services die with it; NATS and Postgres are left behind...
        nats_pid, pg_pid = up.nats_pid(), up.postgres_pid()
        assert up.proc is not None
        up.proc.kill()
        up.proc.wait()
        assert nats_pid and pid_alive(nats_pid) and pg_pid and pid_alive(pg_pid)
        # ...and the next `up` stops them and starts its own on the same data.
        up = Up(data_dir, up.port, tmp_path / "third.log").start()
        eventually_blocking(up.healthy, "healthy after the orphans were cleaned up", timeout=PATIENCE)
        assert not pid_alive(nats_pid) and not pid_alive(pg_pid)
        assert up.nats_pid() != nats_pid and up.postgres_pid() != pg_pid
    finally:
        up.stop()
    assert up.proc is not None and up.proc.returncode == 0
    assert not pid_alive(up.nats_pid() or 0)
