"""Creating users outside the web UI: the first admin (CLI) and the demo team (seed)."""

from __future__ import annotations

import asyncio
import getpass
import secrets
import uuid

from sqlalchemy import func, select

from gateway import audit, directory_sync
from gateway.auth import Role, create_user, validate_password
from gateway.models import User
from runtime.db import create_engine, session_factory
from runtime.settings import Settings


async def ensure_user(settings: Settings, *, email: str, name: str, role: Role, password: str,
                      partner_id: uuid.UUID | None = None) -> bool:
    """Create the user unless one with that email exists; True when created."""
    engine = create_engine(settings.database_url, trace_sql=False)
    try:
        async with session_factory(engine)() as session, session.begin():
            if await session.scalar(select(User.id).where(func.lower(User.email) == email.lower())):
                return False
            user = await create_user(session, email=email, name=name, role=role, password=password,
                                     partner_id=partner_id)
            await audit.record(session, actor="cli", action="user.created", entity="user", entity_id=user.id,
                               after={"email": email, "role": role.value,
                                      "partner_id": str(partner_id) if partner_id else None})
        directory_sync.changed()  # a gateway in this process sends the directory on (others: the hourly tick)
        return True
    finally:
        await engine.dispose()


def create_admin(settings: Settings, *, email: str, name: str, password: str | None, generate: bool) -> None:
    """`partnerops create-admin`: asks for the password unless given or generated."""
    if generate:
        password = new_password()
    elif not password:
        password = getpass.getpass("Password for the new admin: ")
    problem = validate_password(password, email)
    if problem:
        raise SystemExit(f"password {problem}")
    created = asyncio.run(ensure_user(settings, email=email, name=name or email, role=Role.admin, password=password))
    if not created:
        raise SystemExit(f"a user with email {email} already exists")
    print(f"created admin {email}" + (f" with password {password}" if generate else ""))


def new_password() -> str:
    return secrets.token_urlsafe(12)
