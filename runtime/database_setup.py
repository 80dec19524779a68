"""One Postgres database, one schema and one login role per service.

Run with an owner/superuser login before services start. A service's role owns its schema and has
no privilege on any other, so it cannot read another service's data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from runtime import credentials
from runtime.db import plain_dsn
from runtime.settings import secret_environment

ADMIN_SCHEMA = "partnerops_admin"


def password_variable(role: str) -> str:
    return f"DB_PASSWORD_{role.upper()}"


def role_passwords(roles: Iterable[str], data_dir: Path | None) -> dict[str, str]:
    """Each role's login password: DB_PASSWORD_<ROLE> (or the file DB_PASSWORD_<ROLE>_FILE names:
    compose, Kubernetes) when set, else a random one kept in <data_dir>/db-roles.json (mode 0600),
    made on first use. Independent of each other and of SECRET_KEY, so one leaked password opens
    one schema. Without a data directory (a production job) every variable must be set."""
    roles = list(roles)
    environ = secret_environment()  # DB_PASSWORD_<ROLE>_FILE too (Docker secrets)
    found = {r: environ[password_variable(r)] for r in roles if environ.get(password_variable(r))}
    missing = [r for r in roles if r not in found]
    if missing and data_dir is None:
        raise SystemExit("set " + ", ".join(password_variable(r) for r in missing)
                         + " or their _FILE variants (random, URL-safe; `partnerops secrets` writes a set)")
    if missing:
        assert data_dir is not None
        found.update(credentials.load_or_create(data_dir / "db-roles.json", missing))
    return found


def role_url(admin_url: str, role: str, password: str) -> str:
    u = make_url(admin_url).set(username=role, password=password)
    return u.render_as_string(hide_password=False)


def _ident(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"unsafe identifier {name!r}")
    return f'"{name}"'


async def create_database(admin_url: str, name: str, *, template: str | None = None) -> str:
    """Create database `name` if missing (a copy of `template` when given: its schemas, tables and rows,
    but not its database-level grants and settings); returns the admin URL pointing at it."""
    conn = await asyncpg.connect(plain_dsn(admin_url))
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            copy = f" TEMPLATE {_ident(template)}" if template else ""
            await conn.execute(f"CREATE DATABASE {_ident(name)}{copy}")
    finally:
        await conn.close()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


async def setup_roles_and_schemas(admin_url: str, passwords: Mapping[str, str]) -> None:
    """One login role and schema per owner (the keys of `passwords`), each role with its password."""
    owners = tuple(passwords)
    conn = await asyncpg.connect(plain_dsn(admin_url))
    try:
        db = await conn.fetchval("SELECT current_database()")
        # Serialise concurrent setups (several test workers, a restarted supervisor).
        await conn.execute("SELECT pg_advisory_lock(hashtext('partnerops-db-setup'))")
        await conn.execute(f"REVOKE ALL ON DATABASE {_ident(db)} FROM PUBLIC")
        await conn.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {ADMIN_SCHEMA}")
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {ADMIN_SCHEMA}.meta (key text PRIMARY KEY, value text NOT NULL,"
            " updated_at timestamptz NOT NULL DEFAULT now())"
        )
        for role in owners:
            r = _ident(role)
            exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
            if not exists:
                try:
                    await conn.execute(f"CREATE ROLE {r} LOGIN")
                except asyncpg.DuplicateObjectError:
                    pass  # created by a setup of another database in the same cluster
            pw = passwords[role].replace("'", "''")
            await conn.execute(
                f"ALTER ROLE {r} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT PASSWORD '{pw}'"
            )
            await conn.execute(f"GRANT CONNECT, TEMPORARY ON DATABASE {_ident(db)} TO {r}")
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {r} AUTHORIZATION {r}")
            await conn.execute(f"ALTER SCHEMA {r} OWNER TO {r}")
            await conn.execute(f"ALTER ROLE {r} IN DATABASE {_ident(db)} SET search_path = {r}")
        await conn.execute("SELECT pg_advisory_unlock(hashtext('partnerops-db-setup'))")
    finally:
        await conn.close()


async def get_meta(admin_url: str, key: str) -> str | None:
    conn = await asyncpg.connect(plain_dsn(admin_url))
    try:
        return await conn.fetchval(f"SELECT value FROM {ADMIN_SCHEMA}.meta WHERE key = $1", key)
    finally:
        await conn.close()


async def set_meta(admin_url: str, key: str, value: str) -> None:
    conn = await asyncpg.connect(plain_dsn(admin_url))
    try:
        await conn.execute(
            f"INSERT INTO {ADMIN_SCHEMA}.meta (key, value) VALUES ($1, $2)"
            " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
            key, value,
        )
    finally:
        await conn.close()
