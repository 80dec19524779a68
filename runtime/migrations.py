"""Alembic per service: each service's migrations live in its own folder, with the version table
in its own schema, and run as the service's own role.

A schema may have several heads: features developed side by side each keep a branch (branch_labels)
rooted at the schema's first revision, and `upgrade` applies all of them."""

from __future__ import annotations

import asyncio
import importlib
from pathlib import Path

import sqlalchemy as sa
from alembic import command, context, op
from alembic.config import Config
from sqlalchemy import pool
from sqlalchemy.ext.asyncio import async_engine_from_config

from runtime.db import async_url
from runtime.settings import INTEGRATIONS


def migrations_dir(owner: str) -> Path:
    package = "gateway" if owner == "gateway" else INTEGRATIONS.get(owner, f"services.{owner}")
    module = importlib.import_module(package)
    return Path(module.__file__).parent / "migrations"  # type: ignore[arg-type]


def alembic_config(owner: str, url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir(owner)))
    cfg.attributes["url"] = url
    cfg.attributes["schema"] = owner
    return cfg


def upgrade(owner: str, url: str, revision: str = "heads") -> None:
    command.upgrade(alembic_config(owner, url), revision)


def downgrade(owner: str, url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(owner, url), revision)


async def upgrade_async(owner: str, url: str) -> None:
    # Alembic's env runs its own event loop; give it a thread of its own.
    await asyncio.to_thread(upgrade, owner, url)


def run_env() -> None:
    """The body of every service's migrations/env.py."""
    config = context.config
    schema: str = config.attributes["schema"]
    url: str = config.attributes["url"]

    def do_run(connection: sa.Connection) -> None:
        connection.execute(sa.text(f'SET search_path TO "{schema}"'))
        context.configure(
            connection=connection,
            version_table_schema=schema,
            include_schemas=True,
            include_object=lambda obj, name, type_, *_: type_ != "table" or obj.schema == schema,
            transaction_per_migration=True,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def run_async() -> None:
        engine = async_engine_from_config({"sqlalchemy.url": async_url(url)}, prefix="sqlalchemy.",
                                          poolclass=pool.NullPool)
        async with engine.connect() as conn:
            await conn.run_sync(do_run)
            await conn.commit()
        await engine.dispose()

    asyncio.run(run_async())


def create_outbox_and_inbox(schema: str) -> None:
    """Used by each service's first migration: the runtime tables every service has."""
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("event_id", sa.Uuid, nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("aggregate", sa.Text, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("headers", sa.dialects.postgresql.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name="outbox_pkey"),
        sa.UniqueConstraint("event_id", name="outbox_event_id_key"),
        schema=schema,
    )
    op.create_index("outbox_unsent_idx", "outbox", ["id"], schema=schema,
                    postgresql_where=sa.text("sent_at IS NULL"))
    op.create_index("outbox_created_at_idx", "outbox", ["created_at"], schema=schema)
    op.create_table(
        "inbox",
        sa.Column("consumer", sa.Text, nullable=False),
        sa.Column("event_id", sa.Uuid, nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("consumer", "event_id", name="inbox_pkey"),
        schema=schema,
    )


def drop_outbox_and_inbox(schema: str) -> None:
    op.drop_table("inbox", schema=schema)
    op.drop_table("outbox", schema=schema)
