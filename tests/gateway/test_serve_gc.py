"""`gateway serve` puts what its start-up made out of the collector's reach and collects the young
generation less often, once the app's lifespan has started (gateway.__main__.frozen_once_started). In a
process of its own: freezing is for a process's entry point, not for the test process."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import asyncio, contextlib, gc, json
    from fastapi import FastAPI
    from gateway.__main__ import frozen_once_started
    from runtime.service import YOUNG_COLLECTION

    @contextlib.asynccontextmanager
    async def lifespan(app):
        app.state.made = [[i] for i in range(5000)]  # what a start-up makes: engine, broker, subscribers
        yield
        app.state.stopped = True

    app = FastAPI(lifespan=lifespan)
    default = gc.get_threshold()
    frozen_once_started(app)
    before = gc.get_freeze_count(), gc.get_threshold()

    async def main():
        async with app.router.lifespan_context(app):
            return gc.get_freeze_count(), gc.get_threshold(), YOUNG_COLLECTION

    frozen, threshold, young = asyncio.run(main())
    print(json.dumps({"default": default, "before": before, "frozen": frozen, "threshold": threshold,
                      "young": young, "stopped": getattr(app.state, "stopped", False)}))
""")


def test_serve_freezes_the_lifespans_objects_and_collects_less_often():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120, check=True)
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    (frozen_before, threshold_before), default = seen["before"], seen["default"]
    assert threshold_before == default, "nothing changes before the app has started"
    assert seen["frozen"] >= frozen_before + 5000, "the lifespan's objects are frozen"
    assert seen["threshold"] == [seen["young"], default[1], default[2]]
    assert seen["young"] > default[0]
    assert seen["stopped"], "the app's own lifespan still runs to its end"
