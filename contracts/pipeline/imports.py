"""CSV import and export of partners and opportunities: batches, rows, progress and their errors."""

from enum import StrEnum
from typing import ClassVar
from uuid import UUID

from pydantic import BaseModel, Field

from contracts.base import Command
from contracts.fields import line, text


class ImportKind(StrEnum):
    partners = "partners"
    opportunities = "opportunities"


class RowError(BaseModel):
    row: int = Field(description="Line of the file, counting the header as line 1.")
    field: str | None
    message: str


class ImportBatch(BaseModel):
    batch_id: UUID
    kind: ImportKind
    columns: list[str]


class ImportProgress(BaseModel):
    batch_id: UUID
    rows: int
    errors: list[RowError]


class ImportResult(BaseModel):
    batch_id: UUID
    kind: ImportKind
    rows: int
    created: int
    updated: int
    errors: list[RowError]
    stored: bool = Field(description="False when the file had errors: then nothing was stored.")


class BeginImport(Command):
    """Start a CSV import: the header is checked now, rows arrive in chunks, nothing is stored until
    the commit, and a file with any bad row stores nothing."""

    subject: ClassVar[str] = "cmd.pipeline.import.begin"
    result: ClassVar[type[BaseModel]] = ImportBatch

    kind: ImportKind
    columns: list[line(100)] = Field(min_length=1, max_length=60)


class ImportRows(Command):
    """A chunk of rows of a CSV import; each row is checked and its errors reported with its line."""

    subject: ClassVar[str] = "cmd.pipeline.import.rows"
    result: ClassVar[type[BaseModel]] = ImportProgress

    batch_id: UUID
    first_row: int = Field(ge=2, le=10_000_000, description="File line of the first row (the header is line 1).")
    rows: list[list[text(5000)]] = Field(max_length=2000)


class CommitImport(Command):
    """Store every row of the import in one transaction, or nothing if any row is bad."""

    subject: ClassVar[str] = "cmd.pipeline.import.commit"
    result: ClassVar[type[BaseModel]] = ImportResult

    batch_id: UUID


class ExportPage(BaseModel):
    columns: list[str]
    rows: list[list[str]]
    next_after: UUID | None


class ExportRows(Command):
    """A page of partners or opportunities as CSV rows (the import's columns), in id order."""

    subject: ClassVar[str] = "cmd.pipeline.export.rows"
    result: ClassVar[type[BaseModel]] = ExportPage

    kind: ImportKind
    after_id: UUID | None = None
    limit: int = Field(default=1000, ge=1, le=2000)
