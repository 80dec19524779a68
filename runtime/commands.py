"""Commands over NATS request/reply: typed requests, typed results, typed errors.

The owning service validates the command, runs it in one transaction and answers with a `Reply`.
The gateway calls `send` and gets the result model back or a `CommandFailed` carrying the error.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import nats.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from opentelemetry import trace
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts.base import Command, CommandError, ErrorKind
from runtime import telemetry
from runtime.errors import CommandFailed, DomainError

logger = logging.getLogger(__name__)
_tracer = telemetry.tracer(__name__)

C = TypeVar("C", bound=Command)
CommandHandler = Callable[[AsyncSession, Any], Awaitable[BaseModel]]


class CommandServer:
    def __init__(self, nc: NATS, service: str, sessions: async_sessionmaker[AsyncSession], *,
                 concurrency: int = 64) -> None:
        self.nc = nc
        self.service = service
        self.sessions = sessions
        self._handlers: dict[str, tuple[type[Command], CommandHandler]] = {}
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._subs: list[Any] = []

    def register(self, command: type[C], handler: Callable[[AsyncSession, C], Awaitable[BaseModel]]) -> None:
        self._handlers[command.subject] = (command, handler)

    async def start(self) -> None:
        for subject in self._handlers:
            # A queue group: several instances of the service share the work.
            self._subs.append(await self.nc.subscribe(subject, queue=self.service, cb=self._on_msg))

    async def stop(self) -> None:
        for sub in self._subs:
            await sub.unsubscribe()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _on_msg(self, msg: Msg) -> None:
        await self._slots.acquire()
        task = asyncio.create_task(self._answer(msg))
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slots.release()

    async def _answer(self, msg: Msg) -> None:
        command_cls, handler = self._handlers[msg.subject]
        with _tracer.start_as_current_span(
            f"command {msg.subject}", context=telemetry.extract_context(msg.headers), kind=trace.SpanKind.SERVER
        ):
            reply = await self.execute(command_cls, handler, msg.data)
        if msg.reply:
            await msg.respond(reply.encode())

    async def execute(self, command_cls: type[Command], handler: CommandHandler, data: bytes) -> str:
        try:
            command = command_cls.model_validate_json(data)
        except ValidationError as exc:
            return _error(validation_error(exc))
        try:
            async with self.sessions() as session, session.begin():
                result = await handler(session, command)
        except DomainError as exc:
            return _error(exc.to_contract())
        except IntegrityError as exc:
            logger.info("%s: integrity error: %s", command_cls.subject, exc.orig)
            return _error(CommandError(kind=ErrorKind.conflict, message="conflicts with stored data"))
        except Exception:
            logger.exception("%s failed", command_cls.subject)
            return _error(CommandError(kind=ErrorKind.internal, message="internal error; see the service log"))
        return json.dumps({"ok": True, "result": json.loads(result.model_dump_json())})


def validation_error(exc: ValidationError) -> CommandError:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or None
    return CommandError(kind=ErrorKind.invalid, message=first["msg"], field=field)


def _error(error: CommandError) -> str:
    return json.dumps({"ok": False, "error": error.model_dump(mode="json")})


R = TypeVar("R", bound=BaseModel)


async def send(nc: NATS, command: Command, *, timeout: float = 10.0) -> Any:
    """Send a command and return its typed result, or raise CommandFailed with the typed error."""
    with _tracer.start_as_current_span(f"send {command.subject}", kind=trace.SpanKind.CLIENT):
        headers = telemetry.inject_headers()
        try:
            msg = await nc.request(command.subject, command.model_dump_json().encode(), timeout=timeout,
                                   headers=headers)
        except nats.errors.NoRespondersError as exc:
            raise CommandFailed(CommandError(kind=ErrorKind.unavailable,
                                             message=f"no service answers {command.subject}")) from exc
        except (nats.errors.TimeoutError, TimeoutError) as exc:
            raise CommandFailed(CommandError(kind=ErrorKind.unavailable,
                                             message=f"{command.subject} timed out")) from exc
    body = json.loads(msg.data)
    if body.get("ok"):
        return command.result.model_validate(body["result"])
    raise CommandFailed(CommandError.model_validate(body["error"]))
