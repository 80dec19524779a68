"""One Postgres database, one schema and one login role per service.

Run with an owner/superuser login before services start. A service's role owns its schema and has
no privilege on any other, so it cannot read another service's data.
"""

from __future__ import annotations

import hashlib
import hmac
import os

import asyncpg
from sqlalchemy.engine import make_url

from runtime.db import plain_dsn

ADMIN_SCHEMA = "partnerops_admin"


def role_password(role: str, secret: str) -> str:
    override = os.environ.get(f"DB_PASSWORD_{role.upper()}")
    if override:
        return override
    return hmac.new(secret.encode(), f"db-role:{role}".encode(), hashlib.sha256).hexdigest()[:40]


def role_url(admin_url: str, role: str, secret: str) -> str:
    u = make_url(admin_url).set(username=role, password=role_password(role, secret))
    return u.render_as_string(hide_password=False)


def _ident(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"unsafe identifier {name!r}")
    return f'"{name}"'


async def create_database(admin_url: str, name: str) -> str:
    """Create database `name` if missing; returns the admin URL pointing at it."""
    conn = await asyncpg.connect(plain_dsn(admin_url))
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f"CREATE DATABASE {_ident(name)}")
    finally:
        await conn.close()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


async def setup_roles_and_schemas(admin_url: str, owners: tuple[str, ...], secret: str) -> None:
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
            pw = role_password(role, secret).replace("'", "''")
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
