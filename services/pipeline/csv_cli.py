"""CSV import and export of partners and opportunities from the command line, over the bus.

    python -m services.pipeline.csv_cli import partners partners.csv
    python -m services.pipeline.csv_cli import opportunities deals.csv
    python -m services.pipeline.csv_cli export opportunities -o deals.csv

(`partnerops import ...` / `partnerops export ...` run this with the platform's NATS_URL.)
An import checks every row and stores all of them or, if any row is bad, none; bad rows are listed
with their row number (the header is row 1) and the exit status is 1.
"""

from __future__ import annotations

import asyncio
import csv
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TextIO

import click
from nats.aio.client import Client as NATS

from contracts import pipeline as c
from runtime import bus, pipeline_csv
from runtime.cli import run_module_cli
from runtime.csv_cells import safe_row
from runtime.errors import CommandFailed
from runtime.pipeline_csv import NumberedRow


class Progress:
    """A one-line progress bar on stderr (only when it is a terminal, or when forced)."""

    def __init__(self, total: int, label: str, *, stream: TextIO = sys.stderr, force: bool = False) -> None:
        self.total, self.label, self.stream = total, label, stream
        self.enabled = force or stream.isatty()
        self.started = time.monotonic()
        self.done = 0

    def advance(self, n: int) -> None:
        self.done += n
        if not self.enabled:
            return
        width = 30
        filled = int(width * self.done / self.total) if self.total else width
        rate = self.done / max(time.monotonic() - self.started, 1e-6)
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} rows "
                          f"({rate:,.0f}/s)")
        self.stream.flush()

    def finish(self, note: str = "") -> None:
        if self.enabled:
            self.stream.write(f"  {note}\n")
            self.stream.flush()


def read_csv(path: Path) -> tuple[list[str], list[NumberedRow]]:
    try:
        header, rows = pipeline_csv.records(path.read_text(encoding="utf-8-sig"))
    except (pipeline_csv.NotCsv, UnicodeDecodeError) as exc:
        raise SystemExit(f"{path}: {exc}") from exc
    return header, pipeline_csv.numbered(rows)


async def do_import(nc: NATS, kind: c.ImportKind, path: Path, *, progress: bool) -> int:
    header, rows = read_csv(path)
    bar = Progress(len(rows), f"checking {kind.value}", force=progress)

    def checked(n: int) -> None:
        bar.advance(n)
        if bar.done >= len(rows):
            bar.finish("storing..." if bar.enabled else "")

    try:
        result = await pipeline_csv.run_import(nc, kind, header, rows, "cli", commit_timeout=600,
                                               on_chunk=checked)
    except CommandFailed as exc:
        print(f"{path}: {exc.error.message}", file=sys.stderr)
        return 1
    if not result.stored:
        print(f"{path}: {len(result.errors)} error(s); nothing was stored", file=sys.stderr)
        for e in result.errors[:200]:
            print(f"  row {e.row}{f', {e.field}' if e.field else ''}: {e.message}", file=sys.stderr)
        if len(result.errors) > 200:
            print(f"  ... and {len(result.errors) - 200} more", file=sys.stderr)
        return 1
    print(f"{path}: {result.rows} rows stored ({result.created} created, {result.updated} updated)")
    return 0


async def do_export(nc: NATS, kind: c.ImportKind, out: TextIO, *, progress: bool) -> int:
    writer = csv.writer(out)
    written = 0
    first = True
    bar = Progress(0, f"exporting {kind.value}", force=progress)
    async for page in pipeline_csv.export_pages(nc, kind, "cli"):
        if first:
            writer.writerow(page.columns)
            first = False
        writer.writerows(safe_row(r) for r in page.rows)
        written += len(page.rows)
        bar.total = written
        bar.advance(len(page.rows))
    bar.finish()
    print(f"{written} {kind.value} exported", file=sys.stderr)
    return 0


def _connect_and(action: Callable[[NATS], Awaitable[int]]) -> None:
    nats_url = os.environ.get("NATS_URL")
    if not nats_url:
        raise click.ClickException("NATS_URL is not set (`partnerops import/export` set it for you)")

    async def run() -> int:
        nc = await bus.connect(nats_url, name="csv-cli", attempts=3)
        try:
            return await action(nc)
        finally:
            await nc.close()

    raise SystemExit(asyncio.run(run()))


KINDS = click.Choice([k.value for k in c.ImportKind])
PROGRESS = click.option("--progress", is_flag=True, help="show the progress bar even when not on a terminal")


@click.group()
def cli() -> None:
    """CSV import and export of the pipeline."""


@cli.command("import")
@click.argument("kind", type=KINDS)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@PROGRESS
def import_(kind: str, file: Path, progress: bool) -> None:
    """Import a CSV file (all rows or none)."""
    _connect_and(lambda nc: do_import(nc, c.ImportKind(kind), file, progress=progress))


@cli.command("export")
@click.argument("kind", type=KINDS)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="the CSV file (default: standard output)")
@PROGRESS
def export(kind: str, output: Path | None, progress: bool) -> None:
    """Export to a CSV file that imports again."""

    async def run(nc: NATS) -> int:
        if output:
            with output.open("w", newline="", encoding="utf-8") as f:
                return await do_export(nc, c.ImportKind(kind), f, progress=progress)
        return await do_export(nc, c.ImportKind(kind), sys.stdout, progress=progress)

    _connect_and(run)


def main(argv: list[str] | None = None) -> None:
    run_module_cli(cli, "services.pipeline.csv_cli", argv)


if __name__ == "__main__":
    main()
