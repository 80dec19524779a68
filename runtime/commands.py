"""Commands over NATS request/reply: typed requests, typed results, typed errors.

The owning service validates the command, runs it in one transaction and answers with a `Reply`.
The gateway calls `send` and gets the result model back or a `CommandFailed` carrying the error.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import nats.errors
from faststream import Context
from faststream.nats import NatsBroker
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from opentelemetry import trace
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts.base import Command, CommandError, ErrorKind
from runtime import bus, failures, telemetry
from runtime.errors import CommandFailed, DomainError

logger = logging.getLogger(__name__)
_tracer = telemetry.tracer(__name__)

C = TypeVar("C", bound=Command)
CommandHandler = Callable[[AsyncSession, Any], Awaitable[BaseModel]]


class CommandServer:
    """The service's command responders: one FastStream subscriber per command subject, in a queue group
    named after the service (several instances share the work), on the process's one broker."""

    def __init__(self, service: str, sessions: async_sessionmaker[AsyncSession], *, concurrency: int = 32) -> None:
        self.service = service
        self.sessions = sessions
        self.concurrency = concurrency
        self._handlers: dict[str, tuple[type[Command], CommandHandler]] = {}

    def register(self, command: type[C], handler: Callable[[AsyncSession, C], Awaitable[BaseModel]]) -> None:
        self._handlers[command.subject] = (command, handler)

    def attach(self, broker: NatsBroker) -> None:
        for subject, (command_cls, handler) in self._handlers.items():
            subscriber = broker.subscriber(
                subject, queue=self.service, max_workers=self.concurrency, decoder=bus.raw_body,
                title=f"{subject}:command", description=(command_cls.__doc__ or command_cls.__name__).strip(),
            )
            subscriber(self._responder(subject, command_cls, handler))

    def _responder(self, subject: str, command_cls: type[Command], handler: CommandHandler) -> Callable[..., Any]:
        async def respond(message: Any = Context("message")) -> bytes:
            raw: Msg = message.raw_message
            with _tracer.start_as_current_span(
                f"command {subject}", context=telemetry.extract_context(raw.headers), kind=trace.SpanKind.SERVER
            ):
                reply = await self.execute(command_cls, handler, raw.data)
            return reply.encode()

        respond.__name__ = f"answer_{subject.replace('.', '_')}"
        return respond

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
        except Exception as exc:
            # Classified as the consumers classify it: the database down is an outage the caller may retry
            # (503), a value Postgres refuses is the caller's input (422), anything else a bug (500).
            kind = failures.classify(exc)
            if kind is failures.Failure.TRANSIENT:
                logger.warning("%s: unavailable: %s", command_cls.subject, failures.describe(exc))
                return _error(CommandError(kind=ErrorKind.unavailable,
                                           message="the service's database is unavailable for a moment; retry"))
            if kind is failures.Failure.PERMANENT:
                logger.info("%s: refused by the database: %s", command_cls.subject, failures.describe(exc))
                return _error(CommandError(kind=ErrorKind.invalid, message="a value cannot be stored (a control "
                                           "character or an out-of-range number?)"))
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
