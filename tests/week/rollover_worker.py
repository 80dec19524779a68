"""One process running the rollover of a week against the database, for the concurrency test: waits for
the start file, then opens the week (which carries open tasks) in its own transaction."""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime
from pathlib import Path

from contracts import week as w
from runtime.db import create_engine, session_factory
from runtime.testing import eventually_blocking
from services.relationships.week import service


async def main(url: str, at: str, start_file: str, rounds: int) -> None:
    engine = create_engine(url, trace_sql=False)
    sessions = session_factory(engine)
    # Every worker waits for the one start signal, so their rounds overlap (the race under test).
    eventually_blocking(lambda: Path(start_file).exists(), "the start signal", interval=0.01)
    for _ in range(rounds):
        async with sessions() as session, session.begin():
            await service.open_week(session, w.OpenWeek(at=datetime.fromisoformat(at),
                                                        default_time_zone="America/New_York"))
    await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
