"""The platform's AsyncAPI document, served at /asyncapi.json as committed in gateway/static/asyncapi.json.

`partnerops asyncapi --output gateway/static/asyncapi.json` generates it from every part's real
subscribers and publishers (runtime/asyncapi.py); reading the file keeps the gateway from importing the
services it describes, and tests/test_asyncapi.py fails when the file is stale."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

FILE = Path(__file__).parent / "static" / "asyncapi.json"


@cache
def document() -> dict[str, Any]:
    return json.loads(FILE.read_text(encoding="utf-8"))
