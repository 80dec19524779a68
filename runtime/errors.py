"""Domain errors with their meaning. The gateway maps them to HTTP once; consumers use them to
decide between "retry later" and "dead-letter now"."""

from __future__ import annotations

from contracts.base import CommandError, ErrorKind


class DomainError(Exception):
    kind: ErrorKind = ErrorKind.internal

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_contract(self) -> CommandError:
        return CommandError(kind=self.kind, message=self.message, field=self.field)


class NotFound(DomainError):
    kind = ErrorKind.not_found


class Conflict(DomainError):
    kind = ErrorKind.conflict


class Invalid(DomainError):
    kind = ErrorKind.invalid


class Forbidden(DomainError):
    kind = ErrorKind.forbidden


class PermanentFailure(Exception):
    """A message that can never succeed: it goes to the dead letters with this reason."""


class CommandFailed(Exception):
    """Raised on the requesting side when a command is answered with an error."""

    def __init__(self, error: CommandError) -> None:
        super().__init__(f"{error.kind}: {error.message}")
        self.error = error
