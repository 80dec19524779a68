"""The embedded Postgres is closed to other local users (issue 9): every login needs a password, over
the Unix socket too; the socket directory is open to the server's own user only; starting it never
widens a parent directory; role passwords are random and independent; a weak SECRET_KEY is refused
in production."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from runtime import database_setup
from runtime.embedded import PG_SYSTEM_USER, EmbeddedPostgres, _pg_bin
from runtime.settings import Settings

if TYPE_CHECKING:
    from runtime.testing import TestServers


@pytest.fixture
def intruder() -> Iterator[str]:
    """A second local OS user, as an attacker with a shell on the host would have."""
    if os.geteuid() != 0:
        pytest.skip("creating an OS user needs root")
    name = f"po-intruder-{uuid.uuid4().hex[:6]}"
    subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["userdel", name], check=False)


def test_another_local_user_cannot_connect_to_the_embedded_postgres(servers: TestServers, intruder: str) -> None:
    pg = servers.postgres
    if pg is None:
        pytest.skip("the servers are not the embedded ones")
    psql = str(_pg_bin() / "psql")  # Postgres's own client, which that user can run like the server

    def attempt(*args: str) -> str:
        run = subprocess.run([psql, "-w", "-p", str(pg.port), "-d", "postgres", "-c", "select 1", *args],
                             user=intruder, capture_output=True, text=True, timeout=60, cwd="/",
                             env={"PATH": "/usr/bin:/bin"})
        return f"{run.returncode}: {run.stdout}{run.stderr}"

    as_superuser_by_socket = attempt("-h", str(pg.socket_dir), "-U", "postgres")
    assert as_superuser_by_socket.startswith("2:") and "permission denied" in as_superuser_by_socket.lower()
    for user in ("postgres", "gateway", "pipeline", intruder):
        over_tcp = attempt("-h", "127.0.0.1", "-U", user)
        assert over_tcp.startswith("2:") and "no password supplied" in over_tcp, over_tcp
    read = subprocess.run(["cat", str(pg.base_dir / "superuser-password")], user=intruder, capture_output=True,
                          text=True, cwd="/")
    assert read.returncode != 0 and "Permission denied" in read.stderr


def test_the_socket_directory_is_the_server_user_s_alone(servers: TestServers) -> None:
    pg = servers.postgres
    if pg is None or os.geteuid() != 0:
        pytest.skip("embedded servers run as root only")
    owner = pwd.getpwnam(PG_SYSTEM_USER).pw_uid
    for path in (pg.cluster_dir, pg.socket_dir, pg.data_dir):
        st = path.stat()
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (owner, 0o700), path
    assert "trust" not in "".join(
        line for line in (pg.data_dir / "pg_hba.conf").read_text().splitlines() if not line.startswith("#"))


@pytest.mark.integration  # starts a Postgres of its own
def test_starting_never_opens_up_a_parent_directory(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("only root runs Postgres as a system user")
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    modes = {p: stat.S_IMODE(p.stat().st_mode) for p in (closed, *closed.parents)}
    pg = EmbeddedPostgres(base_dir=closed / "postgres")
    second = EmbeddedPostgres(base_dir=closed / "second")
    try:
        pg.start()
        assert pg.cluster_dir != pg.base_dir  # the cluster went where its user may go, not here
        assert {p: stat.S_IMODE(p.stat().st_mode) for p in modes} == modes
        # A relocated cluster whose project directory is deleted is collected by the next start.
        pg.stop()
        shutil.rmtree(pg.base_dir)
        second.start()
        assert not pg.cluster_dir.exists() and second.cluster_dir.exists()
    finally:
        pg.remove()
        second.remove()


def test_binaries_the_system_user_cannot_reach_run_from_a_root_owned_copy(tmp_path: Path) -> None:
    """A virtualenv under a private directory (a 0700 temporary directory, as a fresh clone in CI gets):
    Postgres runs from a read-only copy of its installation, and the private directory stays closed."""
    if os.geteuid() != 0:
        pytest.skip("only root runs Postgres as a system user")
    from runtime.embedded import PG_FALLBACK_ROOT, _ensure_system_user, _installed_pg_bin, _public_copy

    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    installed = _installed_pg_bin().parent  # site-packages/pgserver/pginstall, libraries in pgserver.libs
    private = closed / "pgserver" / "pginstall"
    shutil.copytree(installed, private, symlinks=True)
    if (installed.parent.parent / "pgserver.libs").is_dir():
        shutil.copytree(installed.parent.parent / "pgserver.libs", closed / "pgserver.libs", symlinks=True)
    user = _ensure_system_user()
    copy = _public_copy(private, user)
    try:
        assert copy.parent == PG_FALLBACK_ROOT and stat.S_IMODE(closed.stat().st_mode) == 0o700
        assert copy.stat().st_uid == 0 and not copy.stat().st_mode & stat.S_IWOTH
        for program in ("postgres", "initdb", "pg_ctl", "psql"):  # initdb and psql need the shared libpq
            run = subprocess.run([str(copy / "pgserver" / "pginstall" / "bin" / program), "--version"],
                                 user=user.pw_name, capture_output=True, text=True, cwd="/")
            assert run.returncode == 0 and "PostgreSQL" in run.stdout, run.stderr
        assert _public_copy(private, user) == copy  # made once
        with pytest.raises(PermissionError):  # the original stays out of its reach
            subprocess.run([str(private / "bin" / "postgres"), "--version"], user=user.pw_name,
                           capture_output=True, text=True, cwd="/")
    finally:
        shutil.rmtree(copy, ignore_errors=True)


def test_role_passwords_are_random_independent_and_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for owner in ("pipeline", "gateway"):
        monkeypatch.delenv(database_setup.password_variable(owner), raising=False)
    first = database_setup.role_passwords(["pipeline", "gateway"], tmp_path)
    assert first["pipeline"] != first["gateway"] and min(len(p) for p in first.values()) >= 32
    assert database_setup.role_passwords(["pipeline", "gateway"], tmp_path) == first  # kept
    assert database_setup.role_passwords(["pipeline"], tmp_path / "other") != {"pipeline": first["pipeline"]}
    assert stat.S_IMODE((tmp_path / "db-roles.json").stat().st_mode) == 0o600
    monkeypatch.setenv("DB_PASSWORD_PIPELINE", "from-the-environment")
    assert database_setup.role_passwords(["pipeline"], tmp_path) == {"pipeline": "from-the-environment"}
    with pytest.raises(SystemExit, match="DB_PASSWORD_GATEWAY"):
        database_setup.role_passwords(["pipeline", "gateway"], None)


@pytest.mark.parametrize("secret", ["dev-only-insecure-secret-change-me", "short-secret", "a" * 64, "ab" * 40])
def test_production_refuses_a_weak_secret_key(secret: str) -> None:
    with pytest.raises(ValueError, match="SECRET_KEY"):
        Settings(environment="production", secret_key=secret)
    Settings(environment="development", secret_key=secret)


def test_production_accepts_a_long_random_secret_key() -> None:
    Settings(environment="production", secret_key=os.urandom(32).hex())
