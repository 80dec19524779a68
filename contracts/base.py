"""Base shapes for events, commands and their replies.

Events are facts in the past tense; each class names its subject and schema version. Commands are
requests from the gateway to the owning service over NATS request/reply, answered by a
`Reply` carrying either a result or a typed error.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar, Generic, TypeVar
from uuid import UUID, SafeUUID

from pydantic import BaseModel, ConfigDict, Field

from contracts.fields import Moment


def utc_now() -> datetime:
    return datetime.now(UTC)


class _RandomIds:
    """Random (version 4) UUIDs as `uuid.uuid4` makes them, from the same source (`os.urandom`), read 256 ids
    at a time and built without `UUID.__init__`'s checks: about half of uuid4's CPU, where ingesting one
    event makes two or three ids (docs/benchmarks.md). `list.pop` hands each value out once, whatever the
    thread; a forked child starts with values of its own."""

    COUNT = 256
    # What UUID(bytes=..., version=4) does to the bits: the version (4) and the RFC 4122 variant.
    _CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
    _SET = (4 << 76) | (0x8000 << 48)

    def __init__(self) -> None:
        self._values: list[int] = []
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._values = []

    def __call__(self) -> UUID:
        try:
            value = self._values.pop()
        except IndexError:
            block = os.urandom(16 * self.COUNT)
            self._values = [(int.from_bytes(block[i:i + 16]) & self._CLEAR) | self._SET
                            for i in range(0, len(block), 16)]
            value = self._values.pop()
        made = object.__new__(UUID)
        object.__setattr__(made, "int", value)
        object.__setattr__(made, "is_safe", SafeUUID.unknown)
        return made


new_id = _RandomIds()


class StreamSpec(BaseModel):
    """A JetStream stream owned by one producing service."""

    model_config = ConfigDict(frozen=True)

    name: str
    subjects: tuple[str, ...]
    description: str = ""
    # The stream holds JetStream message schedules (nats-server 2.12+): see contracts/schedules.py.
    schedules: bool = False


class Event(BaseModel):
    """Base of every event. Subclasses set `subject` and narrow `schema_version` to a literal."""

    # Additive optional fields keep the version, so consumers ignore fields they do not know.
    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)

    subject: ClassVar[str]
    stream: ClassVar[StreamSpec]

    event_id: UUID = Field(default_factory=new_id)
    occurred_at: Moment = Field(default_factory=utc_now)
    correlation_id: str | None = None
    schema_version: int

    def aggregate_key(self) -> str:
        """The key whose events must be published in order (overridden per event)."""
        return str(self.event_id)

    @classmethod
    def from_delivery(cls, raw: dict[str, Any], stored_at: datetime | None) -> dict[str, Any]:
        """The body as the consumer validates it, given when the stream stored the message. Events
        carry everything themselves; a schedule's tick (a body the bus repeats) takes its id from it."""
        return raw


class ErrorKind(StrEnum):
    not_found = "not_found"
    conflict = "conflict"
    invalid = "invalid"
    forbidden = "forbidden"
    unavailable = "unavailable"
    internal = "internal"


class CommandError(BaseModel):
    kind: ErrorKind
    message: str
    field: str | None = None


R = TypeVar("R")


class Reply(BaseModel, Generic[R]):
    ok: bool
    result: R | None = None
    error: CommandError | None = None


class Command(BaseModel):
    """Base of every command. Subclasses set `subject` and `result` (the reply's model)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, defer_build=True)

    subject: ClassVar[str]
    result: ClassVar[type[BaseModel]]

    actor: str | None = Field(default=None, description="Who asked: a user id or token name, for audit.")


class PartialCommand(Command):
    """A command whose unset fields mean "leave as it is": only the fields that were set travel, so
    an explicit null can mean "clear"."""

    def model_dump_json(self, **kwargs: Any) -> str:
        kwargs.setdefault("exclude_unset", True)
        return super().model_dump_json(**kwargs)


class Page(BaseModel):
    items: list[Any]
    total: int
    offset: int
    limit: int
