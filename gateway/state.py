"""The gateway's connection to the platform, reached from request handlers."""

from __future__ import annotations

from fastapi import Request
from nats.aio.client import Client as NATS
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from runtime.service import RunningService


def running(request: Request) -> RunningService:
    return request.app.state.running  # type: ignore[no-any-return]


def bus(request: Request) -> NATS:
    return running(request).nc


def sessions(request: Request) -> async_sessionmaker[AsyncSession]:
    return running(request).sessions
