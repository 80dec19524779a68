"""Where Google Cloud opportunities come from. Partner Advantage's co-sell API is not generally
available; when it is, a client that yields the same events fills this seam and the CSV export
becomes one implementation among two."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from integrations.gcp import mapping


class GcpClient(Protocol):
    def opportunities(self) -> mapping.Parsed:
        """The opportunities as contract events, and the records that could not be read (with why)."""
        ...


class CsvExport:
    """A Partner Advantage opportunity export (CSV) on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def opportunities(self) -> mapping.Parsed:
        if self.path.stat().st_size > mapping.MAX_BYTES:
            return mapping.Parsed(errors=[(0, f"the file is larger than {mapping.MAX_BYTES // (1024 * 1024)} MB")])
        return mapping.parse(self.path.read_bytes())
